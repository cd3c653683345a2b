/* creds_profile.c: the credential sources that read the shared files or ask STS. A profile of
 * ~/.aws/credentials and ~/.aws/config (static keys; role_arn, assumed through STS AssumeRole
 * with the keys of source_profile or credential_source; credential_process) and a web identity
 * token (STS AssumeRoleWithWebIdentity, EKS IRSA). Precedence inside a profile follows botocore:
 * role_arn, then static keys, then credential_process. */
#include "core/core_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>

#define STS_TIMEOUT_MS 10000
#define PROCESS_MAX_OUTPUT (64 * 1024)
#define SOURCE_PROFILE_HOPS 4 /* source_profile chains end here, so a cycle cannot loop */

struct profile {
    struct bm_creds keys;
    char process[4096];
    char role_arn[2048];
    char source_profile[256];
    char credential_source[64];
    char external_id[1300];
    char session_name[80];
    char duration[16];
};

static const struct {
    const char *key;
    size_t off, cap;
} profile_keys[] = {
#define PK_(k, m)                                                                                  \
    {                                                                                              \
        k, offsetof(struct profile, m), sizeof(((struct profile *)0)->m)                           \
    }
    PK_("aws_access_key_id", keys.akid),
    PK_("aws_secret_access_key", keys.secret),
    PK_("aws_session_token", keys.token),
    PK_("credential_process", process),
    PK_("role_arn", role_arn),
    PK_("source_profile", source_profile),
    PK_("credential_source", credential_source),
    PK_("external_id", external_id),
    PK_("role_session_name", session_name),
    PK_("duration_seconds", duration),
#undef PK_
};

/* Reads section [want] of one INI file into pr; a value already set by a file read earlier
 * stays (the credentials file wins, as in the SDKs). Returns whether the section exists. */
static bool read_section(const char *path, const char *want, struct profile *pr)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char line[4400];
    bool in = false, seen = false;
    while (fgets(line, sizeof line, f) != NULL) {
        char *s = bm__creds_trim(line);
        if (*s == '#' || *s == ';' || *s == '\0')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (close != NULL) {
                *close = '\0';
                in = strcmp(bm__creds_trim(s + 1), want) == 0;
                seen = seen || in;
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in || eq == NULL)
            continue;
        *eq = '\0';
        char *k = bm__creds_trim(s);
        char *v = bm__creds_trim(eq + 1);
        for (size_t i = 0; i < sizeof profile_keys / sizeof profile_keys[0]; i++) {
            char *dst = (char *)pr + profile_keys[i].off;
            if (strcasecmp(k, profile_keys[i].key) == 0 && dst[0] == '\0')
                bm__creds_copy(dst, profile_keys[i].cap, v, strlen(v));
        }
    }
    bm_secure_zero(line, sizeof line);
    fclose(f);
    return seen;
}

static void shared_path(const struct bm_config *cfg, const char *explicit_path, const char *name,
                        char *out, size_t cap)
{
    if (explicit_path != NULL && *explicit_path != '\0')
        snprintf(out, cap, "%s", explicit_path);
    else
        snprintf(out, cap, "%s/.aws/%s", cfg->home && *cfg->home ? cfg->home : ".", name);
}

/* The profile's [NAME] in the credentials file merged with the config file's [profile NAME]
 * ([default] there too). */
static void profile_load(const struct bm_config *cfg, const char *name, struct profile *pr)
{
    char path[4200], section[300];
    memset(pr, 0, sizeof *pr);
    shared_path(cfg, cfg->aws_shared_credentials_file, "credentials", path, sizeof path);
    read_section(path, name, pr);
    shared_path(cfg, cfg->aws_config_file, "config", path, sizeof path);
    if (strcmp(name, "default") != 0)
        snprintf(section, sizeof section, "profile %s", name);
    else
        snprintf(section, sizeof section, "default");
    read_section(path, section, pr);
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
        bm__creds_copy(out, cap, b.data ? b.data : "", b.len);
    if (b.data != NULL)
        bm_secure_zero(b.data, b.len);
    bm_buf_cleanup(&b);
    return ok;
}

/* One STS call that answers with <Credentials> (AssumeRole, AssumeRoleWithWebIdentity): the
 * Query form fields[n][2] (empty values left out), signed with signer unless it is NULL. */
