/* config.c: the configuration table (docs/style.md G6, fluent-bit's config_map). One row per
 * variable drives defaults, parsing, validation, --help and the redacted start-up dump. */
#include "core/bm_aws.h" /* validates values of every part: inflate engines, Regions, keys */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum cfg_type { CFG_STR, CFG_BOOL, CFG_INT, CFG_SIZE, CFG_LEVEL };
/* CFG_URL: a URL whose password (user:password@, or password=) is masked in the start-up line
 * (BMAS_DB=postgresql://...). */
enum { CFG_SECRET = 1, CFG_HIDDEN = 2, CFG_URL = 4 };

struct cfg_entry {
    const char *name;
    const char *alias; /* older or alternative env name, read when name is unset */
    enum cfg_type type;
    size_t off;
    const char *def;
    long long min, max;
    int flags;
    const char *help;
};

#define OFF(f) offsetof(struct bm_config, f)
#define KIB 1024LL
#define MIB (1024LL * 1024)
#define GIB (1024LL * 1024 * 1024)

static const struct cfg_entry table[] = {
    /* The spec's names (docs/formats.md section 7). */
    {"CLOUDWATCH_NAMESPACE", NULL, CFG_STR, OFF(cloudwatch_namespace), "Custom/BedrockMetrics", 1,
     255, 0, "CloudWatch namespace for published metrics"},
    {"LOG_LEVEL", NULL, CFG_LEVEL, OFF(log_level), "INFO", 0, 0, 0,
     "DEBUG, INFO, WARN, ERROR or CRITICAL (JSON lines on stderr)"},
    {"AWS_REGION", "AWS_DEFAULT_REGION", CFG_STR, OFF(aws_region), "us-east-1", 1, 64, 0,
     "region for S3, CloudWatch and SQS requests (S3 follows a bucket's own region)"},
    {"BATCH_SIZE", NULL, CFG_INT, OFF(batch_size), "100", 1, 10000, 0,
     "most SQS messages per POST /events batch and per consumer poll round"},
    {"METRICS_RETENTION_DAYS", NULL, CFG_INT, OFF(metrics_retention_days), "30", 1, 36500, 0,
     "days of aggregates and processed-object keys kept in the database"},
    {"ENABLE_CROSS_REGION_DETECTION", NULL, CFG_BOOL, OFF(enable_cross_region_detection), "true", 0,
     0, 0, "false: system inference profiles count as OnDemand"},
    {"ENABLE_GLOBAL_CROSS_REGION", NULL, CFG_BOOL, OFF(enable_global_cross_region), "true", 0, 0, 0,
     "false: global. profiles count as CrossRegion instead of GlobalCrossRegion"},
    {"DLQ_ENABLED", NULL, CFG_BOOL, OFF(dlq_enabled), "true", 0, 0, 0,
     "true: a quarantined object's message is left to the queue's DLQ; false: acknowledged"},
    {"MAX_RETRY_ATTEMPTS", NULL, CFG_INT, OFF(max_retry_attempts), "3", 1, 100, 0,
     "attempts per AWS request, and deliveries before an object is quarantined"},
    {"ENABLE_TRACE", NULL, CFG_BOOL, OFF(enable_trace), "false", 0, 0, 0,
     "true: a request's traceparent / X-Amzn-Trace-Id header goes into its log lines and back "
     "in the response"},
    /* Ours. */
    {"BMAS_LISTEN", NULL, CFG_STR, OFF(listen), "127.0.0.1:8080", 3, 255, 0,
     "HTTP listen address ADDR:PORT (flag --listen)"},
    {"BMAS_DB", NULL, CFG_STR, OFF(db_path), "./bmas.db", 1, 4096, CFG_URL,
     "SQLite database file, or a postgres:// or postgresql:// URL of a PostgreSQL database that "
     "several instances share (flag --db)"},
    {"BMAS_DB_MAX_CONNECTIONS", NULL, CFG_INT, OFF(db_max_connections), "0", 0, 1024, 0,
     "connections to the store this instance opens at most (a PostgreSQL server's "
     "max_connections is shared by every instance); 0 = the store's default: SQLite 16, "
     "PostgreSQL 8"},
    {"BMAS_AUTH_TOKEN", NULL, CFG_STR, OFF(auth_token), "", 0, 4096, CFG_SECRET,
     "when set, every route but /healthz and /dashboard needs Authorization: Bearer <token>"},
    {"BMAS_FLUSH_INTERVAL", NULL, CFG_INT, OFF(flush_interval_s), "60", 0, 86400, 0,
     "seconds between CloudWatch publishes; 0 = only on POST /flush"},
    {"BMAS_INSTANCE_ID", NULL, CFG_STR, OFF(instance_id), "", 0, 200, 0,
     "this instance's name among several on one PostgreSQL store (the publisher lease, "
     "/status); empty: hostname-pid"},
    {"BMAS_BUCKET_SECONDS", NULL, CFG_INT, OFF(bucket_seconds), "60", 1, 86400, 0,
     "aggregation bucket width in seconds (event time)"},
    {"BMAS_DIMENSION_SETS", NULL, CFG_STR, OFF(dimension_sets),
     "InferenceProfileType;InferenceProfileType,ModelId;SourceRegion,InferenceProfileType", 0, 8192,
     0,
     "CloudWatch dimension combinations: sets split by ';', names by ','; () = no "
     "dimensions; lambda-compat = the replaced Lambda's"},
    {"BMAS_CLOUDWATCH_REGION", NULL, CFG_STR, OFF(cloudwatch_region), "", 0, 31, 0,
     "region CloudWatch metrics are published to (empty: AWS_REGION)"},
    {"BMAS_SQS_QUEUE_URL", NULL, CFG_STR, OFF(sqs_queue_url), "", 0, 2048, 0,
     "consumer mode: poll this SQS queue (besides taking POSTs)"},
    {"BMAS_SQS_WAIT_SECONDS", NULL, CFG_INT, OFF(sqs_wait_seconds), "20", 0, 20, 0,
     "long-polling wait of the SQS consumer"},
    {"BMAS_AWS_DEADLINE", NULL, CFG_INT, OFF(aws_deadline_s), "300", 1, 86400, 0,
     "seconds one AWS request may take with all its retries (S3, SQS, CloudWatch, STS)"},
    {"BMAS_INGEST_THREADS", NULL, CFG_INT, OFF(ingest_threads), "2", 1, 2, 0,
     "threads per log object: 2 inflates on one and parses on another (when a CPU is free), "
     "1 keeps both on one"},
    {"BMAS_INFLATE", NULL, CFG_STR, OFF(inflate), "auto", 1, 8, 0,
     "gzip inflate engine: auto (ISA-L when built with it, else zlib), isal, zlib"},
    {"BMAS_APP_PROFILE_MAP", NULL, CFG_STR, OFF(app_profile_map), "", 0, 65536, 0,
     "application profile id=model id pairs, comma separated, for model_id"},
    {"BMAS_PRICES", NULL, CFG_STR, OFF(prices), "", 0, 4096, 0,
     "price file (CSV, USD per million tokens; docs/prices.csv) for cost_usd; empty: no cost"},
    {"BMAS_PUBLISH_COST", NULL, CFG_BOOL, OFF(publish_cost), "false", 0, 0, 0,
     "true: also publish the EstimatedCostUSD metric (each metric costs money)"},
    {"BMAS_ALLOWED_INFERENCE_REGIONS", NULL, CFG_STR, OFF(allowed_inference_regions), "", 0, 4096,
     0,
     "comma list of Regions inference may run in; others are residency violations (BMAS-025); "
     "global profiles are never violations; empty: no check"},
    {"BMAS_PUBLISH_RESIDENCY", NULL, CFG_BOOL, OFF(publish_residency), "false", 0, 0, 0,
     "true: also publish the ResidencyViolations metric"},
    {"BMAS_ATTRIBUTION_KEYS", NULL, CFG_STR, OFF(attribution_keys), "", 0, 255, 0,
     "up to 3 requestMetadata keys (or identity: the caller's ARN) to aggregate by, comma "
     "separated; GET /aggregates?group_by=attr.<key>"},
    {"BMAS_ATTRIBUTION_MAX_VALUES", NULL, CFG_INT, OFF(attribution_max_values), "100", 1, 100000, 0,
     "distinct values kept per attribution key; later new values count as \"other\""},
    {"BMAS_FETCH_CONCURRENCY", NULL, CFG_INT, OFF(fetch_concurrency), "8", 1, 64, 0,
     "log objects fetched at once"},
    {"BMAS_MAX_LINE_BYTES", NULL, CFG_SIZE, OFF(max_line_bytes), "8M", 1 * KIB, 1 * GIB, 0,
     "longest log record kept; longer ones are skipped with BMAS-010"},
    {"BMAS_MAX_OBJECT_BYTES", NULL, CFG_SIZE, OFF(max_object_bytes), "4G", 1 * KIB, 1024 * GIB, 0,
     "most uncompressed bytes read from one object (gzip bomb guard)"},
    /* 6 MiB: the most a Lambda (synchronous) invocation carries, so the largest SQS event a
     * function could forward; a 10-message batch of 256 KiB SQS bodies is 2.5 MiB. */
    {"BMAS_MAX_BODY_BYTES", NULL, CFG_SIZE, OFF(max_body_bytes), "6M", 1 * KIB, 1 * GIB, 0,
     "largest HTTP request body accepted (413 past it)"},
    {"BMAS_MAX_INFLIGHT_BYTES", NULL, CFG_SIZE, OFF(max_inflight_bytes), "64M", 1 * KIB, 64 * GIB,
     0, "request bodies held at once by all connections (503 BMAS-024 + Retry-After past it)"},
    {"BMAS_MAX_CONNECTIONS", NULL, CFG_INT, OFF(max_connections), "512", 4, 65536, 0,
     "HTTP connections at once (further ones are refused)"},
    {"BMAS_MAX_CONNECTIONS_PER_CLIENT", NULL, CFG_INT, OFF(max_connections_per_client), "64", 1,
     65536, 0, "HTTP connections at once from one client address (0 < it <= BMAS_MAX_CONNECTIONS)"},
    {"BMAS_HEADER_TIMEOUT", NULL, CFG_INT, OFF(header_timeout_s), "10", 1, 3600, 0,
     "seconds a client has to send a request's line and headers"},
    {"BMAS_REQUEST_TIMEOUT", NULL, CFG_INT, OFF(request_timeout_s), "60", 1, 3600, 0,
     "seconds a client has to send a whole request, body included"},
    {"BMAS_KEEPALIVE_TIMEOUT", NULL, CFG_INT, OFF(keepalive_timeout_s), "75", 1, 3600, 0,
     "seconds an idle keep-alive connection stays open (above a load balancer's idle timeout)"},
    {"BMAS_METRICS_MAX_SERIES", NULL, CFG_INT, OFF(metrics_max_series), "1000", 0, 1000000, 0,
     "GET /metrics: aggregate label sets shown (profile type, model, Regions); the rest are "
     "folded into one \"other\" set; 0 = no cap"},
    {"BMAS_MAX_SERIES", NULL, CFG_INT, OFF(max_series), "0", 0, 10000000, 0,
     "CloudWatch series (dimension set and values) published in 24 h; a new one past it is "
     "held back (BMAS-026); 0 = no cap"},
    {"BMAS_CLOUDWATCH_METRIC_PRICE", NULL, CFG_STR, OFF(cloudwatch_metric_price), "0.30", 1, 32, 0,
     "USD per custom metric per month, for the estimate on /status (first-tier price)"},
    /* AWS standard names. */
    {"AWS_ACCESS_KEY_ID", NULL, CFG_STR, OFF(aws_access_key_id), "", 0, 256, 0,
     "credentials, first in the chain"},
    {"AWS_SECRET_ACCESS_KEY", NULL, CFG_STR, OFF(aws_secret_access_key), "", 0, 256, CFG_SECRET,
     "credentials, first in the chain"},
    {"AWS_SESSION_TOKEN", NULL, CFG_STR, OFF(aws_session_token), "", 0, 8192, CFG_SECRET,
     "temporary credentials' session token"},
    {"AWS_PROFILE", NULL, CFG_STR, OFF(aws_profile), "", 0, 256, 0,
     "profile in the shared credentials/config files (unset: default); when set, it wins "
     "over AWS_ACCESS_KEY_ID"},
    {"AWS_SHARED_CREDENTIALS_FILE", NULL, CFG_STR, OFF(aws_shared_credentials_file), "", 0, 4096, 0,
     "default ~/.aws/credentials"},
    {"AWS_CONFIG_FILE", NULL, CFG_STR, OFF(aws_config_file), "", 0, 4096, 0,
     "default ~/.aws/config"},
    {"AWS_ENDPOINT_URL", NULL, CFG_STR, OFF(aws_endpoint_url), "", 0, 2048, 0,
     "one endpoint for every service (LocalStack, bmas-emulator)"},
    {"AWS_ENDPOINT_URL_S3", NULL, CFG_STR, OFF(aws_endpoint_url_s3), "", 0, 2048, 0,
     "S3 endpoint (path-style requests)"},
    {"AWS_ENDPOINT_URL_CLOUDWATCH", NULL, CFG_STR, OFF(aws_endpoint_url_cloudwatch), "", 0, 2048, 0,
     "CloudWatch endpoint"},
    {"AWS_ENDPOINT_URL_SQS", NULL, CFG_STR, OFF(aws_endpoint_url_sqs), "", 0, 2048, 0,
     "SQS endpoint"},
    {"AWS_ENDPOINT_URL_STS", NULL, CFG_STR, OFF(aws_endpoint_url_sts), "", 0, 2048, 0,
     "STS endpoint (web identity)"},
    {"AWS_WEB_IDENTITY_TOKEN_FILE", NULL, CFG_STR, OFF(aws_web_identity_token_file), "", 0, 4096, 0,
     "with AWS_ROLE_ARN: OIDC token file for STS AssumeRoleWithWebIdentity (EKS IRSA)"},
    {"AWS_ROLE_ARN", NULL, CFG_STR, OFF(aws_role_arn), "", 0, 2048, 0,
     "role assumed with the web identity token"},
    {"AWS_ROLE_SESSION_NAME", NULL, CFG_STR, OFF(aws_role_session_name), "", 0, 64, 0,
     "session name for that role (default bmas-<time>)"},
    {"AWS_CONTAINER_CREDENTIALS_FULL_URI", NULL, CFG_STR, OFF(aws_container_credentials_full_uri),
     "", 0, 2048, 0, "ECS/EKS container credentials"},
    {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", NULL, CFG_STR,
     OFF(aws_container_credentials_relative_uri), "", 0, 2048, 0,
     "ECS task credentials path on 169.254.170.2"},
    {"AWS_CONTAINER_AUTHORIZATION_TOKEN", NULL, CFG_STR, OFF(aws_container_authorization_token), "",
     0, 8192, CFG_SECRET, "Authorization header for container credentials"},
    {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", NULL, CFG_STR,
     OFF(aws_container_authorization_token_file), "", 0, 4096, 0,
     "file holding that header (EKS Pod Identity)"},
    {"AWS_EC2_METADATA_DISABLED", NULL, CFG_BOOL, OFF(aws_ec2_metadata_disabled), "false", 0, 0, 0,
     "true: never ask the EC2 instance metadata service"},
    {"AWS_EC2_METADATA_SERVICE_ENDPOINT", NULL, CFG_STR, OFF(aws_ec2_metadata_service_endpoint),
     "http://169.254.169.254", 1, 2048, 0, "IMDS endpoint"},
    {"HOME", NULL, CFG_STR, OFF(home), "", 0, 4096, CFG_HIDDEN, "finds ~/.aws/"},
};

