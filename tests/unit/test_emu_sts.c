/* Unit tests for the emulator's STS (emulator/sts.c): AssumeRoleWithWebIdentity's and
 * AssumeRole's parameter validation, the shape of issued credentials, and their checks
 * (session token, expiration with a clock the test controls, S3's and the Query services'
 * error codes), and the bound on live sessions. */
#include "tu.h"

#include "emulator/emu_int.h"

#define ROLE "arn:aws:iam::123456789012:role/bmas"
#define T0 1795000000000LL /* ms */

static struct bm_emu *new_emu(void)
{
    struct bm_emu_opts o;
    struct bm_emu *emu = NULL;
    bm_emu_opts_init(&o);
    o.listen = "127.0.0.1:0";
    o.seed = 7;
    assert_int_equal(bm_emu_new(&o, &emu, NULL), BM_OK);
    return emu;
}

/* Validates a Query form as the handler receives it, as AssumeRoleWithWebIdentity's
 * (web_identity) or AssumeRole's input; returns the error code ("" when valid). */
static const char *check_as(const char *form, bool web_identity, struct emu_sts_params *p,
                            cJSON **in)
{
    static struct emu_req rq;
    memset(&rq, 0, sizeof rq);
    assert_int_equal(bm__emu_query_to_json(form, strlen(form), in), BM_OK);
    bm_err rc = bm__emu_sts_check(&rq, *in, web_identity, p);
    assert_int_equal(rc, rq.err.status ? BM_E_BAD_REQUEST : BM_OK);
    if (rq.err.status != 0)
        assert_int_equal(rq.err.status, 400);
    return rq.err.code;
}

static const char *check(const char *form, struct emu_sts_params *p, cJSON **in)
{
    return check_as(form, true, p, in);
}

static void expect_as(const char *form, bool web_identity, const char *code)
{
    struct emu_sts_params p;
    cJSON *in = NULL;
    const char *got = check_as(form, web_identity, &p, &in);
    if (strcmp(got, code) != 0)
        fail_msg("%s: expected '%s', got '%s'", form, code, got);
    cJSON_Delete(in);
}

static void expect(const char *form, const char *code)
{
    expect_as(form, true, code);
}

