/* creds.c: the AWS credentials chain, in the order the SDKs use: environment, the shared
 * credentials file, the shared config file (AWS_PROFILE; static keys, else its
 * credential_process), a web identity token (EKS IRSA: STS AssumeRoleWithWebIdentity),
 * container credentials (ECS/EKS Pod Identity), EC2 instance metadata (IMDSv2, token first).
 * Results are cached and refreshed five minutes before they expire. Secrets are zeroed when
 * dropped and never logged. */
#include "core/core_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>

#define REFRESH_EARLY_S 300 /* refresh this long before expiry, as the SDKs do */
#define INVALIDATE_WINDOW_MS 60000
#define IMDS_TIMEOUT_MS 1000
#define STS_TIMEOUT_MS 10000
#define PROCESS_MAX_OUTPUT (64 * 1024)

struct bm_creds_provider {
    const struct bm_config *cfg;
    const struct bm_http_ops *http;
    const struct bm_clock_ops *clock;
    pthread_mutex_t mu;
    struct bm_creds cached;
    bool have;
    int64_t last_invalidate_ms;
};

static void copy_str(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static bool from_env(const struct bm_config *cfg, struct bm_creds *c)
{
    if (cfg->aws_access_key_id[0] == '\0' || cfg->aws_secret_access_key[0] == '\0')
        return false;
    copy_str(c->akid, sizeof c->akid, cfg->aws_access_key_id, strlen(cfg->aws_access_key_id));
    copy_str(c->secret, sizeof c->secret, cfg->aws_secret_access_key,
             strlen(cfg->aws_secret_access_key));
    copy_str(c->token, sizeof c->token, cfg->aws_session_token, strlen(cfg->aws_session_token));
    copy_str(c->source, sizeof c->source, "env", 3);
    return true;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

/* Reads the keys of [section] from an INI file (the shared credentials/config format). The
 * config file names profiles "[profile NAME]" except "[default]"; in_config says which. */
static bool from_ini(const char *path, const char *profile, bool in_config, struct bm_creds *c,
                     char *process, size_t process_cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char want[300];
    if (in_config && strcmp(profile, "default") != 0)
        snprintf(want, sizeof want, "profile %s", profile);
    else
        snprintf(want, sizeof want, "%s", profile);
    char line[4400];
    bool in = false;
    struct bm_creds tmp;
    memset(&tmp, 0, sizeof tmp);
    while (fgets(line, sizeof line, f) != NULL) {
        char *s = trim(line);
        if (*s == '#' || *s == ';' || *s == '\0')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (close != NULL) {
                *close = '\0';
                in = strcmp(trim(s + 1), want) == 0;
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in || eq == NULL)
            continue;
        *eq = '\0';
        char *k = trim(s);
        char *v = trim(eq + 1);
        if (strcasecmp(k, "aws_access_key_id") == 0)
            copy_str(tmp.akid, sizeof tmp.akid, v, strlen(v));
        else if (strcasecmp(k, "aws_secret_access_key") == 0)
            copy_str(tmp.secret, sizeof tmp.secret, v, strlen(v));
        else if (strcasecmp(k, "aws_session_token") == 0)
            copy_str(tmp.token, sizeof tmp.token, v, strlen(v));
        else if (strcasecmp(k, "credential_process") == 0 && process[0] == '\0')
            copy_str(process, process_cap, v, strlen(v));
    }
    bm_secure_zero(line, sizeof line);
    fclose(f);
    bool ok = tmp.akid[0] != '\0' && tmp.secret[0] != '\0';
    if (ok) {
        *c = tmp;
        copy_str(c->source, sizeof c->source, "profile", 7);
    }
    bm_secure_zero(&tmp, sizeof tmp);
    return ok;
}

static void shared_path(const struct bm_config *cfg, const char *explicit_path, const char *name,
                        char *out, size_t cap)
{
    if (explicit_path != NULL && *explicit_path != '\0')
        snprintf(out, cap, "%s", explicit_path);
    else
        snprintf(out, cap, "%s/.aws/%s", cfg->home && *cfg->home ? cfg->home : ".", name);
}

/* The JSON both container endpoints and IMDS answer with. */
static bool parse_creds_json(const char *body, size_t len, const char *source, struct bm_creds *c)
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
        copy_str(c->akid, sizeof c->akid, k->valuestring, strlen(k->valuestring));
        copy_str(c->secret, sizeof c->secret, s->valuestring, strlen(s->valuestring));
        if (cJSON_IsString(t))
            copy_str(c->token, sizeof c->token, t->valuestring, strlen(t->valuestring));
        c->expires = exp;
        copy_str(c->source, sizeof c->source, source, strlen(source));
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

static bm_err http_call(const struct bm_creds_provider *p, const char *method, const char *url,
                        const char *const *headers, size_t nheaders, const struct bm_buf *body,
                        long timeout_ms, struct bm_http_resp *rs, struct bm_errmsg *em)
{
    struct bm_http_req rq = {.method = method,
                             .url = url,
                             .headers = headers,
                             .nheaders = nheaders,
                             .body = body ? body->data : NULL,
                             .body_len = body ? body->len : 0,
                             .max_body = 64 * 1024,
                             .timeout_ms = timeout_ms};
    return p->http->perform(p->http->impl, &rq, rs, em);
}

static bm_err http_get(const struct bm_creds_provider *p, const char *method, const char *url,
                       const char *const *headers, size_t nheaders, long timeout_ms,
                       struct bm_http_resp *rs, struct bm_errmsg *em)
{
    return http_call(p, method, url, headers, nheaders, NULL, timeout_ms, rs, em);
}

/* Reads a small secret file (a token), trimmed, into out; false when unreadable. */
static bool read_token_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    char *t = trim(out);
    memmove(out, t, strlen(t) + 1);
    return true;
}

/* Text of the first <name> element of an XML body, entities decoded, into out (cap bytes). */
static bool xml_field(const struct bm_buf *body, const char *name, char *out, size_t cap)
{
    struct bm_str raw;
    out[0] = '\0';
    if (body->data == NULL || bm__xml_find(body->data, body->data + body->len, name, &raw) == NULL)
        return false;
    struct bm_buf b;
    bm_buf_init(&b, cap - 1);
    bool ok = bm__xml_text(raw, &b) == BM_OK;
    if (ok)
        copy_str(out, cap, b.data ? b.data : "", b.len);
    if (b.data != NULL)
        bm_secure_zero(b.data, b.len);
    bm_buf_cleanup(&b);
    return ok;
}

static bm_err form_param(struct bm_buf *b, const char *name, const char *value)
{
    bm_err rc = bm_buf_appendf(b, "%s%s=", b->len ? "&" : "", name);
    return rc == BM_OK ? bm_url_encode(value, strlen(value), NULL, false, b) : rc;
}

/* Web identity (EKS IRSA): the OIDC token file, read again on every refresh because the
 * kubelet rotates it, traded at STS for temporary credentials. AssumeRoleWithWebIdentity is
 * an unsigned call: the token is the proof. */
static bm_err from_web_identity(struct bm_creds_provider *p, struct bm_creds *c,
                                struct bm_errmsg *em)
{
    const struct bm_config *cfg = p->cfg;
    char token[16384], session[80];
    if (!read_token_file(cfg->aws_web_identity_token_file, token, sizeof token) || token[0] == '\0')
        return bm_errmsg_set(em, BM_E_NO_CREDENTIALS,
                             "AWS_WEB_IDENTITY_TOKEN_FILE %s: unreadable or empty",
                             cfg->aws_web_identity_token_file);
    if (cfg->aws_role_session_name[0] != '\0')
        snprintf(session, sizeof session, "%s", cfg->aws_role_session_name);
    else
        snprintf(session, sizeof session, "bmas-%lld", (long long)p->clock->now_ms(p->clock->impl));
    struct bm_buf url, body;
    bm_buf_init(&url, 4096);
    bm_buf_init(&body, 64 * 1024);
    bool custom;
    bm_err rc = bm_aws_endpoint(cfg, "sts", &url, &custom);
    if (rc == BM_OK)
        rc = bm_buf_append(&url, "/", 2); /* with the terminating NUL */
    const char *fields[][2] = {{"Action", "AssumeRoleWithWebIdentity"},
                               {"RoleArn", cfg->aws_role_arn},
                               {"RoleSessionName", session},
                               {"Version", "2011-06-15"},
                               {"WebIdentityToken", token}};
    for (size_t i = 0; i < 5 && rc == BM_OK; i++)
        rc = form_param(&body, fields[i][0], fields[i][1]);
    bm_secure_zero(token, sizeof token);
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8"};
    struct bm_http_resp rs;
    bm_http_resp_init(&rs);
    if (rc == BM_OK)
        rc = http_call(p, "POST", url.data, headers, 1, &body, STS_TIMEOUT_MS, &rs, em);
    if (rc == BM_OK && rs.status != 200) {
        char code[128], msg[512];
        xml_field(&rs.body, "Code", code, sizeof code);
        xml_field(&rs.body, "Message", msg, sizeof msg);
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS,
                           "STS AssumeRoleWithWebIdentity for %s: %ld %s: %s", cfg->aws_role_arn,
                           rs.status, code[0] ? code : "(no code)", msg);
    } else if (rc == BM_OK) {
        char exp[64];
        memset(c, 0, sizeof *c);
        bool ok = xml_field(&rs.body, "AccessKeyId", c->akid, sizeof c->akid) &&
                  xml_field(&rs.body, "SecretAccessKey", c->secret, sizeof c->secret) &&
                  xml_field(&rs.body, "SessionToken", c->token, sizeof c->token) &&
                  xml_field(&rs.body, "Expiration", exp, sizeof exp) && c->akid[0] &&
                  c->secret[0] && bm_time_parse(exp, strlen(exp), &c->expires);
        if (ok)
            copy_str(c->source, sizeof c->source, "web-identity", 12);
        else
            rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS,
                               "STS AssumeRoleWithWebIdentity: unexpected answer");
    }
    if (rs.body.data != NULL)
        bm_secure_zero(rs.body.data, rs.body.len);
    if (body.data != NULL)
        bm_secure_zero(body.data, body.len);
    bm_http_resp_cleanup(&rs);
    bm_buf_cleanup(&body);
    bm_buf_cleanup(&url);
    return rc;
}