#define NTABLE (sizeof table / sizeof table[0])

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Sizes take an optional K, M or G suffix (powers of 1024), with or without "iB"/"B". */
static bool parse_size(const char *s, long long min, long long max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    if (*s == '-' || *s == '\0')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return false;
    unsigned long long mul = 1;
    switch (*end) {
    case 'k':
    case 'K':
        mul = 1024ULL;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1024ULL * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1024ULL * 1024 * 1024;
        end++;
        break;
    default:
        break;
    }
    if (mul > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
        end += strlen(end);
    if (*end != '\0' || v > (unsigned long long)max / mul || v * mul < (unsigned long long)min)
        return false;
    *out = v * mul;
    return true;
}

/* What CloudWatch would refuse in a namespace (PutMetricData, "Namespace"), or NULL: refused at
 * start-up, not at every flush. "AWS/" is reserved for AWS's own services; the characters are
 * letters, digits and ". - _ / # : " and the space, with at least one that is not a space, and
 * the first not a colon. */
static const char *namespace_check(const char *v)
{
    if (strncmp(v, "AWS/", 4) == 0)
        return "the AWS/ prefix is reserved for AWS services";
    if (v[0] == ':')
        return "a namespace cannot start with ':'";
    bool seen = false;
    for (const char *p = v; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(".-_/#: ", c) != NULL))
            return "only letters, digits, spaces and . - _ / # : are allowed";
        seen = seen || c != ' ';
    }
    return seen ? NULL : "a namespace needs a character other than a space";
}

