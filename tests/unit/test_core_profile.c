/* Role profiles (creds_profile.c): role_arn with source_profile (keys in the credentials file,
 * role in the config file), chains of roles, credential_source, a cycle, a profile named in
 * AWS_PROFILE winning over environment keys, and a profile without credentials letting the
 * chain go on. STS answers come from the scripted transport; every AssumeRole must be signed
 * for "sts" with the source's keys. */
#include "fake_http.h"

#include <unistd.h>

static char dir[256], cred[512], conf[512];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/bmas-profile-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(cred, sizeof cred, "%s/credentials", dir);
    snprintf(conf, sizeof conf, "%s/config", dir);
    write_file(cred, "[src]\naws_access_key_id = SRCKEY\naws_secret_access_key = srcsecret\n"
                     "[self]\naws_access_key_id = SELFKEY\naws_secret_access_key = selfsecret\n");
    write_file(conf, "[default]\nregion = us-west-2\n"
                     "[profile reader]\nrole_arn = arn:aws:iam::123456789012:role/reader\n"
                     "source_profile = src\nexternal_id = ext-1\nrole_session_name = s1\n"
                     "duration_seconds = 1800\n"
                     "[profile chained]\nrole_arn = arn:aws:iam::210987654321:role/logs\n"
                     "source_profile = reader\n"
                     "[profile self]\nrole_arn = arn:aws:iam::123456789012:role/self\n"
                     "source_profile = self\n"
                     "[profile fromenv]\nrole_arn = arn:aws:iam::123456789012:role/env\n"
                     "credential_source = Environment\n"
                     "[profile loop-a]\nrole_arn = arn:aws:iam::123456789012:role/a\n"
                     "source_profile = loop-b\n"
                     "[profile loop-b]\nrole_arn = arn:aws:iam::123456789012:role/b\n"
                     "source_profile = loop-a\n"
                     "[profile nosource]\nrole_arn = arn:aws:iam::123456789012:role/x\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Secret and token named after the key, so a test can tell whose session signed a call. */
static const char *assumed(const char *akid)
{
    static char secret[4][64], token[4][64];
    static int n;
    int i = n++ % 4;
    snprintf(secret[i], sizeof secret[i], "sec-%s", akid);
    snprintf(token[i], sizeof token[i], "tok-%s", akid);
    return fake_sts_answer("AssumeRole", akid, secret[i], token[i], "2026-04-20T01:00:00Z");
}

static void start(struct fake_aws *e, const char *profile, const char *env_akid)
{
    const char *vars[] = {"AWS_PROFILE",
                          profile,
                          "AWS_SHARED_CREDENTIALS_FILE",
                          cred,
                          "AWS_CONFIG_FILE",
                          conf,
                          "AWS_ENDPOINT_URL",
                          "http://127.0.0.1:4566",
                          "AWS_EC2_METADATA_DISABLED",
                          "true",
                          env_akid ? "AWS_ACCESS_KEY_ID" : NULL,
                          env_akid,
                          "AWS_SECRET_ACCESS_KEY",
                          "envsecret",
                          NULL};
    fake_aws_setup(e, vars, 1776643200); /* 2026-04-20T00:00:00Z */
}

static void test_source_profile(void **state)
{
    (void)state;
    struct fake_aws e;
    start(&e, "reader", NULL);
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = assumed("ASIAREADER")});
    struct bm_creds c;
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_creds_get(e.creds, &c, &em), BM_OK);
    assert_string_equal(c.akid, "ASIAREADER");
    assert_string_equal(c.secret, "sec-ASIAREADER");
    assert_string_equal(c.token, "tok-ASIAREADER");
    assert_string_equal(c.source, "assume-role");
    assert_int_equal(c.expires, 1776646800);
    /* One POST to STS, signed for "sts" with the source profile's keys. */
    assert_int_equal(e.http.ncalls, 1);
    assert_string_equal(e.http.calls[0].method, "POST");
    assert_string_equal(e.http.calls[0].url, "http://127.0.0.1:4566/");
    assert_string_equal(e.http.calls[0].service, "sts");
    assert_string_equal(e.http.calls[0].akid, "SRCKEY");
    assert_string_equal(e.http.calls[0].body.data,
                        "Action=AssumeRole&DurationSeconds=1800&ExternalId=ext-1"
                        "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Freader"
                        "&RoleSessionName=s1&Version=2011-06-15");
    /* Refreshed (assumed again) five minutes before expiry. */
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = assumed("ASIAREADER2")});
    e.clock.now_ms += 56 * 60 * 1000;
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_string_equal(c.akid, "ASIAREADER2");
    fake_aws_teardown(&e);
}