static void test_validation(void **state)
{
    (void)state;
    struct emu_sts_params p;
    cJSON *in = NULL;
    assert_string_equal(check("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" ROLE
                              "&RoleSessionName=s1&WebIdentityToken=t",
                              &p, &in),
                        "");
    assert_int_equal(p.duration_s, 3600);
    assert_string_equal(p.account, "123456789012");
    assert_string_equal(p.role_name, "bmas");
    cJSON_Delete(in);
    /* A role path: the assumed-role ARN carries only the last segment. */
    assert_string_equal(check("RoleArn=arn%3Aaws%3Aiam%3A%3A000000000001%3Arole%2Fteam%2Fapp%2Bx"
                              "&RoleSessionName=a%40b.c&WebIdentityToken=x&DurationSeconds=900",
                              &p, &in),
                        "");
    assert_string_equal(p.role_name, "app+x");
    assert_int_equal(p.duration_s, 900);
    cJSON_Delete(in);
    expect("RoleSessionName=s1&WebIdentityToken=t&RoleArn=" ROLE "&DurationSeconds=43200", "");

    static const char *const bad[] = {
        "RoleSessionName=s1&WebIdentityToken=t",          /* no role */
        "RoleArn=&RoleSessionName=s1&WebIdentityToken=t", /* empty */
        "RoleArn=arn:aws:iam::12345678901:role/x&RoleSessionName=s1&WebIdentityToken=t",
        "RoleArn=arn:aws:iam::123456789012:user/x&RoleSessionName=s1&WebIdentityToken=t",
        "RoleArn=arn:aws:iam::123456789012:role/&RoleSessionName=s1&WebIdentityToken=t",
        "RoleArn=arn:aws:iam::123456789012:role//x&RoleSessionName=s1&WebIdentityToken=t",
        "RoleArn=arn:aws:iam::123456789012:role/a%20b&RoleSessionName=s1&WebIdentityToken=t",
        "RoleArn=arn:aws:sts::123456789012:role/x&RoleSessionName=s1&WebIdentityToken=t",
        "RoleArn=" ROLE "&WebIdentityToken=t",                       /* no session */
        "RoleArn=" ROLE "&RoleSessionName=s&WebIdentityToken=t",     /* too short */
        "RoleArn=" ROLE "&RoleSessionName=a%2Fb&WebIdentityToken=t", /* '/' */
        "RoleArn=" ROLE "&RoleSessionName=a%20b&WebIdentityToken=t", /* space */
        "RoleArn=" ROLE "&RoleSessionName=s1",                       /* no token */
        "RoleArn=" ROLE "&RoleSessionName=s1&WebIdentityToken=",     /* empty */
        "RoleArn=" ROLE "&RoleSessionName=s1&WebIdentityToken=t&DurationSeconds=899",
        "RoleArn=" ROLE "&RoleSessionName=s1&WebIdentityToken=t&DurationSeconds=43201",
        "RoleArn=" ROLE "&RoleSessionName=s1&WebIdentityToken=t&DurationSeconds=1h",
        "RoleArn=" ROLE "&RoleSessionName=s1&WebIdentityToken=t&DurationSeconds=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect(bad[i], "ValidationError");
    /* 64 characters are allowed, 65 are not. */
    char form[256];
    snprintf(form, sizeof form, "RoleArn=" ROLE "&WebIdentityToken=t&RoleSessionName=%064d", 0);
    expect(form, "");
    snprintf(form, sizeof form, "RoleArn=" ROLE "&WebIdentityToken=t&RoleSessionName=%065d", 0);
    expect(form, "ValidationError");
}

/* AssumeRole shares RoleArn, RoleSessionName and DurationSeconds with web identity, needs no
 * token and validates the optional ExternalId. */
static void test_assume_role_validation(void **state)
{
    (void)state;
    struct emu_sts_params p;
    cJSON *in = NULL;
    assert_string_equal(check_as("Action=AssumeRole&Version=2011-06-15&RoleArn=" ROLE
                                 "&RoleSessionName=s1&ExternalId=ext-1%3Aa%2Fb",
                                 false, &p, &in),
                        "");
    assert_int_equal(p.duration_s, 3600);
    assert_string_equal(p.role_name, "bmas");
    assert_string_equal(p.external_id, "ext-1:a/b");
    assert_null(p.token);
    cJSON_Delete(in);
    expect_as("RoleArn=" ROLE "&RoleSessionName=s1", false, "");
    expect_as("RoleArn=" ROLE "&RoleSessionName=s1&DurationSeconds=900&ExternalId=ab", false, "");
    char form[1400];
    snprintf(form, sizeof form, "RoleArn=" ROLE "&RoleSessionName=s1&ExternalId=%01224d", 0);
    expect_as(form, false, "");
    snprintf(form, sizeof form, "RoleArn=" ROLE "&RoleSessionName=s1&ExternalId=%01225d", 0);
    expect_as(form, false, "ValidationError");

    static const char *const bad[] = {
        "RoleSessionName=s1",                                          /* no role */
        "RoleArn=arn:aws:iam::123456789012:user/x&RoleSessionName=s1", /* not a role */
        "RoleArn=" ROLE,                                               /* no session */
        "RoleArn=" ROLE "&RoleSessionName=a%3Ab",                      /* ':' is ExternalId's */
        "RoleArn=" ROLE "&RoleSessionName=s1&DurationSeconds=899",
        "RoleArn=" ROLE "&RoleSessionName=s1&DurationSeconds=43201",
        "RoleArn=" ROLE "&RoleSessionName=s1&ExternalId=",      /* empty */
        "RoleArn=" ROLE "&RoleSessionName=s1&ExternalId=x",     /* too short */
        "RoleArn=" ROLE "&RoleSessionName=s1&ExternalId=a%20b", /* space */
        "RoleArn=" ROLE "&RoleSessionName=s1&ExternalId=a%2Ab", /* '*' */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_as(bad[i], false, "ValidationError");
    /* ExternalId is AssumeRole's: web identity ignores it as STS ignores unknown members. */
    expect("RoleArn=" ROLE "&RoleSessionName=s1&WebIdentityToken=t&ExternalId=x", "");
}

static bool all_in(const char *s, const char *set)
{
    return strspn(s, set) == strlen(s);
}

static void issue(struct bm_emu *emu, long duration, int64_t now, struct emu_session *s)
{
    struct emu_sts_params p;
    cJSON *in = NULL;
    char form[256];
    snprintf(form, sizeof form,
             "RoleArn=" ROLE "&RoleSessionName=s1&WebIdentityToken=t&DurationSeconds=%ld",
             duration);
    assert_string_equal(check(form, &p, &in), "");
    assert_int_equal(bm__emu_sts_issue(emu, &p, now, s), BM_OK);
    cJSON_Delete(in);
}

/* Authorizes a request by s->akid carrying token (header, or presigned query when query) at
 * now for svc; returns the error code, "" when accepted, "-" when the key is not issued. */
static const char *authorize(struct bm_emu *emu, enum emu_svc svc, const char *akid,
                             const char *token, bool query, int64_t now, int *status,
                             struct emu_caller *caller)
{
    static struct emu_req rq;
    static char qs[1024];
    struct emu_session s;
    bool issued = false;
    memset(&rq, 0, sizeof rq);
    rq.emu = emu;
    rq.svc = svc;
    rq.now_ms = now;
    if (token != NULL && !query) {
        rq.hdr[0] = (struct bm_sigv4_header){"x-amz-security-token", 20, token, strlen(token)};
        rq.n_hdr = 1;
    } else if (token != NULL) {
        struct bm_buf enc;
        bm_buf_init(&enc, sizeof qs);
        assert_int_equal(bm_url_encode(token, strlen(token), "", false, &enc), BM_OK);
        snprintf(qs, sizeof qs, "X-Amz-Expires=60&X-Amz-Security-Token=%s", enc.data);
        bm_buf_cleanup(&enc);
        rq.query = qs;
        rq.query_len = strlen(qs);
    }
    bm_err rc = bm__emu_sts_authorize(&rq, akid, &s, &issued);
    *status = rq.err.status;
    if (caller != NULL)
        *caller = rq.caller;
    if (rc == BM_OK)
        return issued ? "" : "-";
    assert_int_equal(rc, BM_E_BAD_REQUEST);
    return rq.err.code;
}

static void test_issue_and_authorize(void **state)
{
    (void)state;
    struct bm_emu *emu = new_emu();
    struct emu_session s;
    struct emu_caller c;
    int st = 0;
    issue(emu, 900, T0, &s);
    assert_int_equal(strlen(s.akid), 20);
    assert_memory_equal(s.akid, "ASIA", 4);
    assert_true(all_in(s.akid, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"));
    assert_int_equal(strlen(s.secret), 40);
    assert_int_equal(strlen(s.token), EMU_STS_TOKEN_LEN);
    assert_true(
        all_in(s.token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"));
    assert_true(s.expires_ms == T0 + 900 * 1000);
    assert_string_equal(s.arn, "arn:aws:sts::123456789012:assumed-role/bmas/s1");
    assert_memory_equal(s.user_id, "AROA", 4);
    assert_string_equal(s.user_id + 21, ":s1");

    /* Accepted with its token (header or presigned query) until the expiration... */
    assert_string_equal(authorize(emu, EMU_SVC_SQS, s.akid, s.token, false, T0, &st, &c), "");
    assert_true(c.temporary);
    assert_string_equal(c.arn, s.arn);
    assert_string_equal(c.account, "123456789012");
    assert_string_equal(c.user_id, s.user_id);
    assert_string_equal(authorize(emu, EMU_SVC_S3, s.akid, s.token, true, T0 + 899999, &st, NULL),
                        "");
    /* ... and refused at it, in each protocol's words. */
    assert_string_equal(authorize(emu, EMU_SVC_SQS, s.akid, s.token, false, T0 + 900000, &st, &c),
                        "ExpiredToken");
    assert_int_equal(st, 403);
    assert_false(c.temporary);
    assert_string_equal(authorize(emu, EMU_SVC_S3, s.akid, s.token, false, T0 + 900000, &st, NULL),
                        "ExpiredToken");
    assert_int_equal(st, 400);
    /* Without the token, or with another one. */
    assert_string_equal(authorize(emu, EMU_SVC_STS, s.akid, NULL, false, T0, &st, NULL),
                        "InvalidClientTokenId");
    assert_int_equal(st, 403);
    assert_string_equal(authorize(emu, EMU_SVC_S3, s.akid, NULL, false, T0, &st, NULL),
                        "InvalidAccessKeyId");
    assert_int_equal(st, 403);
    assert_string_equal(authorize(emu, EMU_SVC_CW, s.akid, "wrong", false, T0, &st, NULL),
                        "InvalidClientTokenId");
    assert_string_equal(authorize(emu, EMU_SVC_S3, s.akid, "wrong", true, T0, &st, NULL),
                        "InvalidToken");
    assert_int_equal(st, 400);
    char other[EMU_STS_TOKEN_LEN + 1];
    memcpy(other, s.token, sizeof other);
    other[EMU_STS_TOKEN_LEN - 1] ^= 1;
    assert_string_equal(authorize(emu, EMU_SVC_SQS, s.akid, other, false, T0, &st, NULL),
                        "InvalidClientTokenId");
    /* Another session's token does not fit this key. */
    struct emu_session s2;
    issue(emu, 3600, T0, &s2);
    assert_string_not_equal(s.akid, s2.akid);
    assert_string_equal(s.user_id, s2.user_id); /* the same role and session name */
    assert_string_equal(authorize(emu, EMU_SVC_SQS, s.akid, s2.token, false, T0, &st, NULL),
                        "InvalidClientTokenId");
    /* Keys STS never issued are left to the verifier. */
    assert_string_equal(
        authorize(emu, EMU_SVC_SQS, "ASIAAAAAAAAAAAAAAAAA", s.token, false, T0, &st, NULL), "-");
    bm_emu_free(emu);
}

static void test_bounded(void **state)
{
    (void)state;
    struct bm_emu *emu = new_emu();
    struct emu_session s, first;
    int st;
    for (int i = 0; i < EMU_STS_MAX_SESSIONS; i++)
        issue(emu, 900, T0, i == 0 ? &first : &s);
    assert_int_equal(emu->n_sessions, EMU_STS_MAX_SESSIONS);
    /* At the cap the expired sessions go first, all of them at once. */
    issue(emu, 3600, T0 + 900000, &s);
    assert_int_equal(emu->n_sessions, 1);
    assert_string_equal(authorize(emu, EMU_SVC_SQS, first.akid, first.token, false, T0, &st, NULL),
                        "-");
    /* With none expired, the oldest makes room. */
    issue(emu, 3600, T0 + 900000, &first);
    for (int i = 2; i < EMU_STS_MAX_SESSIONS; i++)
        issue(emu, 3600, T0 + 900000, &s);
    assert_int_equal(emu->n_sessions, EMU_STS_MAX_SESSIONS);
    assert_string_equal(
        authorize(emu, EMU_SVC_SQS, first.akid, first.token, false, T0 + 900000, &st, NULL), "");
    issue(emu, 3600, T0 + 900000, &s);
    issue(emu, 3600, T0 + 900000, &s);
    assert_int_equal(emu->n_sessions, EMU_STS_MAX_SESSIONS);
    assert_string_equal(
        authorize(emu, EMU_SVC_SQS, first.akid, first.token, false, T0 + 900000, &st, NULL), "-");
    assert_string_equal(authorize(emu, EMU_SVC_SQS, s.akid, s.token, false, T0 + 900000, &st, NULL),
                        "");
    bm_emu_free(emu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_assume_role_validation),
        cmocka_unit_test(test_issue_and_authorize),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