static bm_err set_entry(struct bm_config *cfg, const struct cfg_entry *e, const char *val,
                        struct bm_errmsg *em)
{
    char *base = (char *)cfg + e->off;
    switch (e->type) {
    case CFG_STR: {
        size_t len = strlen(val);
        if ((long long)len > e->max || (len > 0 && (long long)len < e->min) ||
            (len == 0 && e->min > 0))
            return bm_errmsg_set(em, BM_E_CONFIG, "%s: length must be %lld..%lld", e->name, e->min,
                                 e->max);
        const char *why = e->off == OFF(cloudwatch_namespace) ? namespace_check(val) : NULL;
        if (why != NULL)
            return bm_errmsg_set(em, BM_E_CONFIG, "%s: \"%s\" refused: %s", e->name, val, why);
        char *copy = bm_strdup(val);
        if (copy == NULL)
            return BM_E_NOMEM;
        char **slot = (char **)(void *)base;
        if (*slot != NULL && (e->flags & CFG_SECRET))
            bm_secure_zero(*slot, strlen(*slot));
        bm_free(*slot);
        *slot = copy;
        return BM_OK;
    }
    case CFG_BOOL:
        if (!parse_bool(val, (bool *)(void *)base))
            return bm_errmsg_set(em, BM_E_CONFIG, "%s: expected true or false, got \"%s\"", e->name,
                                 val);
        return BM_OK;
    case CFG_INT: {
        long long v;
        if (!parse_int(val, e->min, e->max, &v))
            return bm_errmsg_set(em, BM_E_CONFIG, "%s: expected an integer %lld..%lld, got \"%s\"",
                                 e->name, e->min, e->max, val);
        *(long *)(void *)base = (long)v;
        return BM_OK;
    }
    case CFG_SIZE:
        if (!parse_size(val, e->min, e->max, (uint64_t *)(void *)base))
            return bm_errmsg_set(em, BM_E_CONFIG,
                                 "%s: expected a size such as 8M (%lld..%lld bytes), got \"%s\"",
                                 e->name, e->min, e->max, val);
        return BM_OK;
    case CFG_LEVEL:
        if (!bm_log_level_parse(val, (enum bm_log_level *)(void *)base))
            return bm_errmsg_set(em, BM_E_CONFIG,
                                 "%s: expected DEBUG, INFO, WARN, ERROR or CRITICAL, got \"%s\"",
                                 e->name, val);
        return BM_OK;
    }
    return BM_E_INTERNAL;
}

