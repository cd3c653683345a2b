/* sts.c: the STS subset bmas's credential sources need (Query 2011-06-15):
 * AssumeRoleWithWebIdentity (unsigned) and AssumeRole (signed, so also role chaining), which
 * issue temporary credentials the verifier then accepts for every service together with their
 * session token, and GetCallerIdentity. The emulator cannot check OIDC tokens, so any non-empty
 * web identity token is accepted; when it happens to be a JWT its sub, aud and iss claims are
 * echoed the way STS reports them. It has no IAM either: every well-formed role ARN exists and
 * trusts every caller, whatever ExternalId it gives. */
#include "emulator/emu_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STS_MIN_DURATION 900
#define STS_MAX_DURATION 43200
#define STS_DEFAULT_DURATION 3600
#define STS_MAX_TOKEN 20000 /* WebIdentityToken's length limit in the STS model */
#define STS_MAX_ROLE_ARN 2048
#define STS_CLAIM_MAX 256
#define STS_CHAIN_MAX_DURATION 3600 /* role chaining's limit, whatever the role allows */

static const char *const ops[] = {"AssumeRoleWithWebIdentity", "AssumeRole", "GetCallerIdentity"};

const char *bm__emu_sts_op(const char *action)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i], action) == 0)
            return ops[i];
    }
    return NULL;
}

/* ---- validation ----------------------------------------------------------------------- */
/* STS's sessionNameType and the IAM name characters: [\w+=,.@-]. */
static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '+' || c == '=' || c == ',' || c == '.' || c == '@' || c == '-';
}

/* AssumeRole's ExternalId pattern adds ':' and '/' to the name characters: [\w+=,.@:/-]. */
static bool external_id_char(char c)
{
    return name_char(c) || c == ':' || c == '/';
}

/* "arn:aws:iam::<12 digits>:role/[path/]name": fills the account and the role name (the last
 * segment, which is what the assumed-role ARN carries). */
static bool parse_role_arn(const char *arn, struct emu_sts_params *p)
{
    static const char pre[] = "arn:aws:iam::";
    size_t len = strlen(arn);
    if (len > STS_MAX_ROLE_ARN || strncmp(arn, pre, sizeof pre - 1) != 0)
        return false;
    const char *acct = arn + sizeof pre - 1;
    for (int i = 0; i < 12; i++) {
        if (acct[i] < '0' || acct[i] > '9')
            return false;
    }
    if (strncmp(acct + 12, ":role/", 6) != 0)
        return false;
    const char *rest = acct + 18, *name = rest;
    size_t seg = 0;
    for (const char *c = rest; *c != '\0'; c++) {
        if (*c == '/') {
            if (seg == 0)
                return false; /* empty path segment */
            seg = 0;
            name = c + 1;
        } else if (!name_char(*c)) {
            return false;
        } else {
            seg++;
        }
    }
    size_t name_len = strlen(name);
    if (name_len == 0 || name_len > 64)
        return false;
    memcpy(p->account, acct, 12);
    p->account[12] = '\0';
    memcpy(p->role_name, name, name_len + 1);
    return true;
}

static bm_err invalid(struct emu_req *rq, const char *value, const char *member, const char *why)
{
    /* STS's model-validation message; a null value is written without quotes. */
    if (value == NULL)
        return bm__emu_fail(rq, "ValidationError",
                            "1 validation error detected: Value null at '%s' failed to satisfy "
                            "constraint: %s",
                            member, why);
    return bm__emu_fail(rq, "ValidationError",
                        "1 validation error detected: Value '%.200s' at '%s' failed to satisfy "
                        "constraint: %s",
                        value, member, why);
}

static bm_err check_token(struct emu_req *rq, const struct emu_sts_params *p)
{
    /* AWS's model says 4 characters at least; the emulator checks no token, so any non-empty
     * one stands in for it. */
    if (p->token == NULL)
        return invalid(rq, NULL, "webIdentityToken", "Member must not be null");
    if (p->token[0] == '\0')
        return invalid(rq, "", "webIdentityToken",
                       "Member must have length greater than or equal to 1");
    if (strlen(p->token) > STS_MAX_TOKEN)
        return invalid(rq, "...", "webIdentityToken",
                       "Member must have length less than or equal to 20000");
    return BM_OK;
}

