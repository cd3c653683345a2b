/* record.c: reads one Bedrock model-invocation log record (docs/formats.md section 1.3), keeping
 * only the dozen fields aggregation needs and skipping prompt and response bodies unparsed.
 * Field order is not fixed in real logs, so every member is matched by name. */
#include "core/core_int.h"

#include <string.h>

#define FMT BM_E_LOG_FORMAT
/* Longest string field we keep; model ids and regions are far shorter, and CloudWatch takes
 * at most 255 characters per dimension value anyway. */
#define FIELD_MAX 2048

enum field {
    F_NONE,
    F_TIMESTAMP,
    F_REGION,
    F_INFERENCE_REGION,
    F_OPERATION,
    F_MODEL_ID,
    F_INPUT,
    F_OUTPUT,
    F_IN_TOKENS,
    F_OUT_TOKENS,
    F_CACHE_READ,
    F_CACHE_WRITE,
    F_REQUEST_METADATA,
    F_IDENTITY
};

#define KEY_IS(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), (n)) == 0)

static enum field top_field(const char *k, size_t n)
{
    if (KEY_IS(k, n, "timestamp"))
        return F_TIMESTAMP;
    if (KEY_IS(k, n, "region"))
        return F_REGION;
    if (KEY_IS(k, n, "inferenceRegion"))
        return F_INFERENCE_REGION;
    if (KEY_IS(k, n, "operation"))
        return F_OPERATION;
    if (KEY_IS(k, n, "modelId"))
        return F_MODEL_ID;
    if (KEY_IS(k, n, "input"))
        return F_INPUT;
    if (KEY_IS(k, n, "output"))
        return F_OUTPUT;
    if (KEY_IS(k, n, "requestMetadata"))
        return F_REQUEST_METADATA;
    if (KEY_IS(k, n, "identity"))
        return F_IDENTITY;
    return F_NONE;
}

static enum field input_field(const char *k, size_t n)
{
    if (KEY_IS(k, n, "inputTokenCount"))
        return F_IN_TOKENS;
    if (KEY_IS(k, n, "cacheReadInputTokenCount"))
        return F_CACHE_READ;
    if (KEY_IS(k, n, "cacheWriteInputTokenCount"))
        return F_CACHE_WRITE;
    return F_NONE;
}

static enum field output_field(const char *k, size_t n)
{
    return KEY_IS(k, n, "outputTokenCount") ? F_OUT_TOKENS : F_NONE;
}

struct ctx {
    struct bm__scan s;
    struct bm__record *r;
    struct bm_errmsg *em;
    const char *start;
    bm_err token_err; /* first bad token count; the record is still scanned to the end */
    const char *token_field;
    const struct bm_attr_keys *attrs; /* to read; NULL: none */
};

/* Says what went wrong and where, as a byte offset into the record. */
static bm_err fail_at(struct ctx *c, const char *what)
{
    return bm_errmsg_set(c->em, FMT, "%s at byte %zu", what, (size_t)(c->s.p - c->start));
}

/* Reads a member key (a short string) into a small buffer so escaped keys still match. */
static bm_err read_key(struct ctx *c, char *kbuf, size_t cap, const char **k, size_t *n)
{
    if (c->s.p >= c->s.end || *c->s.p != '"')
        return fail_at(c, "expected a member name");
    bm_err rc = bm__scan_string(&c->s, kbuf, cap, k, n);
    if (rc == BM_E_TOO_LARGE) {
        *k = "";
        *n = 0; /* an escaped key this long is none of ours */
        rc = BM_OK;
    }
    if (rc != BM_OK)
        return fail_at(c, "unterminated member name");
    bm__scan_ws(&c->s);
    if (c->s.p >= c->s.end || *c->s.p != ':')
        return fail_at(c, "expected ':' after a member name");
    c->s.p++;
    bm__scan_ws(&c->s);
    return BM_OK;
}