bm_err bm_config_load(struct bm_config *cfg, bm_getenv_fn get, struct bm_errmsg *em)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NTABLE; i++) {
        bm_err rc = set_entry(cfg, &table[i], table[i].def, em);
        if (rc != BM_OK)
            return rc;
    }
    for (size_t i = 0; get != NULL && i < NTABLE; i++) {
        const char *v = get(table[i].name);
        if ((v == NULL || *v == '\0') && table[i].alias != NULL)
            v = get(table[i].alias);
        /* An empty variable means "unset" for everything but strings that may be empty. */
        if (v == NULL || (*v == '\0' && table[i].type != CFG_STR))
            continue;
        if (*v == '\0' && table[i].min > 0)
            continue;
        bm_err rc = set_entry(cfg, &table[i], v, em);
        if (rc != BM_OK)
            return rc;
    }
    enum bm_inflate inflate;
    if (!bm_inflate_parse(cfg->inflate, &inflate))
        return bm_errmsg_set(em, BM_E_CONFIG, "BMAS_INFLATE: expected auto, zlib%s, got \"%s\"",
                             bm_inflate_has_isal() ? " or isal" : " (this build has no ISA-L)",
                             cfg->inflate);
    /* The region goes into a host name and a credential scope. */
    if (cfg->cloudwatch_region[0] != '\0' && !bm_region_valid(cfg->cloudwatch_region))
        return bm_errmsg_set(em, BM_E_CONFIG,
                             "BMAS_CLOUDWATCH_REGION: expected a region such as eu-west-1, got "
                             "\"%s\"",
                             cfg->cloudwatch_region);
    char abuf[256];
    struct bm_attr_keys ak;
    bm_err arc = bm_attr_keys_parse(cfg->attribution_keys, abuf, sizeof abuf, &ak, em);
    if (arc != BM_OK)
        return arc;
    /* Each allowed Region must look like one: a typo would make every record a violation. */
    struct bm_str it;
    for (const char *c = cfg->allowed_inference_regions; bm_list_next(&c, &it);) {
        char r[64];
        if (it.len >= sizeof r || (memcpy(r, it.p, it.len), r[it.len] = '\0', !bm_region_valid(r)))
            return bm_errmsg_set(em, BM_E_CONFIG,
                                 "BMAS_ALLOWED_INFERENCE_REGIONS: expected Regions such as "
                                 "eu-west-1,eu-central-1 separated by commas, got \"%.*s\"",
                                 (int)(it.len > 64 ? 64 : it.len), it.p);
    }
    return BM_OK;
}