/* ExternalId is optional; when given it is only validated (no trust policy asks for it). */
static bm_err check_external_id(struct emu_req *rq, const cJSON *in, struct emu_sts_params *p)
{
    p->external_id = bm__emu_in_str(in, "ExternalId");
    if (p->external_id == NULL)
        return BM_OK;
    size_t n = strlen(p->external_id);
    if (n < 2)
        return invalid(rq, p->external_id, "externalId",
                       "Member must have length greater than or equal to 2");
    if (n > 1224)
        return invalid(rq, p->external_id, "externalId",
                       "Member must have length less than or equal to 1224");
    for (size_t i = 0; i < n; i++) {
        if (!external_id_char(p->external_id[i]))
            return invalid(rq, p->external_id, "externalId",
                           "Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*");
    }
    return BM_OK;
}

bm_err bm__emu_sts_check(struct emu_req *rq, const cJSON *in, bool web_identity,
                         struct emu_sts_params *p)
{
    memset(p, 0, sizeof *p);
    p->role_arn = bm__emu_in_str(in, "RoleArn");
    p->session_name = bm__emu_in_str(in, "RoleSessionName");
    if (web_identity)
        p->token = bm__emu_in_str(in, "WebIdentityToken");
    p->duration_s = STS_DEFAULT_DURATION;
    if (p->role_arn == NULL)
        return invalid(rq, NULL, "roleArn", "Member must not be null");
    if (!parse_role_arn(p->role_arn, p))
        return bm__emu_fail(rq, "ValidationError", "Request ARN is invalid: %.200s", p->role_arn);
    if (p->session_name == NULL)
        return invalid(rq, NULL, "roleSessionName", "Member must not be null");
    size_t n = strlen(p->session_name);
    if (n < 2)
        return invalid(rq, p->session_name, "roleSessionName",
                       "Member must have length greater than or equal to 2");
    if (n > 64)
        return invalid(rq, p->session_name, "roleSessionName",
                       "Member must have length less than or equal to 64");
    for (size_t i = 0; i < n; i++) {
        if (!name_char(p->session_name[i]))
            return invalid(rq, p->session_name, "roleSessionName",
                           "Member must satisfy regular expression pattern: [\\w+=,.@-]*");
    }
    bm_err rc = web_identity ? check_token(rq, p) : check_external_id(rq, in, p);
    if (rc != BM_OK)
        return rc;
    const char *d = bm__emu_in_str(in, "DurationSeconds");
    if (d != NULL) {
        char *end = NULL;
        long v = strtol(d, &end, 10);
        if (*d == '\0' || *end != '\0')
            return invalid(rq, d, "durationSeconds", "Member must be an integer");
        if (v < STS_MIN_DURATION)
            return invalid(rq, d, "durationSeconds",
                           "Member must have value greater than or equal to 900");
        if (v > STS_MAX_DURATION)
            return invalid(rq, d, "durationSeconds",
                           "Member must have value less than or equal to 43200");
        p->duration_s = v;
    }
    return BM_OK;
}

/* ---- sessions ------------------------------------------------------------------------- */
/* n characters drawn from alphabet (its length a power of two up to 64); callers hold mu. */
static void random_chars(struct bm_emu *emu, const char *alphabet, size_t alen, char *out, size_t n)
{
    uint64_t r = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (bits < 6) {
            r = bm__emu_rand(emu);
            bits = 64;
        }
        out[i] = alphabet[r & (alen - 1)];
        r >>= 6;
        bits -= 6;
    }
    out[n] = '\0';
}

static const char upper32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void session_drop(struct bm_emu *emu, size_t i)
{
    bm_secure_zero(&emu->sessions[i], sizeof emu->sessions[i]);
    memmove(&emu->sessions[i], &emu->sessions[i + 1],
            (emu->n_sessions - i - 1) * sizeof *emu->sessions);
    emu->n_sessions--;
}

/* Makes room for one more session: expired ones go first, else the oldest. */
static void sessions_make_room(struct bm_emu *emu, int64_t now_ms)
{
    if (emu->n_sessions < EMU_STS_MAX_SESSIONS)
        return;
    size_t kept = 0;
    for (size_t i = 0; i < emu->n_sessions; i++) {
        if (emu->sessions[i].expires_ms <= now_ms) {
            bm_secure_zero(&emu->sessions[i], sizeof emu->sessions[i]);
            continue;
        }
        if (kept != i)
            emu->sessions[kept] = emu->sessions[i];
        kept++;
    }
    emu->n_sessions = kept;
    if (emu->n_sessions >= EMU_STS_MAX_SESSIONS)
        session_drop(emu, 0);
}