static bm_err read_string_field(struct ctx *c, struct bm__slice *out, const char *name)
{
    if (c->s.p < c->s.end && *c->s.p == 'n') {
        out->p = NULL; /* null: treated as absent */
        out->len = 0;
        return bm__scan_skip_value(&c->s) == BM_OK ? BM_OK : fail_at(c, "bad literal");
    }
    if (c->s.p >= c->s.end || *c->s.p != '"')
        return bm_errmsg_set(c->em, FMT, "%s is not a string", name);
    struct bm__record *r = c->r;
    const char *p;
    size_t n;
    bm_err rc = bm__scan_string(&c->s, r->scratch + r->scratch_used,
                                sizeof r->scratch - r->scratch_used, &p, &n);
    if (rc == BM_E_TOO_LARGE || (rc == BM_OK && n > FIELD_MAX))
        return bm_errmsg_set(c->em, FMT, "%s longer than %d bytes", name, FIELD_MAX);
    if (rc != BM_OK)
        return bm_errmsg_set(c->em, FMT, "malformed string in %s", name);
    if (p == r->scratch + r->scratch_used)
        r->scratch_used += n;
    out->p = p;
    out->len = n;
    return BM_OK;
}

static bm_err read_tokens(struct ctx *c, uint64_t *out, const char *name)
{
    bm_err rc = bm__scan_uint(&c->s, out);
    if (rc == BM_E_TOKENS) {
        if (c->token_err == BM_OK) {
            c->token_err = BM_E_TOKENS;
            c->token_field = name;
        }
        *out = 0;
        return BM_OK;
    }
    return rc == BM_OK ? BM_OK : bm_errmsg_set(c->em, FMT, "malformed number in %s", name);
}

/* Walks the members of the object at s->p, handing each to `member`. */
static bm_err walk_object(struct ctx *c, bm_err (*member)(struct ctx *, const char *, size_t))
{
    if (c->s.p >= c->s.end || *c->s.p != '{')
        return fail_at(c, "expected an object");
    c->s.p++;
    bm__scan_ws(&c->s);
    if (c->s.p < c->s.end && *c->s.p == '}') {
        c->s.p++;
        return BM_OK;
    }
    for (;;) {
        char kbuf[64];
        const char *k;
        size_t n;
        bm_err rc = read_key(c, kbuf, sizeof kbuf, &k, &n);
        if (rc == BM_OK)
            rc = member(c, k, n);
        if (rc != BM_OK)
            return rc;
        bm__scan_ws(&c->s);
        if (c->s.p >= c->s.end)
            return fail_at(c, "record ends inside an object");
        if (*c->s.p == ',') {
            c->s.p++;
            bm__scan_ws(&c->s);
            continue;
        }
        if (*c->s.p != '}')
            return fail_at(c, "expected ',' or '}'");
        c->s.p++;
        return BM_OK;
    }
}

static bm_err skip(struct ctx *c)
{
    return bm__scan_skip_value(&c->s) == BM_OK ? BM_OK : fail_at(c, "malformed JSON value");
}

static bm_err input_member(struct ctx *c, const char *k, size_t n)
{
    switch (input_field(k, n)) {
    case F_IN_TOKENS:
        return read_tokens(c, &c->r->input_tokens, "inputTokenCount");
    case F_CACHE_READ:
        return read_tokens(c, &c->r->cache_read_tokens, "cacheReadInputTokenCount");
    case F_CACHE_WRITE:
        return read_tokens(c, &c->r->cache_write_tokens, "cacheWriteInputTokenCount");
    default:
        return skip(c);
    }
}

static bm_err output_member(struct ctx *c, const char *k, size_t n)
{
    if (output_field(k, n) == F_OUT_TOKENS)
        return read_tokens(c, &c->r->output_tokens, "outputTokenCount");
    return skip(c);
}

