/* control.c: the emulator's own routes, which need no signature: LocalStack's health route,
 * fault rules (/_emulator/faults) and the per-operation request counters
 * (/_emulator/requests). The rules and counters themselves live in faults.c. */
#include "emulator/emu_int.h"

#include <string.h>

static bm_err json_reply(struct emu_resp *rs, int status, struct bm_buf *b)
{
    rs->status = status;
    rs->content_type = "application/json";
    bm_buf_cleanup(&rs->body);
    rs->body = *b;
    bm_buf_init(b, 0);
    return BM_OK;
}

/* A query parameter's decoded value (small control parameters only). */
static bool control_param(const struct emu_req *rq, const char *name, char *out, size_t cap)
{
    struct bm_url_pair p;
    size_t pos = 0;
    while (rq->query && bm_url_query_next(rq->query, rq->query_len, &pos, &p)) {
        if (p.name_len == strlen(name) && memcmp(p.name, name, p.name_len) == 0 &&
            p.value_len < cap) {
            memcpy(out, p.value, p.value_len);
            out[p.value_len] = '\0';
            return true;
        }
    }
    return false;
}

bm_err bm__emu_control(struct emu_req *rq, struct emu_resp *rs)
{
    struct bm_emu *emu = rq->emu;
    struct bm_buf b;
    bm_err rc = BM_OK;
    bool get = strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0;
    bm_buf_init(&b, 16 * 1024 * 1024);
    if (strcmp(rq->path, "/_localstack/health") == 0 && get) {
        rc = bm_buf_appendf(&b,
                            "{\"services\":{\"s3\":\"running\",\"sqs\":\"running\","
                            "\"cloudwatch\":\"running\",\"sts\":\"running\"},"
                            "\"edition\":\"community\","
                            "\"version\":\"%s\"}",
                            BM_VERSION);
        if (rc == BM_OK)
            rc = json_reply(rs, 200, &b);
    } else if (strcmp(rq->path, "/_emulator/faults") == 0) {
        if (strcmp(rq->method, "POST") == 0) {
            struct bm_errmsg em = {{0}};
            uint64_t id = 0;
            rc =
                bm__emu_faults_add(emu, rq->body.data ? rq->body.data : "", rq->body.len, &id, &em);
            if (rc == BM_OK)
                rc = bm_buf_appendf(&b, "{\"id\":%llu}", (unsigned long long)id);
            else if (rc == BM_E_BAD_REQUEST &&
                     (rc = bm_buf_append_str(&b, "{\"error\":")) == BM_OK &&
                     (rc = bm_buf_append_json_str(&b, em.text, strlen(em.text))) == BM_OK &&
                     (rc = bm_buf_append_char(&b, '}')) == BM_OK)
                return json_reply(rs, 400, &b);
        } else if (strcmp(rq->method, "DELETE") == 0) {
            bm__emu_faults_clear(emu);
            rc = bm_buf_append_str(&b, "{\"faults\":[]}");
        } else {
            rc = bm__emu_faults_json(emu, &b);
        }
        if (rc == BM_OK)
            rc = json_reply(rs, 200, &b);
    } else if (strcmp(rq->path, "/_emulator/requests") == 0) {
        char svc[32];
        bool filter = control_param(rq, "service", svc, sizeof svc);
        if (strcmp(rq->method, "DELETE") == 0)
            bm__emu_counters_reset(emu);
        rc = bm__emu_counters_json(emu, filter ? svc : NULL, &b);
        if (rc == BM_OK)
            rc = json_reply(rs, 200, &b);
    } else {
        rc = bm_buf_append_str(&b, "{\"error\":\"no such control route\"}");
        if (rc == BM_OK)
            rc = json_reply(rs, 404, &b);
    }
    bm_buf_cleanup(&b);
    return rc;
}