bm_err bm__emu_sts_issue(struct bm_emu *emu, const struct emu_sts_params *p, int64_t now_ms,
                         struct emu_session *out)
{
    /* The role id is stable per role ARN, as IAM's is per role: derived from the ARN's hash. */
    char hash[BM_SHA256_HEX_LEN + 1], role_id[22];
    bm_err rc = bm_sha256_hex(p->role_arn, strlen(p->role_arn), hash);
    if (rc != BM_OK)
        return rc;
    memcpy(role_id, "AROA", 4);
    for (int i = 0; i < 17; i++)
        role_id[4 + i] = upper32[(unsigned char)hash[i] % 32];
    role_id[21] = '\0';

    pthread_mutex_lock(&emu->mu);
    sessions_make_room(emu, now_ms);
    rc = bm__emu_grow(&emu->sessions, &emu->cap_sessions, emu->n_sessions + 1,
                      sizeof *emu->sessions);
    if (rc == BM_OK) {
        struct emu_session *s = &emu->sessions[emu->n_sessions++];
        memset(s, 0, sizeof *s);
        memcpy(s->akid, "ASIA", 4);
        random_chars(emu, upper32, 32, s->akid + 4, EMU_STS_AKID_LEN - 4);
        random_chars(emu, b64, 64, s->secret, EMU_STS_SECRET_LEN);
        random_chars(emu, b64, 64, s->token, EMU_STS_TOKEN_LEN);
        s->expires_ms = now_ms + (int64_t)p->duration_s * 1000;
        snprintf(s->account, sizeof s->account, "%s", p->account);
        snprintf(s->arn, sizeof s->arn, "arn:aws:sts::%s:assumed-role/%s/%s", p->account,
                 p->role_name, p->session_name);
        snprintf(s->user_id, sizeof s->user_id, "%s:%s", role_id, p->session_name);
        *out = *s;
    }
    pthread_mutex_unlock(&emu->mu);
    return rc;
}

void bm__emu_sts_clear(struct bm_emu *emu)
{
    if (emu->sessions != NULL)
        bm_secure_zero(emu->sessions, emu->cap_sessions * sizeof *emu->sessions);
    bm_free(emu->sessions);
    emu->sessions = NULL;
    emu->n_sessions = emu->cap_sessions = 0;
}

/* The request's session token (header, else the presigned query parameter) into b. */
static bool session_token(const struct emu_req *rq, struct bm_buf *b)
{
    const char *h = bm__emu_header(rq, "X-Amz-Security-Token");
    if (h != NULL)
        return bm_buf_append_str(b, h) == BM_OK;
    struct bm_url_pair pair;
    size_t pos = 0;
    while (rq->query != NULL && bm_url_query_next(rq->query, rq->query_len, &pos, &pair)) {
        if (pair.name_len == 20 && memcmp(pair.name, "X-Amz-Security-Token", 20) == 0)
            return bm_url_decode(pair.value, pair.value_len, false, b) == BM_OK;
    }
    return false;
}

bm_err bm__emu_sts_authorize(struct emu_req *rq, const char *akid, struct emu_session *s,
                             bool *issued)
{
    struct bm_emu *emu = rq->emu;
    *issued = false;
    pthread_mutex_lock(&emu->mu);
    for (size_t i = 0; i < emu->n_sessions && !*issued; i++) {
        if (strcmp(emu->sessions[i].akid, akid) == 0) {
            *s = emu->sessions[i];
            *issued = true;
        }
    }
    pthread_mutex_unlock(&emu->mu);
    if (!*issued)
        return BM_OK;
    bool s3 = rq->svc == EMU_SVC_S3;
    struct bm_buf tok;
    bm_buf_init(&tok, STS_MAX_TOKEN);
    bool have = session_token(rq, &tok) && tok.len > 0;
    bool match = have && tok.len == EMU_STS_TOKEN_LEN &&
                 bm_crypto_equal(tok.data, s->token, EMU_STS_TOKEN_LEN);
    bm_buf_cleanup(&tok);
    /* Without its token a temporary key is unknown to AWS; with a wrong one S3 says
     * InvalidToken (400) and the Query services InvalidClientTokenId (403). */
    if (!have)
        return s3 ? bm__emu_fail(rq, "InvalidAccessKeyId",
                                 "The AWS Access Key Id you provided does not exist in our "
                                 "records.")
                  : bm__emu_fail(rq, "InvalidClientTokenId",
                                 "The security token included in the request is invalid.");
    if (!match)
        return s3 ? bm__emu_fail(rq, "InvalidToken",
                                 "The provided token is malformed or otherwise invalid.")
                  : bm__emu_fail(rq, "InvalidClientTokenId",
                                 "The security token included in the request is invalid.");
    if (rq->now_ms >= s->expires_ms)
        return s3 ? bm__emu_fail_status(rq, 400, "ExpiredToken", "The provided token has expired.")
                  : bm__emu_fail(rq, "ExpiredToken",
                                 "The security token included in the request is expired");
    rq->caller.temporary = true;
    memcpy(rq->caller.account, s->account, sizeof rq->caller.account);
    memcpy(rq->caller.arn, s->arn, sizeof rq->caller.arn);
    memcpy(rq->caller.user_id, s->user_id, sizeof rq->caller.user_id);
    return BM_OK;
}