bm_err bm_config_set(struct bm_config *cfg, const char *name, const char *value,
                     struct bm_errmsg *em)
{
    for (size_t i = 0; i < NTABLE; i++) {
        if (strcmp(table[i].name, name) == 0)
            return set_entry(cfg, &table[i], value, em);
    }
    return bm_errmsg_set(em, BM_E_CONFIG, "%s: unknown setting", name);
}

void bm_config_cleanup(struct bm_config *cfg)
{
    for (size_t i = 0; i < NTABLE; i++) {
        if (table[i].type != CFG_STR)
            continue;
        char **slot = (char **)(void *)((char *)cfg + table[i].off);
        if (*slot != NULL && (table[i].flags & CFG_SECRET))
            bm_secure_zero(*slot, strlen(*slot));
        BM_FREE(*slot);
    }
}

bm_err bm_config_help(struct bm_buf *b)
{
    bm_err rc = BM_OK;
    for (size_t i = 0; rc == BM_OK && i < NTABLE; i++) {
        if (table[i].flags & CFG_HIDDEN)
            continue;
        rc = bm_buf_appendf(b, "  %-40s %s%s%s%s\n", table[i].name, table[i].help,
                            *table[i].def ? " [default: " : "", table[i].def,
                            *table[i].def ? "]" : "");
    }
    return rc;
}