static bm_err sts_credentials(const struct bm__creds_src *p, const char *const (*fields)[2],
                              size_t n, const struct bm_creds *signer, const char *role,
                              const char *source, struct bm_creds *c, struct bm_errmsg *em)
{
    struct bm_buf url, body;
    bm_buf_init(&url, 4096);
    bm_buf_init(&body, 64 * 1024);
    bool custom;
    bm_err rc = bm_aws_endpoint(p->cfg, "sts", &url, &custom);
    if (rc == BM_OK)
        rc = bm_buf_append(&url, "/", 2); /* with the terminating NUL */
    for (size_t i = 0; i < n && rc == BM_OK; i++) {
        if (fields[i][1][0] == '\0')
            continue;
        rc = bm_buf_appendf(&body, "%s%s=", body.len ? "&" : "", fields[i][0]);
        if (rc == BM_OK)
            rc = bm_url_encode(fields[i][1], strlen(fields[i][1]), NULL, false, &body);
    }
    const char *action = fields[0][1];
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8"};
    struct bm_http_resp rs;
    bm_http_resp_init(&rs);
    /* The shared call path: throttling, 5xx and transport errors retried with backoff. */
    const struct bm_aws aws = {.cfg = p->cfg, .http = p->http, .clock = p->clock};
    struct bm__aws_call call = {.aws = &aws,
                                .op = action,
                                .rq = {.method = "POST",
                                       .url = url.data,
                                       .service = signer ? "sts" : NULL,
                                       .region = p->cfg->aws_region,
                                       .headers = headers,
                                       .nheaders = 1,
                                       .body = body.data,
                                       .body_len = body.len,
                                       .max_body = 64 * 1024,
                                       .timeout_ms = STS_TIMEOUT_MS},
                                .signer = signer,
                                .rs = &rs};
    if (rc == BM_OK && (rc = bm__aws_call(&call, em)) != BM_OK && call.answered)
        rc = BM_OK; /* an error answer: said below with STS's own message */
    if (rc == BM_OK && rs.status != 200) {
        char code[128], msg[512];
        xml_field(&rs.body, "Code", code, sizeof code);
        xml_field(&rs.body, "Message", msg, sizeof msg);
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "STS %s for %s: %ld %s: %s", action, role,
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
            bm__creds_copy(c->source, sizeof c->source, source, strlen(source));
        else
            rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "STS %s: unexpected answer", action);
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

static void session_name(const struct bm__creds_src *p, const char *configured, char out[80])
{
    if (configured[0] != '\0')
        snprintf(out, 80, "%s", configured);
    else
        snprintf(out, 80, "bmas-%lld", (long long)p->clock->now_ms(p->clock->impl));
}

/* Web identity (EKS IRSA): the OIDC token file, read again on every refresh because the
 * kubelet rotates it, traded at STS for temporary credentials. AssumeRoleWithWebIdentity is
 * an unsigned call: the token is the proof. */
bm_err bm__creds_web_identity(const struct bm__creds_src *p, struct bm_creds *c,
                              struct bm_errmsg *em)
{
    const struct bm_config *cfg = p->cfg;
    char token[16384], session[80];
    if (!bm__creds_read_token(cfg->aws_web_identity_token_file, token, sizeof token) ||
        token[0] == '\0')
        return bm_errmsg_set(em, BM_E_NO_CREDENTIALS,
                             "AWS_WEB_IDENTITY_TOKEN_FILE %s: unreadable or empty",
                             cfg->aws_web_identity_token_file);
    session_name(p, cfg->aws_role_session_name, session);
    const char *const fields[][2] = {{"Action", "AssumeRoleWithWebIdentity"},
                                     {"RoleArn", cfg->aws_role_arn},
                                     {"RoleSessionName", session},
                                     {"Version", "2011-06-15"},
                                     {"WebIdentityToken", token}};
    bm_err rc = sts_credentials(p, fields, 5, NULL, cfg->aws_role_arn, "web-identity", c, em);
    bm_secure_zero(token, sizeof token);
    return rc;
}

/* credential_process: the command's standard output is the SDKs' JSON (Version 1,
 * AccessKeyId, SecretAccessKey, SessionToken, Expiration); its standard error passes through
 * to ours; a non-zero exit is an error. */
static bm_err from_process(const char *cmd, struct bm_creds *c, struct bm_errmsg *em)
{
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "credential_process: %s", strerror(errno));
    struct bm_buf out;
    bm_buf_init(&out, PROCESS_MAX_OUTPUT);
    bm_err rc = bm_buf_append_stream(&out, f);
    int st = pclose(f);
    if (rc != BM_OK)
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "credential_process: output over %d bytes",
                           PROCESS_MAX_OUTPUT);
    else if (st != 0)
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS, "credential_process exited with status %d",
                           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    else if (!bm__creds_parse_json(out.data ? out.data : "", out.len, "process", c))
        rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS,
                           "credential_process: not the Version 1 credentials JSON (Version 1, "
                           "AccessKeyId, SecretAccessKey, an RFC 3339 Expiration if any)");
    if (out.data != NULL)
        bm_secure_zero(out.data, out.len);
    bm_buf_cleanup(&out);
    return rc;
}