bm_err bm__emu_sts_credentials(struct emu_req *rq, struct emu_session *s, struct emu_cred *cred,
                               const struct emu_cred **creds, size_t *n_creds)
{
    struct bm_emu *emu = rq->emu;
    char akid[128];
    bool issued = false;
    bm__emu_scope_akid(rq, akid);
    for (size_t i = 0; i < emu->n_creds; i++) {
        if (strcmp(emu->creds[i].akid, akid) == 0)
            return BM_OK;
    }
    bm_err rc = akid[0] ? bm__emu_sts_authorize(rq, akid, s, &issued) : BM_OK;
    if (rc != BM_OK || !issued)
        return rc;
    cred->akid = s->akid;
    cred->secret = s->secret;
    *creds = cred;
    *n_creds = 1;
    return BM_OK;
}

/* ---- operations ----------------------------------------------------------------------- */
/* A JWT's claims (sub, aud, iss) when the token is one; each stays "" otherwise. */
static void jwt_claims(const char *token, char sub[STS_CLAIM_MAX], char aud[STS_CLAIM_MAX],
                       char iss[STS_CLAIM_MAX])
{
    sub[0] = aud[0] = iss[0] = '\0';
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (d2 == NULL || d2 - d1 - 1 > 8192)
        return;
    /* base64url without padding to the standard alphabet core decodes. */
    char std[8196];
    size_t n = 0;
    for (const char *c = d1 + 1; c < d2; c++)
        std[n++] = *c == '-' ? '+' : *c == '_' ? '/' : *c;
    while (n % 4 != 0)
        std[n++] = '=';
    struct bm_buf b;
    bm_buf_init(&b, 8192);
    cJSON *j = NULL;
    if (bm_base64_decode(std, n, &b) == BM_OK && b.len > 0)
        j = cJSON_ParseWithLength(b.data, b.len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "sub");
    if (cJSON_IsString(v))
        snprintf(sub, STS_CLAIM_MAX, "%s", v->valuestring);
    v = cJSON_GetObjectItemCaseSensitive(j, "aud");
    if (cJSON_IsArray(v))
        v = cJSON_GetArrayItem(v, 0);
    if (cJSON_IsString(v))
        snprintf(aud, STS_CLAIM_MAX, "%s", v->valuestring);
    v = cJSON_GetObjectItemCaseSensitive(j, "iss");
    if (cJSON_IsString(v))
        snprintf(iss, STS_CLAIM_MAX, "%s",
                 strncmp(v->valuestring, "https://", 8) == 0 ? v->valuestring + 8 : v->valuestring);
    cJSON_Delete(j);
    bm_buf_cleanup(&b);
}

/* write_session and write_user give the Credentials and AssumedRoleUser members both
 * AssumeRole* answers carry; callers write Credentials first, the STS model's member order. */
static void write_session(struct emu_w *w, const struct emu_session *s)
{
    bm__emu_w_obj(w, "Credentials");
    bm__emu_w_str(w, "AccessKeyId", s->akid);
    bm__emu_w_str(w, "SecretAccessKey", s->secret);
    bm__emu_w_str(w, "SessionToken", s->token);
    bm__emu_w_time(w, "Expiration", s->expires_ms);
    bm__emu_w_end(w);
}