/* credential_process from the profile: the command's standard output is the SDKs' JSON
 * (Version 1, AccessKeyId, SecretAccessKey, SessionToken, Expiration); its standard error
 * passes through to ours; a non-zero exit is an error. */
static bm_err from_process(const char *cmd, struct bm_creds *c, struct bm_errmsg *em)
{
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "credential_process: %s", strerror(errno));
    struct bm_buf out;
    bm_buf_init(&out, PROCESS_MAX_OUTPUT);
    char chunk[4096];
    size_t n;
    bm_err rc = BM_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && rc == BM_OK)
        rc = bm_buf_append(&out, chunk, n);
    bm_secure_zero(chunk, sizeof chunk);
    int st = pclose(f);
    if (rc != BM_OK)
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "credential_process: output over %d bytes",
                           PROCESS_MAX_OUTPUT);
    else if (st != 0)
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "credential_process exited with status %d",
                           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    else if (!parse_creds_json(out.data ? out.data : "", out.len, "process", c))
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS,
                           "credential_process: not the Version 1 credentials JSON (Version 1, "
                           "AccessKeyId, SecretAccessKey, an RFC 3339 Expiration if any)");
    if (out.data != NULL)
        bm_secure_zero(out.data, out.len);
    bm_buf_cleanup(&out);
    return rc;
}