static void test_chain_and_self(void **state)
{
    (void)state;
    struct fake_aws e;
    start(&e, "chained", NULL);
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = assumed("ASIAREADER")});
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = assumed("ASIALOGS")});
    struct bm_creds c;
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_string_equal(c.akid, "ASIALOGS");
    /* reader's role first (with src's keys), then logs' role with reader's session. */
    assert_int_equal(e.http.ncalls, 2);
    assert_string_equal(e.http.calls[0].akid, "SRCKEY");
    assert_string_equal(e.http.calls[1].akid, "ASIAREADER");
    assert_string_equal(e.http.calls[1].token, "tok-ASIAREADER");
    assert_non_null(strstr(e.http.calls[1].body.data, "role%2Flogs"));
    fake_aws_teardown(&e);

    /* A profile that is its own source uses its own static keys. */
    start(&e, "self", NULL);
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = assumed("ASIASELF")});
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_string_equal(c.akid, "ASIASELF");
    assert_string_equal(e.http.calls[0].akid, "SELFKEY");
    fake_aws_teardown(&e);
}

static void test_env_and_errors(void **state)
{
    (void)state;
    struct fake_aws e;
    struct bm_creds c;
    struct bm_errmsg em = {{0}};
    /* credential_source = Environment: the environment's keys sign the AssumeRole, and the
     * named profile wins over them as the answer. */
    start(&e, "fromenv", "ENVKEY");
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = assumed("ASIAENV")});
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_string_equal(c.akid, "ASIAENV");
    assert_string_equal(e.http.calls[0].akid, "ENVKEY");
    fake_aws_teardown(&e);

    /* AWS_PROFILE unset: environment keys first, no STS call. */
    start(&e, "", "ENVKEY");
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_string_equal(c.akid, "ENVKEY");
    assert_int_equal(e.http.ncalls, 0);
    fake_aws_teardown(&e);

    /* [default] holds only a region: the chain goes on (here to nothing: IMDS is off). */
    start(&e, "", NULL);
    assert_int_equal(bm_creds_get(e.creds, &c, &em), BM_E_NO_CREDENTIALS);
    assert_non_null(strstr(em.text, "no AWS credentials"));
    fake_aws_teardown(&e);

    static const struct {
        const char *profile, *msg;
    } bad[] = {
        {"loop-a", "source_profile chain longer than 4"},
        {"nosource", "role_arn needs source_profile or credential_source"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        start(&e, bad[i].profile, NULL);
        assert_int_equal(bm_creds_get(e.creds, &c, &em), BM_E_NO_CREDENTIALS);
        assert_non_null(strstr(em.text, bad[i].msg));
        assert_int_equal(e.http.ncalls, 0);
        fake_aws_teardown(&e);
    }

    /* STS refuses: BMAS-022 naming the role and STS's code. */
    start(&e, "reader", NULL);
    fake_push(&e.http, (struct fake_resp){.status = 403,
                                          .body = "<ErrorResponse><Error><Code>AccessDenied</Code>"
                                                  "<Message>not authorized to perform "
                                                  "sts:AssumeRole</Message></Error>"
                                                  "</ErrorResponse>"});
    assert_int_equal(bm_creds_get(e.creds, &c, &em), BM_E_NO_CREDENTIALS);
    assert_non_null(strstr(em.text, "STS AssumeRole for arn:aws:iam::123456789012:role/reader: "
                                    "403 AccessDenied: not authorized"));
    fake_aws_teardown(&e);
}

int main(void)
{
    bm_log_set_level(BM_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_profile),
        cmocka_unit_test(test_chain_and_self),
        cmocka_unit_test(test_env_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
