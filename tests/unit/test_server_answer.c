/* test_server_answer.c: POST /events answers in the sender's language (docs/formats.md 5):
 * a Lambda event always 200 with batchItemFailures; an array of SQS records the same list with
 * a status that is 200 only when every message succeeded, else the worst failure's (one a retry
 * can fix before poison) with Retry-After; one record or a bare event its own status. The
 * expected statuses are AWS's rule (API destinations retry 429 and 5xx only), written out. */
#include "tu.h"

#include "server/srv_int.h"

#include <cjson/cJSON.h>

/* A batch of n messages "m0".."m<n-1>" in form, each naming no object. */
static struct bm_event_batch *batch(enum bm_event_form form, size_t n)
{
    struct bm_event_batch *b = bm_calloc(1, sizeof *b);
    assert_non_null(b);
    b->form = form;
    b->is_sqs = form != BM_FORM_BARE;
    b->msgs = bm_calloc(n, sizeof *b->msgs);
    assert_non_null(b->msgs);
    b->n = n;
    for (size_t i = 0; i < n; i++) {
        char id[32]; /* room for any size_t: -O1 cannot see that n is small */
        snprintf(id, sizeof id, "m%zu", i);
        b->msgs[i].message_id = bm_strdup(form == BM_FORM_BARE ? "" : id);
        assert_non_null(b->msgs[i].message_id);
    }
    return b;
}

static void fail_with(struct bm__msg_result *r, bm_err code)
{
    r->failed = true;
    r->code = code;
    bm_errmsg_set(&r->em, code, "failed with %s", bm_err_str(code));
}

/* Answers b with res; the parsed body into *out (caller deletes), the reply's fields back. */
static int answer(const struct bm_event_batch *b, const struct bm__msg_result *res,
                  int *retry_after, cJSON **out)
{
    struct bm__reply r = {0};
    bm_buf_init(&r.body, (size_t)1 << 20);
    bm__events_answer(b, res, "req-1", &r);
    *out = cJSON_ParseWithLength(r.body.data, r.body.len);
    assert_non_null(*out);
    *retry_after = r.retry_after_s;
    int st = r.status;
    bm_buf_cleanup(&r.body);
    return st;
}

static char *failures(const cJSON *j)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "batchItemFailures");
    assert_true(cJSON_IsArray(l));
    struct bm_buf b;
    bm_buf_init(&b, 4096);
    const cJSON *it;
    cJSON_ArrayForEach(it, l)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "itemIdentifier");
        assert_true(cJSON_IsString(id));
        assert_int_equal(bm_buf_appendf(&b, "%s;", id->valuestring), BM_OK);
    }
    assert_int_equal(bm_buf_append(&b, "", 0), BM_OK);
    return bm_buf_steal(&b);
}

static const char *code_of(const cJSON *j)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "errorCode");
    return cJSON_IsString(c) ? c->valuestring : "";
}

static void test_array_verdicts(void **state)
{
    (void)state;
    static const struct {
        bm_err codes[3]; /* per message, BM_OK = succeeded */
        int status;
        bool waits;
        const char *listed, *wire;
    } cases[] = {
        {{BM_OK, BM_OK, BM_OK}, 200, false, "", ""},
        {{BM_OK, BM_E_MSG_PARSE, BM_OK}, 400, false, "m1;", "BMAS-005"},
        {{BM_E_S3_NOT_FOUND, BM_OK, BM_E_MSG_PARSE}, 404, false, "m0;m2;", "BMAS-001"},
        /* A retry can fix the second: the whole array comes back (the rest as duplicates). */
        {{BM_E_MSG_PARSE, BM_E_UPSTREAM, BM_OK}, 502, true, "m0;m1;", "BMAS-017"},
        {{BM_E_STORAGE_BUSY, BM_E_MSG_PARSE, BM_E_UPSTREAM}, 503, true, "m0;m1;m2;", "BMAS-013"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int form = 0; form < 2; form++) {
            struct bm_event_batch *b = batch(form ? BM_FORM_LAMBDA : BM_FORM_SQS_ARRAY, 3);
            struct bm__msg_result res[3] = {{0}};
            for (size_t k = 0; k < 3; k++) {
                if (cases[i].codes[k] != BM_OK)
                    fail_with(&res[k], cases[i].codes[k]);
                else
                    res[k].duplicates = 1;
            }
            int after;
            cJSON *j;
            int st = answer(b, res, &after, &j);
            char *listed = failures(j);
            assert_string_equal(listed, cases[i].listed);
            if (form == 1) {
                /* Lambda reads the list: always 200, never an error body. */
                assert_int_equal(st, 200);
                assert_int_equal(after, 0);
                assert_int_equal(cJSON_GetArraySize(j), 1);
            } else {
                if (st != cases[i].status)
                    fail_msg("case %zu: status %d, want %d", i, st, cases[i].status);
                assert_int_equal(after > 0, cases[i].waits);
                assert_string_equal(code_of(j), cases[i].wire);
            }
            bm_free(listed);
            cJSON_Delete(j);
            bm_event_batch_free(b);
        }
    }
}

static void test_one_record(void **state)
{
    (void)state;
    for (int form = 0; form < 2; form++) {
        struct bm_event_batch *b = batch(form ? BM_FORM_BARE : BM_FORM_SQS_RECORD, 1);
        struct bm__msg_result ok = {.duplicates = 1};
        int after;
        cJSON *j;
        assert_int_equal(answer(b, &ok, &after, &j), 200);
        assert_int_equal(after, 0);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "status")->valuestring,
                            "duplicate");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "messageId");
        if (form == 0)
            assert_string_equal(id->valuestring, "m0");
        else
            assert_null(id);
        cJSON_Delete(j);
        static const struct {
            bm_err code;
            int status;
            bool waits;
        } cases[] = {{BM_E_MSG_PARSE, 400, false},    {BM_E_S3_NOT_FOUND, 404, false},
                     {BM_E_S3_DENIED, 403, false},    {BM_E_QUARANTINED, 422, false},
                     {BM_E_UPSTREAM, 502, true},      {BM_E_STORAGE_BUSY, 503, true},
                     {BM_E_NO_CREDENTIALS, 500, true}};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            struct bm__msg_result r = {0};
            fail_with(&r, cases[i].code);
            assert_int_equal(answer(b, &r, &after, &j), cases[i].status);
            assert_int_equal(after > 0, cases[i].waits);
            assert_string_equal(code_of(j), bm_err_wire(cases[i].code));
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "details");
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(d, "requestId")->valuestring,
                                "req-1");
            if (form == 0)
                assert_string_equal(cJSON_GetObjectItemCaseSensitive(d, "messageId")->valuestring,
                                    "m0");
            cJSON_Delete(j);
        }
        bm_event_batch_free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_array_verdicts),
        cmocka_unit_test(test_one_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
