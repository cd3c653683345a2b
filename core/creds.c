/* creds.c: the AWS credentials chain, in the order the SDKs use: environment, the profile
 * (AWS_PROFILE in the shared credentials and config files: static keys, role_arn, or
 * credential_process; creds_profile.c), a web identity token (EKS IRSA; creds_profile.c),
 * container credentials (ECS/EKS Pod Identity), EC2 instance metadata (IMDSv2, token first).
 * Results are cached and refreshed five minutes before they expire. Secrets are zeroed when
 * dropped and never logged. */
#include "core/core_int.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define REFRESH_EARLY_S 300 /* refresh this long before expiry, as the SDKs do */
#define INVALIDATE_WINDOW_MS 60000
#define IMDS_TIMEOUT_MS 1000

struct bm_creds_provider {
    struct bm__creds_src src; /* what every source needs: configuration, transport, clock */
    pthread_mutex_t mu;
    struct bm_creds cached;
    bool have;
    int64_t last_invalidate_ms;
};

void bm__creds_copy(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

bool bm__creds_env(const struct bm_config *cfg, struct bm_creds *c)
{
    if (cfg->aws_access_key_id[0] == '\0' || cfg->aws_secret_access_key[0] == '\0')
        return false;
    bm__creds_copy(c->akid, sizeof c->akid, cfg->aws_access_key_id, strlen(cfg->aws_access_key_id));
    bm__creds_copy(c->secret, sizeof c->secret, cfg->aws_secret_access_key,
                   strlen(cfg->aws_secret_access_key));
    bm__creds_copy(c->token, sizeof c->token, cfg->aws_session_token,
                   strlen(cfg->aws_session_token));
    bm__creds_copy(c->source, sizeof c->source, "env", 3);
    return true;
}

char *bm__creds_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

/* The JSON both container endpoints and IMDS answer with. */
bool bm__creds_parse_json(const char *body, size_t len, const char *source, struct bm_creds *c)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (j == NULL)
        return false;
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "AccessKeyId");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "SecretAccessKey");
    /* Container and IMDS answers call the session token "Token", credential_process output
     * (Version 1) "SessionToken". */
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "Token");
    if (t == NULL)
        t = cJSON_GetObjectItemCaseSensitive(j, "SessionToken");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "Version");
    if (strcmp(source, "process") == 0 && !(cJSON_IsNumber(v) && v->valuedouble == 1)) {
        cJSON_Delete(j);
        return false;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "Expiration");
    bool ok = cJSON_IsString(k) && cJSON_IsString(s) && k->valuestring[0] && s->valuestring[0];
    /* An Expiration we cannot read would make temporary credentials look eternal: refuse. */
    int64_t exp = 0;
    if (e != NULL && !cJSON_IsNull(e) &&
        !(cJSON_IsString(e) && bm_time_parse(e->valuestring, strlen(e->valuestring), &exp)))
        ok = false;
    if (ok) {
        memset(c, 0, sizeof *c);
        bm__creds_copy(c->akid, sizeof c->akid, k->valuestring, strlen(k->valuestring));
        bm__creds_copy(c->secret, sizeof c->secret, s->valuestring, strlen(s->valuestring));
        if (cJSON_IsString(t))
            bm__creds_copy(c->token, sizeof c->token, t->valuestring, strlen(t->valuestring));
        c->expires = exp;
        bm__creds_copy(c->source, sizeof c->source, source, strlen(source));
    }
    if (s != NULL && cJSON_IsString(s))
        bm_secure_zero(s->valuestring, strlen(s->valuestring));
    cJSON_Delete(j);
    return ok;
}

/* SDKs only talk plain HTTP to container endpoints on loopback or the ECS/EKS link-local
 * addresses, so a mistyped URI cannot send the token elsewhere. */