/* Appends URL s as a JSON string with its password replaced by "***": the part after the
 * user name's ':' up to the last '@' before the path, and each password= parameter's value. */
static bm_err append_url(struct bm_buf *b, const char *s)
{
    /* Each "***" adds at most 3 bytes, once for the user info and once per password= (at
     * least 9 bytes long): twice the length bounds the result. */
    size_t n = strlen(s), w = 0;
    char *m = bm_malloc(2 * n + 4);
    if (m == NULL)
        return BM_E_NOMEM;
    const char *auth = strstr(s, "://"), *at = NULL, *colon = NULL;
    if (auth != NULL) {
        auth += 3;
        for (const char *p = auth; *p != '\0' && *p != '/' && *p != '?'; p++)
            if (*p == '@')
                at = p;
        colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    }
    for (const char *p = s; *p != '\0';) {
        const char *end = NULL;
        if (colon != NULL && p == colon + 1) {
            end = at;
        } else if (strncmp(p, "password=", 9) == 0 && p > s && (p[-1] == '?' || p[-1] == '&')) {
            memcpy(m + w, p, 9);
            w += 9;
            p += 9;
            end = p + strcspn(p, "&");
        }
        if (end != NULL) {
            memcpy(m + w, "***", 3);
            w += 3;
            p = end;
            continue;
        }
        m[w++] = *p++;
    }
    bm_err rc = bm_buf_append_json_str(b, m, w);
    bm_secure_zero(m, 2 * n + 4);
    bm_free(m);
    return rc;
}