static bm_err from_container(struct bm_creds_provider *p, struct bm_creds *c, struct bm_errmsg *em)
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
        if (!read_token_file(cfg->aws_container_authorization_token_file, token, sizeof token))
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
    if (rc == BM_OK && !parse_creds_json(rs.body.data, rs.body.len, "container", c))
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "container credentials: unexpected body");
    if (rs.body.data != NULL)
        bm_secure_zero(rs.body.data, rs.body.len);
    bm_http_resp_cleanup(&rs);
    return rc;
}

static bm_err from_imds(struct bm_creds_provider *p, struct bm_creds *c, struct bm_errmsg *em)
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
        copy_str(token, sizeof token, rs.body.data, rs.body.len);
    bm_http_resp_cleanup(&rs);
    if (token[0] == '\0')
        return bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "no EC2 instance metadata token");

    snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", token);
    bm_http_resp_init(&rs);
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", base);
    rc = http_get(p, "GET", url, headers, 1, IMDS_TIMEOUT_MS, &rs, em);
    if (rc == BM_OK && rs.status == 200 && rs.body.len > 0) {
        const char *nl = memchr(rs.body.data, '\n', rs.body.len);
        copy_str(role, sizeof role, rs.body.data, nl ? (size_t)(nl - rs.body.data) : rs.body.len);
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
        (rs.status != 200 || !parse_creds_json(rs.body.data, rs.body.len, "imds", c)))
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "instance credentials: status %ld", rs.status);
    if (rs.body.data != NULL)
        bm_secure_zero(rs.body.data, rs.body.len);
    bm_http_resp_cleanup(&rs);
done:
    bm_secure_zero(token, sizeof token);
    bm_secure_zero(hdr, sizeof hdr);
    return rc;
}

/* Walks the chain; the first source with credentials wins. */
static bm_err resolve(struct bm_creds_provider *p, struct bm_creds *c, struct bm_errmsg *em)
{
    const struct bm_config *cfg = p->cfg;
    char path[4200], process[4096] = "";
    if (from_env(cfg, c))
        return BM_OK;
    shared_path(cfg, cfg->aws_shared_credentials_file, "credentials", path, sizeof path);
    if (from_ini(path, cfg->aws_profile, false, c, process, sizeof process))
        return BM_OK;
    shared_path(cfg, cfg->aws_config_file, "config", path, sizeof path);
    if (from_ini(path, cfg->aws_profile, true, c, process, sizeof process))
        return BM_OK;
    if (process[0] != '\0')
        return from_process(process, c, em);
    if (cfg->aws_web_identity_token_file[0] != '\0' && cfg->aws_role_arn[0] != '\0')
        return from_web_identity(p, c, em);
    bm_err rc = BM_E_NO_CREDENTIALS;
    if (cfg->aws_container_credentials_full_uri[0] != '\0' ||
        cfg->aws_container_credentials_relative_uri[0] != '\0')
        return from_container(p, c, em);
    if (!cfg->aws_ec2_metadata_disabled) {
        rc = from_imds(p, c, em);
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
    p->cfg = cfg;
    p->http = http;
    p->clock = clock ? clock : &bm_clock_real;
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
    int64_t now = p->clock->now_ms(p->clock->impl) / 1000;
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
    int64_t now = p->clock->now_ms(p->clock->impl);
    if (now - p->last_invalidate_ms >= INVALIDATE_WINDOW_MS) {
        p->last_invalidate_ms = now;
        p->have = false;
        bm_secure_zero(&p->cached, sizeof p->cached);
    }
    pthread_mutex_unlock(&p->mu);
}