static bool container_uri_allowed(const char *uri)
{
    if (strncmp(uri, "https://", 8) == 0)
        return true;
    static const char *const hosts[] = {
        "http://127.",          "http://localhost:",     "http://localhost/",    "http://[::1]",
        "http://169.254.170.2", "http://169.254.170.23", "http://[fd00:ec2::23]"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
        if (strncmp(uri, hosts[i], strlen(hosts[i])) == 0)
            return true;
    return false;
}

/* One unsigned request of a credential source (container endpoint, IMDS). */
static bm_err http_get(const struct bm__creds_src *p, const char *method, const char *url,
                       const char *const *headers, size_t nheaders, long timeout_ms,
                       struct bm_http_resp *rs, struct bm_errmsg *em)
{
    struct bm_http_req rq = {.method = method,
                             .url = url,
                             .region = p->cfg->aws_region,
                             .headers = headers,
                             .nheaders = nheaders,
                             .max_body = 64 * 1024,
                             .timeout_ms = timeout_ms};
    return p->http->perform(p->http->impl, &rq, rs, em);
}

/* Reads a small secret file (a token), trimmed, into out; false when unreadable. */
bool bm__creds_read_token(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    char *t = bm__creds_trim(out);
    memmove(out, t, strlen(t) + 1);
    return true;
}

bm_err bm__creds_container(const struct bm__creds_src *p, struct bm_creds *c, struct bm_errmsg *em)
{
    const struct bm_config *cfg = p->cfg;
    char url[2200];
    if (cfg->aws_container_credentials_full_uri[0] != '\0') {
        if (!container_uri_allowed(cfg->aws_container_credentials_full_uri))
            return bm_errmsg_set(em, BM_E_NO_CREDENTIALS,
                                 "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or a "
                                 "loopback/ECS/EKS address");
        snprintf(url, sizeof url, "%s", cfg->aws_container_credentials_full_uri);
    } else if (cfg->aws_container_credentials_relative_uri[0] != '\0') {
        snprintf(url, sizeof url, "http://169.254.170.2%s",
                 cfg->aws_container_credentials_relative_uri);
    } else {
        return BM_E_NO_CREDENTIALS;
    }
    /* The token file (EKS Pod Identity rotates it) wins over the variable. */
    char token[8192] = "";
    if (cfg->aws_container_authorization_token_file[0] != '\0') {
        if (!bm__creds_read_token(cfg->aws_container_authorization_token_file, token, sizeof token))
            token[0] = '\0';
    } else {
        snprintf(token, sizeof token, "%s", cfg->aws_container_authorization_token);
    }
    char header[8300];
    const char *headers[1] = {header};
    size_t nh = 0;
    if (token[0] != '\0') {
        snprintf(header, sizeof header, "Authorization: %s", token);
        nh = 1;
    }
    struct bm_http_resp rs;
    bm_http_resp_init(&rs);
    bm_err rc = http_get(p, "GET", url, headers, nh, 5000, &rs, em);
    bm_secure_zero(token, sizeof token);
    bm_secure_zero(header, sizeof header);
    if (rc == BM_OK && rs.status != 200)
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "container credentials endpoint said %ld",
                           rs.status);
    if (rc == BM_OK && !bm__creds_parse_json(rs.body.data, rs.body.len, "container", c))
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "container credentials: unexpected body");
    if (rs.body.data != NULL)
        bm_secure_zero(rs.body.data, rs.body.len);
    bm_http_resp_cleanup(&rs);
    return rc;
}

bm_err bm__creds_imds(const struct bm__creds_src *p, struct bm_creds *c, struct bm_errmsg *em)
{
    const char *base = p->cfg->aws_ec2_metadata_service_endpoint;
    char url[2400], token[1024] = "", role[256] = "", hdr[1100];
    const char *headers[1] = {hdr};
    struct bm_http_resp rs;
    bm_err rc;

    /* IMDSv2: a session token first (PUT), then every read carries it. */
    bm_http_resp_init(&rs);
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
    rc = http_get(p, "PUT", url, headers, 1, IMDS_TIMEOUT_MS, &rs, em);
    if (rc == BM_OK && rs.status == 200 && rs.body.len > 0 && rs.body.len < sizeof token)
        bm__creds_copy(token, sizeof token, rs.body.data, rs.body.len);
    bm_http_resp_cleanup(&rs);
    if (token[0] == '\0')
        return bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "no EC2 instance metadata token");

    snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", token);
    bm_http_resp_init(&rs);
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", base);
    rc = http_get(p, "GET", url, headers, 1, IMDS_TIMEOUT_MS, &rs, em);
    if (rc == BM_OK && rs.status == 200 && rs.body.len > 0) {
        const char *nl = memchr(rs.body.data, '\n', rs.body.len);
        bm__creds_copy(role, sizeof role, rs.body.data,
                       nl ? (size_t)(nl - rs.body.data) : rs.body.len);
    }
    bm_http_resp_cleanup(&rs);
    if (role[0] == '\0') {
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "the instance has no IAM role");
        goto done;
    }
    bm_http_resp_init(&rs);
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", base, role);
    rc = http_get(p, "GET", url, headers, 1, IMDS_TIMEOUT_MS, &rs, em);
    if (rc == BM_OK &&
        (rs.status != 200 || !bm__creds_parse_json(rs.body.data, rs.body.len, "imds", c)))
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "instance credentials: status %ld", rs.status);
    if (rs.body.data != NULL)
        bm_secure_zero(rs.body.data, rs.body.len);
    bm_http_resp_cleanup(&rs);