bm_err bm_config_json(const struct bm_config *cfg, struct bm_buf *b)
{
    bm_err rc = bm_buf_append_char(b, '{');
    bool first = true;
    for (size_t i = 0; rc == BM_OK && i < NTABLE; i++) {
        const struct cfg_entry *e = &table[i];
        const char *base = (const char *)cfg + e->off;
        if (e->flags & CFG_HIDDEN)
            continue;
        if (!first)
            rc = bm_buf_append_char(b, ',');
        first = false;
        if (rc == BM_OK)
            rc = bm_buf_appendf(b, "\"%s\":", e->name);
        if (rc != BM_OK)
            break;
        switch (e->type) {
        case CFG_STR: {
            const char *s = *(char *const *)(const void *)base;
            if (e->flags & CFG_SECRET)
                rc = bm_buf_append_str(b, s && *s ? "\"(set)\"" : "\"\"");
            else if ((e->flags & CFG_URL) && s != NULL)
                rc = append_url(b, s);
            else
                rc = bm_buf_append_json_str(b, s ? s : "", s ? strlen(s) : 0);
            break;
        }
        case CFG_BOOL:
            rc = bm_buf_append_str(b, *(const bool *)(const void *)base ? "true" : "false");
            break;
        case CFG_INT:
            rc = bm_buf_appendf(b, "%ld", *(const long *)(const void *)base);
            break;
        case CFG_SIZE:
            rc = bm_buf_appendf(b, "%llu",
                                (unsigned long long)*(const uint64_t *)(const void *)base);
            break;
        case CFG_LEVEL: {
            static const char *const names[] = {"DEBUG", "INFO",     "WARN",
                                                "ERROR", "CRITICAL", "OFF"};
            rc = bm_buf_appendf(b, "\"%s\"", names[*(const enum bm_log_level *)(const void *)base]);
            break;
        }
        }
    }
    if (rc == BM_OK)
        rc = bm_buf_append_char(b, '}');
    return rc;
}

/* Every variable the guides of the replaced Lambda name (docs/formats.md section 7), with what
 * `bmas ingest` makes of it: it has no queue, no database, no CloudWatch and no HTTP requests.
 * The service gives each of them a meaning, so it warns about none. */
static const struct {
    const char *name;
    const char *ingest; /* why it means nothing to bmas ingest, or NULL */
} guide_vars[] = {
    {"CLOUDWATCH_NAMESPACE", "bmas ingest publishes nothing to CloudWatch"},
    {"LOG_LEVEL", NULL},
    {"AWS_REGION", NULL},
    {"BATCH_SIZE", "bmas ingest reads no SQS batches"},
    {"METRICS_RETENTION_DAYS", "bmas ingest keeps no database"},
    {"ENABLE_CROSS_REGION_DETECTION", NULL},
    {"ENABLE_GLOBAL_CROSS_REGION", NULL},
    {"DLQ_ENABLED", "bmas ingest reads no queue"},
    {"MAX_RETRY_ATTEMPTS", NULL},
    {"ENABLE_TRACE", "bmas ingest serves no requests to trace"},
};

int bm_config_warn_unused(bm_getenv_fn get, bool service)
{
    char names[512] = "", why[1024] = "";
    size_t nl = 0, wl = 0;
    int n = 0;
    for (size_t i = 0; get != NULL && i < sizeof guide_vars / sizeof guide_vars[0]; i++) {
        const char *v = get(guide_vars[i].name);
        if (v == NULL || *v == '\0' || service || guide_vars[i].ingest == NULL)
            continue;
        int a = snprintf(names + nl, sizeof names - nl, "%s%s", n ? "," : "", guide_vars[i].name);
        int b = snprintf(why + wl, sizeof why - wl, "%s%s: %s", n ? "; " : "", guide_vars[i].name,
                         guide_vars[i].ingest);
        if (a > 0 && (size_t)a < sizeof names - nl)
            nl += (size_t)a;
        if (b > 0 && (size_t)b < sizeof why - wl)
            wl += (size_t)b;
        n++;
    }
    if (n > 0)
        BM_LOG(BM_WARN, "core", "config_ignored", why, BM_KV_STR("variables", names));
    return n;
}
