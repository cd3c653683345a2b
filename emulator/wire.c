/* wire.c: what SQS and CloudWatch share on the wire. Query forms become the JSON 1.0 input
 * shape so that each handler is written once (writer.c emits either protocol's response);
 * AWS errors are rendered in the protocol's own form (S3 XML, Query XML, JSON + __type). */
#include "emulator/emu_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- errors --------------------------------------------------------------------------- */
/* The codes handlers use, with their HTTP status and JSON 1.0 __type. For Query and S3 the
 * code itself is the wire code; rows whose query code differs name it. */
static const struct errdef {
    const char *code;
    int status;
    const char *query_code; /* NULL = code */
    const char *json_type;  /* NULL = code */
} errdefs[] = {
    /* Every service (authentication, generic failures). */
    {"SignatureDoesNotMatch", 403, NULL, "com.amazon.coral.service#InvalidSignatureException"},
    {"InvalidClientTokenId", 403, NULL, "com.amazon.coral.service#UnrecognizedClientException"},
    {"MissingAuthenticationToken", 403, NULL,
     "com.amazon.coral.service#MissingAuthenticationTokenException"},
    {"IncompleteSignature", 400, NULL, "com.amazon.coral.service#IncompleteSignatureException"},
    {"RequestExpired", 400, NULL, "com.amazon.coral.service#RequestExpired"},
    {"InvalidAction", 400, NULL, "com.amazon.coral.service#UnknownOperationException"},
    {"InternalFailure", 500, NULL, "com.amazon.coral.service#InternalFailure"},
    {"SerializationException", 400, NULL, "com.amazon.coral.service#SerializationException"},
    {"RequestEntityTooLarge", 413, NULL, NULL},
    /* Temporary credentials past their expiration (Query services; S3 answers 400). */
    {"ExpiredToken", 403, NULL, "com.amazon.coral.service#ExpiredTokenException"},
    /* STS (Query only). */
    {"ValidationError", 400, NULL, NULL},
    /* SQS (shapes of the 2012-11-05 model; Query codes from its awsQueryError traits). */
    {"QueueDoesNotExist", 400, "AWS.SimpleQueueService.NonExistentQueue",
     "com.amazonaws.sqs#QueueDoesNotExist"},
    {"QueueNameExists", 400, "QueueAlreadyExists", "com.amazonaws.sqs#QueueNameExists"},
    {"ReceiptHandleIsInvalid", 404, NULL, "com.amazonaws.sqs#ReceiptHandleIsInvalid"},
    {"MessageNotInflight", 400, "AWS.SimpleQueueService.MessageNotInflight",
     "com.amazonaws.sqs#MessageNotInflight"},
    {"InvalidAttributeName", 400, NULL, "com.amazonaws.sqs#InvalidAttributeName"},
    {"InvalidAttributeValue", 400, NULL, "com.amazonaws.sqs#InvalidAttributeValue"},
    {"InvalidMessageContents", 400, NULL, "com.amazonaws.sqs#InvalidMessageContents"},
    {"TooManyEntriesInBatchRequest", 400, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
     "com.amazonaws.sqs#TooManyEntriesInBatchRequest"},
    {"EmptyBatchRequest", 400, "AWS.SimpleQueueService.EmptyBatchRequest",
     "com.amazonaws.sqs#EmptyBatchRequest"},
    {"BatchEntryIdsNotDistinct", 400, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
     "com.amazonaws.sqs#BatchEntryIdsNotDistinct"},
    {"InvalidBatchEntryId", 400, "AWS.SimpleQueueService.InvalidBatchEntryId",
     "com.amazonaws.sqs#InvalidBatchEntryId"},
    /* CloudWatch (shapes of the 2010-08-01 model with their Query codes). */
    {"InvalidParameterValue", 400, NULL, "com.amazonaws.cloudwatch#InvalidParameterValueException"},
    {"InvalidParameterCombination", 400, NULL,
     "com.amazonaws.cloudwatch#InvalidParameterCombinationException"},
    {"MissingParameter", 400, NULL, "com.amazonaws.cloudwatch#MissingRequiredParameterException"},
    {"InvalidNextToken", 400, NULL, "com.amazonaws.cloudwatch#InvalidNextToken"},
    {"DashboardInvalidInputError", 400, "InvalidParameterInput",
     "com.amazonaws.cloudwatch#DashboardInvalidInputError"},
    {"DashboardNotFoundError", 404, "ResourceNotFound",
     "com.amazonaws.cloudwatch#DashboardNotFoundError"},
    {"ResourceNotFound", 404, NULL, "com.amazonaws.cloudwatch#ResourceNotFound"},
    /* S3 (REST-XML: the code is all there is). */
    {"NoSuchKey", 404, NULL, NULL},
    {"NoSuchBucket", 404, NULL, NULL},
    {"AccessDenied", 403, NULL, NULL},
    {"InvalidAccessKeyId", 403, NULL, NULL},
    {"InvalidToken", 400, NULL, NULL},
    {"RequestTimeTooSkewed", 403, NULL, NULL},
    {"AuthorizationHeaderMalformed", 400, NULL, NULL},
    {"PermanentRedirect", 301, NULL, NULL},
    {"IllegalLocationConstraintException", 400, NULL, NULL},
    {"InvalidLocationConstraint", 400, NULL, NULL},
    {"XAmzContentSHA256Mismatch", 400, NULL, NULL},
    {"BucketAlreadyOwnedByYou", 409, NULL, NULL},
    {"BucketNotEmpty", 409, NULL, NULL},
    {"InvalidBucketName", 400, NULL, NULL},
    {"InvalidRange", 416, NULL, NULL},
    {"PreconditionFailed", 412, NULL, NULL},
    {"EntityTooLarge", 400, NULL, NULL},
    {"BadDigest", 400, NULL, NULL},
    {"InvalidDigest", 400, NULL, NULL},
    {"MalformedXML", 400, NULL, NULL},
    {"InvalidArgument", 400, NULL, NULL},
    {"InvalidRequest", 400, NULL, NULL},
    {"NotImplemented", 501, NULL, NULL},
    {"MethodNotAllowed", 405, NULL, NULL},
    {"IncompleteBody", 400, NULL, NULL},
    {"NoSuchUpload", 404, NULL, NULL},
    {"InvalidPart", 400, NULL, NULL},
    {"InvalidPartOrder", 400, NULL, NULL},
    {"EntityTooSmall", 400, NULL, NULL},
    {"InternalError", 500, NULL, NULL},
};