static bm_err profile_resolve(const struct bm__creds_src *p, const char *name, int hops,
                              struct bm_creds *c, bool *found, struct bm_errmsg *em);

/* The credentials a role profile assumes the role with: those of source_profile (its own
 * static keys when it names itself), or of the credential_source. */
static bm_err role_source(const struct bm__creds_src *p, const struct profile *pr, const char *name,
                          int hops, struct bm_creds *src, struct bm_errmsg *em)
{
    const char *cs = pr->credential_source;
    if (pr->source_profile[0] != '\0') {
        if (strcmp(pr->source_profile, name) == 0 && pr->keys.akid[0] && pr->keys.secret[0]) {
            *src = pr->keys;
            return BM_OK;
        }
        if (hops >= SOURCE_PROFILE_HOPS)
            return bm_errmsg_set(em, BM_E_NO_CREDENTIALS,
                                 "profile %s: source_profile chain longer than %d (a cycle?)", name,
                                 SOURCE_PROFILE_HOPS);
        bool found = false;
        bm_err rc = profile_resolve(p, pr->source_profile, hops + 1, src, &found, em);
        if (!found)
            rc = bm_errmsg_set(em, BM_E_NO_CREDENTIALS,
                               "profile %s: source_profile %s holds no credentials", name,
                               pr->source_profile);
        return rc;
    }
    if (strcasecmp(cs, "Environment") == 0)
        return bm__creds_env(p->cfg, src) ? BM_OK
                                          : bm_errmsg_set(em, BM_E_NO_CREDENTIALS,
                                                          "profile %s: credential_source "
                                                          "Environment, but no "
                                                          "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                                                          name);
    if (strcasecmp(cs, "EcsContainer") == 0)
        return bm__creds_container(p, src, em);
    if (strcasecmp(cs, "Ec2InstanceMetadata") == 0)
        return bm__creds_imds(p, src, em);
    return bm_errmsg_set(em, BM_E_NO_CREDENTIALS,
                         "profile %s: role_arn needs source_profile or credential_source "
                         "(Environment, EcsContainer or Ec2InstanceMetadata)",
                         name);
}

static bm_err profile_resolve(const struct bm__creds_src *p, const char *name, int hops,
                              struct bm_creds *c, bool *found, struct bm_errmsg *em)
{
    struct profile pr;
    profile_load(p->cfg, name, &pr);
    bm_err rc = BM_E_NO_CREDENTIALS;
    *found = true;
    if (pr.role_arn[0] != '\0') {
        struct bm_creds src;
        memset(&src, 0, sizeof src);
        rc = role_source(p, &pr, name, hops, &src, em);
        if (rc == BM_OK) {
            char session[80];
            session_name(p, pr.session_name, session);
            const char *const fields[][2] = {
                {"Action", "AssumeRole"},       {"DurationSeconds", pr.duration},
                {"ExternalId", pr.external_id}, {"RoleArn", pr.role_arn},
                {"RoleSessionName", session},   {"Version", "2011-06-15"}};
            rc = sts_credentials(p, fields, 6, &src, pr.role_arn, "assume-role", c, em);
        }
        bm_secure_zero(&src, sizeof src);
    } else if (pr.keys.akid[0] != '\0' && pr.keys.secret[0] != '\0') {
        *c = pr.keys;
        bm__creds_copy(c->source, sizeof c->source, "profile", 7);
        rc = BM_OK;
    } else if (pr.process[0] != '\0') {
        rc = from_process(pr.process, c, em);
    } else {
        *found = false;
    }
    bm_secure_zero(&pr, sizeof pr);
    return rc;
}

bm_err bm__creds_profile(const struct bm__creds_src *p, const char *name, struct bm_creds *c,
                         bool *found, struct bm_errmsg *em)
{
    return profile_resolve(p, name, 0, c, found, em);
}