static void write_user(struct emu_w *w, const struct emu_session *s)
{
    bm__emu_w_obj(w, "AssumedRoleUser");
    bm__emu_w_str(w, "AssumedRoleId", s->user_id);
    bm__emu_w_str(w, "Arn", s->arn);
    bm__emu_w_end(w);
}

/* Validates the request's parameters and issues the session both operations answer. */
static bm_err check_and_issue(struct emu_req *rq, bool web_identity, struct emu_sts_params *p,
                              struct emu_session *s)
{
    bm_err rc = bm__emu_sts_check(rq, rq->in, web_identity, p);
    if (rc != BM_OK)
        return rc;
    /* STS caps a session assumed with temporary credentials (role chaining) at one hour. */
    if (!web_identity && rq->caller.temporary && p->duration_s > STS_CHAIN_MAX_DURATION)
        return bm__emu_fail(rq, "ValidationError",
                            "The requested DurationSeconds exceeds the 1 hour session limit for "
                            "roles assumed by role chaining.");
    if ((rc = bm__emu_sts_issue(rq->emu, p, rq->now_ms, s)) != BM_OK)
        return rc;
    BM_LOG(BM_INFO, "emu", "sts_issued", "temporary credentials issued",
           BM_KV_STR("req_id", rq->req_id), BM_KV_STR("op", rq->op),
           BM_KV_STR("role_arn", p->role_arn), BM_KV_INT("duration_s", p->duration_s));
    return BM_OK;
}

static bm_err assume_role_web_identity(struct emu_req *rq, struct emu_w *w)
{
    struct emu_sts_params p;
    struct emu_session s;
    bm_err rc = check_and_issue(rq, true, &p, &s);
    if (rc != BM_OK)
        return rc;
    /* Without a JWT to read claims from, stand-ins: the session name as subject, EKS's
     * audience (sts.amazonaws.com) and an OIDC provider named after the emulator. */
    char sub[STS_CLAIM_MAX], aud[STS_CLAIM_MAX], iss[STS_CLAIM_MAX], provider[STS_CLAIM_MAX + 64];
    jwt_claims(p.token, sub, aud, iss);
    snprintf(provider, sizeof provider, "arn:aws:iam::%s:oidc-provider/%s", p.account,
             iss[0] ? iss : "bmas-emulator");
    write_session(w, &s);
    bm__emu_w_str(w, "SubjectFromWebIdentityToken", sub[0] ? sub : p.session_name);
    write_user(w, &s);
    bm__emu_w_str(w, "Audience", aud[0] ? aud : "sts.amazonaws.com");
    bm__emu_w_str(w, "Provider", provider);
    bm_secure_zero(&s, sizeof s);
    return BM_OK;
}

/* AssumeRole: signed, by static or issued credentials (the verifier has checked them and
 * their session token before the handler runs). */
static bm_err assume_role(struct emu_req *rq, struct emu_w *w)
{
    struct emu_sts_params p;
    struct emu_session s;
    bm_err rc = check_and_issue(rq, false, &p, &s);
    if (rc != BM_OK)
        return rc;
    write_session(w, &s);
    write_user(w, &s);
    bm_secure_zero(&s, sizeof s);
    return BM_OK;
}

static bm_err caller_identity(struct emu_req *rq, struct emu_w *w)
{
    /* Static credentials stand for the emulator account's root user. */
    const struct emu_caller *c = &rq->caller;
    bm__emu_w_str(w, "UserId", c->temporary ? c->user_id : EMU_ACCOUNT);
    bm__emu_w_str(w, "Account", c->temporary ? c->account : EMU_ACCOUNT);
    bm__emu_w_str(w, "Arn", c->temporary ? c->arn : "arn:aws:iam::" EMU_ACCOUNT ":root");
    return BM_OK;
}

bm_err bm__emu_sts_handle(struct emu_req *rq, struct emu_resp *rs)
{
    struct emu_w w;
    bm__emu_w_begin(&w, EMU_PROTO_QUERY, EMU_STS_NS, rq->op, &rs->body);
    bm_err rc = strcmp(rq->op, "AssumeRoleWithWebIdentity") == 0 ? assume_role_web_identity(rq, &w)
                : strcmp(rq->op, "AssumeRole") == 0              ? assume_role(rq, &w)
                                                                 : caller_identity(rq, &w);
    if (rc != BM_OK)
        return rc;
    rs->content_type = "text/xml";
    return bm__emu_w_finish(&w, rq->req_id);
}