static const struct errdef *errdef_find(const char *code)
{
    for (size_t i = 0; i < sizeof errdefs / sizeof errdefs[0]; i++) {
        if (strcmp(errdefs[i].code, code) == 0)
            return &errdefs[i];
    }
    return NULL;
}

bm_err bm__emu_fail_status(struct emu_req *rq, int status, const char *code, const char *msg)
{
    rq->err.status = status;
    snprintf(rq->err.code, sizeof rq->err.code, "%s", code);
    snprintf(rq->err.message, sizeof rq->err.message, "%s", msg);
    return BM_E_BAD_REQUEST;
}

bm_err bm__emu_fail(struct emu_req *rq, const char *code, const char *fmt, ...)
{
    const struct errdef *d = errdef_find(code);
    char msg[sizeof rq->err.message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bm__emu_fail_status(rq, d ? d->status : 400, code, msg);
}

bm_err bm__emu_resp_header(struct emu_resp *rs, const char *name, const char *fmt, ...)
{
    if (rs->n_h == EMU_RESP_MAX_HEADERS)
        return BM_E_TOO_LARGE;
    struct bm_buf v;
    bm_buf_init(&v, 64 * 1024);
    va_list ap;
    va_start(ap, fmt);
    char small[512];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return BM_E_INTERNAL;
    bm_err rc = bm_buf_append(&v, small, (size_t)n < sizeof small ? (size_t)n : sizeof small - 1);
    char *nm = bm_strdup(name);
    if (rc != BM_OK || nm == NULL || v.data == NULL) {
        bm_free(nm);
        bm_buf_cleanup(&v);
        return rc != BM_OK ? rc : BM_E_NOMEM;
    }
    rs->hname[rs->n_h] = nm;
    rs->hvalue[rs->n_h++] = bm_buf_steal(&v);
    return BM_OK;
}

const char *bm__emu_header(const struct emu_req *rq, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < rq->n_hdr; i++) {
        if (rq->hdr[i].name_len == n && strncasecmp(rq->hdr[i].name, name, n) == 0)
            return rq->hdr[i].value;
    }
    return NULL;
}