done:
    bm_secure_zero(token, sizeof token);
    bm_secure_zero(hdr, sizeof hdr);
    return rc;
}

/* Walks the chain; the first source with credentials wins. A profile that exists but holds
 * no credentials (only a region, say) lets the chain go on, as the SDKs do. */
static bm_err resolve(struct bm_creds_provider *p, struct bm_creds *c, struct bm_errmsg *em)
{
    const struct bm_config *cfg = p->src.cfg;
    /* A profile named in AWS_PROFILE wins over keys in the environment, as in the JS SDK (a
     * role profile with credential_source = Environment needs both). */
    bool named = cfg->aws_profile[0] != '\0';
    if (named && cfg->aws_access_key_id[0] != '\0')
        BM_LOG(BM_WARN, "core", "credentials_profile_over_env",
               "AWS_PROFILE and AWS_ACCESS_KEY_ID are both set: using the profile",
               BM_KV_STR("profile", cfg->aws_profile));
    if (!named && bm__creds_env(cfg, c))
        return BM_OK;
    bool found = false;
    bm_err rc = bm__creds_profile(&p->src, named ? cfg->aws_profile : "default", c, &found, em);
    if (found)
        return rc;
    if (cfg->aws_web_identity_token_file[0] != '\0' && cfg->aws_role_arn[0] != '\0')
        return bm__creds_web_identity(&p->src, c, em);
    if (cfg->aws_container_credentials_full_uri[0] != '\0' ||
        cfg->aws_container_credentials_relative_uri[0] != '\0')
        return bm__creds_container(&p->src, c, em);
    if (!cfg->aws_ec2_metadata_disabled) {
        rc = bm__creds_imds(&p->src, c, em);
        if (rc == BM_OK)
            return BM_OK;
    }
    return bm_errmsg_set(em, BM_E_NO_CREDENTIALS,
                         "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a "
                         "profile in ~/.aws, AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, or "
                         "run with a container/instance role");
}

bm_err bm_creds_provider_new(const struct bm_config *cfg, const struct bm_http_ops *http,
                             const struct bm_clock_ops *clock, struct bm_creds_provider **out)
{
    struct bm_creds_provider *p = bm_calloc(1, sizeof *p);
    if (p == NULL)
        return BM_E_NOMEM;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        bm_free(p);
        return BM_E_INTERNAL;
    }
    p->src = (struct bm__creds_src){cfg, http, clock ? clock : &bm_clock_real};
    *out = p;
    return BM_OK;
}

void bm_creds_provider_free(struct bm_creds_provider *p)
{
    if (p == NULL)
        return;
    bm_secure_zero(&p->cached, sizeof p->cached);
    pthread_mutex_destroy(&p->mu);
    bm_free(p);
}

bm_err bm_creds_get(struct bm_creds_provider *p, struct bm_creds *out, struct bm_errmsg *em)
{
    bm_err rc = BM_OK;
    pthread_mutex_lock(&p->mu);
    int64_t now = p->src.clock->now_ms(p->src.clock->impl) / 1000;
    if (!p->have || (p->cached.expires != 0 && now >= p->cached.expires - REFRESH_EARLY_S)) {
        struct bm_creds fresh;
        memset(&fresh, 0, sizeof fresh);
        rc = resolve(p, &fresh, em);
        if (rc == BM_OK) {
            p->cached = fresh;
            p->have = true;
        } else if (p->have && p->cached.expires > now) {
            rc = BM_OK; /* refresh failed but the old ones still work: use them meanwhile */
        }
        bm_secure_zero(&fresh, sizeof fresh);
    }
    if (rc == BM_OK)
        *out = p->cached;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void bm_creds_invalidate(struct bm_creds_provider *p)
{
    pthread_mutex_lock(&p->mu);
    int64_t now = p->src.clock->now_ms(p->src.clock->impl);
    if (now - p->last_invalidate_ms >= INVALIDATE_WINDOW_MS) {
        p->last_invalidate_ms = now;
        p->have = false;
        bm_secure_zero(&p->cached, sizeof p->cached);
    }
    pthread_mutex_unlock(&p->mu);
}