/* input/output that are not objects (null in a hand-made record) carry no token counts. */
static bm_err nested(struct ctx *c, bm_err (*member)(struct ctx *, const char *, size_t))
{
    if (c->s.p < c->s.end && *c->s.p == '{') {
        c->s.depth++;
        bm_err rc = walk_object(c, member);
        c->s.depth--;
        return rc;
    }
    return skip(c);
}

/* The slot of attribution key k (n bytes), -1 when it is not one; "identity" names the
 * caller's identity.arn, not a requestMetadata key. */
static int attr_slot(const struct ctx *c, const char *k, size_t n, bool identity)
{
    for (int i = 0; c->attrs != NULL && i < c->attrs->n; i++) {
        bool is_id = strcmp(c->attrs->name[i], "identity") == 0;
        if (is_id == identity && strlen(c->attrs->name[i]) == n &&
            memcmp(c->attrs->name[i], k, n) == 0)
            return i;
    }
    return -1;
}

/* requestMetadata is a string map the caller set: a configured key's string value is kept, any
 * other value skipped (it is the caller's, not Bedrock's, so never an error). */
static bm_err metadata_member(struct ctx *c, const char *k, size_t n)
{
    int i = attr_slot(c, k, n, false);
    if (i < 0 || c->s.p >= c->s.end || *c->s.p != '"')
        return skip(c);
    return read_string_field(c, &c->r->attr[i], "requestMetadata value");
}

static bm_err identity_member(struct ctx *c, const char *k, size_t n)
{
    int i = attr_slot(c, "identity", 8, true);
    if (i < 0 || !KEY_IS(k, n, "arn") || c->s.p >= c->s.end || *c->s.p != '"')
        return skip(c);
    return read_string_field(c, &c->r->attr[i], "identity.arn");
}

static bm_err top_member(struct ctx *c, const char *k, size_t n)
{
    struct bm__record *r = c->r;
    switch (top_field(k, n)) {
    case F_TIMESTAMP:
        return read_string_field(c, &r->timestamp, "timestamp");
    case F_REGION:
        return read_string_field(c, &r->region, "region");
    case F_INFERENCE_REGION:
        return read_string_field(c, &r->inference_region, "inferenceRegion");
    case F_OPERATION:
        return read_string_field(c, &r->operation, "operation");
    case F_MODEL_ID:
        return read_string_field(c, &r->model_id, "modelId");
    case F_INPUT:
        return nested(c, input_member);
    case F_OUTPUT:
        return nested(c, output_member);
    case F_REQUEST_METADATA:
        return c->attrs != NULL && c->attrs->n > 0 ? nested(c, metadata_member) : skip(c);
    case F_IDENTITY:
        return c->attrs != NULL && c->attrs->n > 0 ? nested(c, identity_member) : skip(c);
    default:
        return skip(c);
    }
}

bm_err bm__record_parse(const char *line, size_t len, const struct bm_attr_keys *attrs,
                        struct bm__record *r, struct bm_errmsg *em)
{
    memset(r, 0, offsetof(struct bm__record, scratch));
    r->scratch_used = 0;
    struct ctx c = {.s = {.p = line, .end = line + len, .depth = 0},
                    .r = r,
                    .em = em,
                    .start = line,
                    .attrs = attrs};
    bm__scan_ws(&c.s);
    if (c.s.p >= c.s.end || *c.s.p != '{')
        return bm_errmsg_set(em, FMT, "a record must be a JSON object");
    bm_err rc = walk_object(&c, top_member);
    if (rc != BM_OK)
        return rc;
    bm__scan_ws(&c.s);
    if (c.s.p != c.s.end)
        return bm_errmsg_set(em, FMT, "trailing characters after the record");
    if (r->model_id.p == NULL || r->model_id.len == 0)
        return bm_errmsg_set(em, FMT, "record has no modelId");
    if (r->timestamp.p == NULL)
        return bm_errmsg_set(em, FMT, "record has no timestamp");
    if (c.token_err != BM_OK)
        return bm_errmsg_set(em, c.token_err, "%s is not a non-negative integer", c.token_field);
    return BM_OK;
}