bm_err bm__emu_render_error(const struct emu_req *rq, struct emu_resp *rs)
{
    const struct errdef *d = errdef_find(rq->err.code);
    const char *qcode = d && d->query_code ? d->query_code : rq->err.code;
    const char *type = rq->err.status >= 500 ? "Receiver" : "Sender";
    struct bm_buf *b = &rs->body;
    bm_err rc = BM_OK;
    rs->status = rq->err.status;
    bm_buf_reset(b);
    if (rq->svc == EMU_SVC_S3) {
        rs->content_type = "application/xml";
        if (strcmp(rq->method, "HEAD") == 0)
            return BM_OK; /* HEAD errors carry no body, only the status */
        if ((rc = bm_buf_append_str(b, EMU_S3_XML_DECL "<Error>")) != BM_OK ||
            (rc = bm__emu_xml_elem(b, "Code", rq->err.code, strlen(rq->err.code))) != BM_OK ||
            (rc = bm__emu_xml_elem(b, "Message", rq->err.message, strlen(rq->err.message))) !=
                BM_OK)
            return rc;
        if (rq->err.res_name[0] != '\0' &&
            (rc = bm__emu_xml_elem(b, rq->err.res_name, rq->err.res_value,
                                   strlen(rq->err.res_value))) != BM_OK)
            return rc;
        return bm_buf_appendf(b, "<RequestId>%s</RequestId><HostId>%s</HostId></Error>", rq->req_id,
                              rq->req_id);
    }
    if (rq->proto == EMU_PROTO_JSON) {
        /* awsQueryCompatible services: __type names the JSON shape, x-amzn-query-error the
         * Query code, which is what botocore and the JS SDK report as the error code. */
        rs->content_type = "application/x-amz-json-1.0";
        if ((rc = bm__emu_resp_header(rs, "x-amzn-query-error", "%s;%s", qcode, type)) != BM_OK ||
            (rc = bm_buf_append_str(b, "{\"__type\":")) != BM_OK)
            return rc;
        const char *jt = d && d->json_type ? d->json_type : rq->err.code;
        if ((rc = bm_buf_append_json_str(b, jt, strlen(jt))) != BM_OK ||
            (rc = bm_buf_append_str(b, ",\"message\":")) != BM_OK ||
            (rc = bm_buf_append_json_str(b, rq->err.message, strlen(rq->err.message))) != BM_OK)
            return rc;
        return bm_buf_append_char(b, '}');
    }
    rs->content_type = "text/xml";
    if ((rc = bm_buf_appendf(b,
                             "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"%s\"><Error>"
                             "<Type>%s</Type>",
                             rq->svc == EMU_SVC_SQS   ? EMU_SQS_NS
                             : rq->svc == EMU_SVC_STS ? EMU_STS_NS
                                                      : EMU_CW_NS,
                             type)) != BM_OK ||
        (rc = bm__emu_xml_elem(b, "Code", qcode, strlen(qcode))) != BM_OK ||
        (rc = bm__emu_xml_elem(b, "Message", rq->err.message, strlen(rq->err.message))) != BM_OK)
        return rc;
    return bm_buf_appendf(b, "%s</Error><RequestId>%s</RequestId></ErrorResponse>",
                          rq->svc == EMU_SVC_SQS ? "<Detail/>" : "", rq->req_id);
}

/* ---- Query form to JSON shape ---------------------------------------------------------- */
static bool all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 6)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* The child of parent at one path step: an object member (name) or, when parent is an array,
 * the 1-based element idx. Created as an object, or as leaf_value when is_leaf. */
static cJSON *step(cJSON *parent, const char *name, long idx, bool is_leaf, bool next_is_list,
                   const char *leaf_value)
{
    cJSON *child;
    if (cJSON_IsArray(parent)) {
        while (cJSON_GetArraySize(parent) < idx) {
            if (!cJSON_AddItemToArray(parent, cJSON_CreateNull()))
                return NULL;
        }
        child = cJSON_GetArrayItem(parent, (int)idx - 1);
    } else {
        child = cJSON_GetObjectItemCaseSensitive(parent, name);
    }
    bool want_list = !is_leaf && next_is_list;
    bool ok = child != NULL && !cJSON_IsNull(child) &&
              (is_leaf ? cJSON_IsString(child)
                       : (want_list ? cJSON_IsArray(child) : cJSON_IsObject(child)));
    if (ok)
        return child; /* a repeated leaf keeps its first value */
    cJSON *made = is_leaf     ? cJSON_CreateString(leaf_value)
                  : want_list ? cJSON_CreateArray()
                              : cJSON_CreateObject();
    if (made == NULL)
        return NULL;
    if (cJSON_IsArray(parent)) {
        if (!cJSON_ReplaceItemInArray(parent, (int)idx - 1, made))
            return NULL;
    } else if (child != NULL) {
        if (!cJSON_ReplaceItemInObjectCaseSensitive(parent, name, made))
            return NULL;
    } else if (!cJSON_AddItemToObject(parent, name, made)) {
        return NULL;
    }
    return made;
}

static bm_err add_param(cJSON *root, const char *name, const char *value)
{
    /* Split "MetricData.member.1.Dimensions.member.2.Name" into segments. */
    const char *seg[32];
    size_t seglen[32], n = 0;
    for (const char *p = name; n < 32;) {
        const char *dot = strchr(p, '.');
        seg[n] = p;
        seglen[n++] = dot ? (size_t)(dot - p) : strlen(p);
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    cJSON *cur = root;
    for (size_t i = 0; i < n;) {
        char key[128];
        if (seglen[i] == 0 || seglen[i] >= sizeof key)
            return BM_E_BAD_REQUEST;
        memcpy(key, seg[i], seglen[i]);
        key[seglen[i]] = '\0';
        long idx = 0;
        if (cJSON_IsArray(cur)) {
            if (!all_digits(seg[i], seglen[i]) || (idx = strtol(key, NULL, 10)) < 1 || idx > 10000)
                return BM_E_BAD_REQUEST;
        }
        size_t next = i + 1;
        /* "member" and "entry" only say that the next segment is an index. */
        if (next < n && ((seglen[next] == 6 && memcmp(seg[next], "member", 6) == 0) ||
                         (seglen[next] == 5 && memcmp(seg[next], "entry", 5) == 0)))
            next++;
        bool is_leaf = next >= n;
        bool next_is_list = !is_leaf && (next > i + 1 || all_digits(seg[next], seglen[next]));
        if (is_leaf && next > i + 1)
            return BM_E_BAD_REQUEST; /* "X.member" with no index */
        cur = step(cur, key, idx, is_leaf, next_is_list, value);
        if (cur == NULL)
            return BM_E_NOMEM;
        i = next;
    }
    return BM_OK;
}

bm_err bm__emu_query_to_json(const char *form, size_t len, cJSON **out)
{
    cJSON *root = cJSON_CreateObject();
    struct bm_buf name, value;
    struct bm_url_pair pair;
    size_t pos = 0;
    bm_err rc = root ? BM_OK : BM_E_NOMEM;
    bm_buf_init(&name, 4096);
    bm_buf_init(&value, 1 << 20);
    while (rc == BM_OK && bm_url_query_next(form, len, &pos, &pair)) {
        bm_buf_reset(&name);
        bm_buf_reset(&value);
        if ((rc = bm_url_decode(pair.name, pair.name_len, true, &name)) != BM_OK ||
            (rc = bm_url_decode(pair.value, pair.value_len, true, &value)) != BM_OK ||
            (rc = bm_buf_append(&value, "", 0)) != BM_OK)
            break;
        if (name.len == 0)
            continue; /* "=x": no parameter */
        if (strcmp(name.data, "Action") == 0 || strcmp(name.data, "Version") == 0)
            continue;
        if (memchr(value.data, '\0', value.len) != NULL) {
            rc = BM_E_BAD_REQUEST; /* cJSON strings end at a NUL */
            break;
        }
        rc = add_param(root, name.data, value.data);
    }
    bm_buf_cleanup(&name);
    bm_buf_cleanup(&value);
    if (rc != BM_OK) {
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return BM_OK;
}

/* ---- input accessors ------------------------------------------------------------------ */
const char *bm__emu_in_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool str_num(const char *s, double *out)
{
    char *end = NULL;
    if (*s == '\0')
        return false;
    double d = strtod(s, &end);
    if (*end != '\0' || !isfinite(d))
        return false;
    *out = d;
    return true;
}

bool bm__emu_in_num(const cJSON *o, const char *k, double *out, bool *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    *present = v != NULL && !cJSON_IsNull(v);
    if (!*present)
        return true;
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
        *out = v->valuedouble;
        return true;
    }
    return cJSON_IsString(v) && str_num(v->valuestring, out);
}

bool bm__emu_in_time(const cJSON *v, int64_t *ms)
{
    double d;
    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (cJSON_IsString(v)) {
        int64_t t;
        const char *s = v->valuestring;
        if (bm_time_parse(s, strlen(s), &t)) {
            /* Keep milliseconds, which bm_time_parse truncates. */
            const char *dot = strchr(s, '.');
            long frac = 0;
            for (int i = 1; dot != NULL && i <= 3 && dot[i] >= '0' && dot[i] <= '9'; i++)
                frac += (dot[i] - '0') * (i == 1 ? 100 : i == 2 ? 10 : 1);
            *ms = t * 1000 + frac;
            return true;
        }
        if (!str_num(s, &d))
            return false;
    } else {
        return false;
    }
    if (!isfinite(d) || d < 0 || d > 32503680000.0) /* past year 3000: garbage */
        return false;
    *ms = (int64_t)(d * 1000.0 + 0.5); /* d >= 0: rounds to the nearest millisecond */
    return true;
}

bm_err bm__emu_in_long(struct emu_req *rq, const cJSON *o, const char *k, long min, long max,
                       long *out)
{
    double d;
    bool present;
    if (!bm__emu_in_num(o, k, &d, &present) ||
        (present && (d < min || d > max || d != (double)(long)d)))
        return bm__emu_fail(rq, "InvalidParameterValue",
                            "Value %s for parameter %s is invalid. Reason: Must be between %ld "
                            "and %ld.",
                            bm__emu_in_str(o, k) ? bm__emu_in_str(o, k) : "(number)", k, min, max);
    if (present)
        *out = (long)d;
    return BM_OK;
}
