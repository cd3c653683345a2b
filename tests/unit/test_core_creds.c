/* The credentials chain: environment, shared credentials and config files with AWS_PROFILE,
 * credential_process, web identity (STS AssumeRoleWithWebIdentity), container credentials
 * (token and token file), IMDSv2 (token first), caching, refresh before expiry, invalidation
 * once per window, and no secret in the logs. */
#include "fake_http.h"

#include <unistd.h>

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/bmas-creds-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void env_setup(struct fake_aws *e, const char *const *vars)
{
    fake_aws_setup(e, vars, 1776643200); /* 2026-04-20T00:00:00Z */
}

static void test_env_first(void **state)
{
    (void)state;
    char home[300];
    snprintf(home, sizeof home, "%s", dir);
    write_file(".aws-credentials",
               "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = f\n");
    const char *vars[] = {"AWS_ACCESS_KEY_ID",
                          "ENVKEY",
                          "AWS_SECRET_ACCESS_KEY",
                          "envsecret",
                          "AWS_SESSION_TOKEN",
                          "envtoken",
                          "HOME",
                          home,
                          NULL};
    struct fake_aws e;
    env_setup(&e, vars);
    struct bm_creds c;
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_creds_get(e.creds, &c, &em), BM_OK);
    assert_string_equal(c.akid, "ENVKEY");
    assert_string_equal(c.secret, "envsecret");
    assert_string_equal(c.token, "envtoken");
    assert_string_equal(c.source, "env");
    assert_int_equal(e.http.ncalls, 0);
    fake_aws_teardown(&e);
}

static void test_profiles(void **state)
{
    (void)state;
    char cred[512], conf[512];
    snprintf(cred, sizeof cred, "%s/credentials", dir);
    snprintf(conf, sizeof conf, "%s/config", dir);
    write_file("credentials", "# comment\n[default]\naws_access_key_id=DEFKEY\n"
                              "aws_secret_access_key=defsecret\n\n[team]\r\n"
                              "  aws_access_key_id = TEAMKEY \r\n"
                              "aws_secret_access_key= teamsecret\r\naws_session_token =tt\r\n");
    write_file("config", "[default]\nregion = us-east-1\n[profile ops]\n"
                         "aws_access_key_id = OPSKEY\naws_secret_access_key = opssecret\n"
                         "[ops]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n");
    static const struct {
        const char *profile, *akid, *secret, *token;
    } cases[] = {
        {"default", "DEFKEY", "defsecret", ""},
        {"team", "TEAMKEY", "teamsecret", "tt"},
        {"ops", "OPSKEY", "opssecret", ""}, /* config file: "[profile ops]", not "[ops]" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *vars[] = {"AWS_PROFILE",
                              cases[i].profile,
                              "AWS_SHARED_CREDENTIALS_FILE",
                              cred,
                              "AWS_CONFIG_FILE",
                              conf,
                              "AWS_EC2_METADATA_DISABLED",
                              "true",
                              NULL};
        struct fake_aws e;
        env_setup(&e, vars);
        struct bm_creds c;
        assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
        assert_string_equal(c.akid, cases[i].akid);
        assert_string_equal(c.secret, cases[i].secret);
        assert_string_equal(c.token, cases[i].token);
        assert_string_equal(c.source, "profile");
        fake_aws_teardown(&e);
    }
    /* An unknown profile and no other source: a clear BMAS-022. */
    const char *vars[] = {"AWS_PROFILE",
                          "nope",
                          "AWS_SHARED_CREDENTIALS_FILE",
                          cred,
                          "AWS_CONFIG_FILE",
                          conf,
                          "AWS_EC2_METADATA_DISABLED",
                          "1",
                          NULL};
    struct fake_aws e;
    env_setup(&e, vars);
    struct bm_creds c;
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_creds_get(e.creds, &c, &em), BM_E_NO_CREDENTIALS);
    assert_string_equal(bm_err_wire(BM_E_NO_CREDENTIALS), "BMAS-022");
    assert_non_null(strstr(em.text, "AWS_ACCESS_KEY_ID"));
    assert_int_equal(e.http.ncalls, 0); /* IMDS disabled: not even asked */
    fake_aws_teardown(&e);
}

/* Formats into one of a few rotating buffers, so several scripted bodies can coexist. */
static const char *creds_json(const char *exp)
{
    static char bufs[4][512];
    static int next;
    char *buf = bufs[next++ % 4];
    snprintf(buf, sizeof bufs[0],
             "{\"AccessKeyId\":\"ASIACONT\",\"SecretAccessKey\":\"contsecret\",\"Token\":"
             "\"conttoken\",\"Expiration\":\"%s\"}",
             exp);
    return buf;
}

static const char *sts_ok(const char *akid, const char *exp)
{
    return fake_sts_answer("AssumeRoleWithWebIdentity", akid, "wi/secret+x", "FwoG&amp;tok==", exp);
}

static void test_web_identity(void **state)
{
    (void)state;
    char tok[512];
    snprintf(tok, sizeof tok, "%s/oidc-token", dir);
    write_file("oidc-token", "eyJhbGciOi.first+token/=\n");
    const char *vars[] = {"AWS_WEB_IDENTITY_TOKEN_FILE",
                          tok,
                          "AWS_ROLE_ARN",
                          "arn:aws:iam::123456789012:role/bmas",
                          "AWS_ROLE_SESSION_NAME",
                          "pod-1",
                          "AWS_ENDPOINT_URL_STS",
                          "http://127.0.0.1:4566/",
                          "AWS_SHARED_CREDENTIALS_FILE",
                          "/nonexistent",
                          "AWS_CONFIG_FILE",
                          "/nonexistent",
                          "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                          "http://127.0.0.1:9911/never-asked",
                          NULL};
    struct fake_aws e;
    env_setup(&e, vars);
    fake_push(&e.http, (struct fake_resp){.status = 200,
                                          .body = sts_ok("ASIAWEB1", "2026-04-20T01:00:00Z")});
    fake_push(&e.http, (struct fake_resp){.status = 200,
                                          .body = sts_ok("ASIAWEB2", "2026-04-20T02:00:00Z")});
    struct bm_creds c;
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_creds_get(e.creds, &c, &em), BM_OK);
    assert_string_equal(c.akid, "ASIAWEB1");
    assert_string_equal(c.secret, "wi/secret+x");
    assert_string_equal(c.token, "FwoG&tok=="); /* XML entities decoded */
    assert_string_equal(c.source, "web-identity");
    assert_int_equal(c.expires, 1776646800);
    /* One unsigned form POST to the STS endpoint, before the container source is tried. */
    assert_int_equal(e.http.ncalls, 1);
    assert_string_equal(e.http.calls[0].method, "POST");
    assert_string_equal(e.http.calls[0].url, "http://127.0.0.1:4566/");
    assert_string_equal(e.http.calls[0].service, "");
    assert_string_equal(e.http.calls[0].body.data,
                        "Action=AssumeRoleWithWebIdentity"
                        "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fbmas"
                        "&RoleSessionName=pod-1&Version=2011-06-15"
                        "&WebIdentityToken=eyJhbGciOi.first%2Btoken%2F%3D");
    /* The kubelet rotates the token file: the refresh reads it again. */
    write_file("oidc-token", "second-token");
    e.clock.now_ms += 56 * 60 * 1000;
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_string_equal(c.akid, "ASIAWEB2");
    assert_non_null(strstr(e.http.calls[1].body.data, "&WebIdentityToken=second-token"));
    fake_aws_teardown(&e);

    /* STS refuses: BMAS-022 naming the role, STS's code and message. */
    env_setup(&e, vars);
    fake_push(&e.http,
              (struct fake_resp){.status = 403,
                                 .body = "<ErrorResponse><Error><Type>Sender</Type>"
                                         "<Code>InvalidIdentityToken</Code><Message>Token "
                                         "expired &amp; gone</Message></Error></ErrorResponse>"});
    assert_int_equal(bm_creds_get(e.creds, &c, &em), BM_E_NO_CREDENTIALS);
    assert_non_null(strstr(em.text, "arn:aws:iam::123456789012:role/bmas"));
    assert_non_null(strstr(em.text, "403 InvalidIdentityToken: Token expired & gone"));
    fake_aws_teardown(&e);

    /* An unreadable token file is named; STS is not asked. */
    const char *missing[] = {"AWS_WEB_IDENTITY_TOKEN_FILE",
                             "/nonexistent/token",
                             "AWS_ROLE_ARN",
                             "arn:aws:iam::123456789012:role/bmas",
                             "AWS_SHARED_CREDENTIALS_FILE",
                             "/nonexistent",
                             "AWS_CONFIG_FILE",
                             "/nonexistent",
                             NULL};
    env_setup(&e, missing);
    assert_int_equal(bm_creds_get(e.creds, &c, &em), BM_E_NO_CREDENTIALS);
    assert_non_null(strstr(em.text, "/nonexistent/token"));
    assert_int_equal(e.http.ncalls, 0);
    fake_aws_teardown(&e);
}

static void test_credential_process(void **state)
{
    (void)state;
    char conf[512], script[512], bad[512], fail[512];
    snprintf(conf, sizeof conf, "%s/config-process", dir);
    snprintf(script, sizeof script, "%s/creds.sh", dir);
    snprintf(bad, sizeof bad, "%s/bad.sh", dir);
    snprintf(fail, sizeof fail, "%s/fail.sh", dir);
    write_file("creds.sh", "#!/bin/sh\n[ \"$1\" = --arg ] || exit 3\n"
                           "printf '{\"Version\": 1, \"AccessKeyId\": \"ASIAPROC\", "
                           "\"SecretAccessKey\": \"procsecret\", \"SessionToken\": \"proctok\", "
                           "\"Expiration\": \"2026-04-20T01:00:00Z\"}'\n");
    write_file("bad.sh", "#!/bin/sh\necho '{\"Version\": 2, \"AccessKeyId\": \"A\", "
                         "\"SecretAccessKey\": \"s\"}'\n");
    write_file("fail.sh", "#!/bin/sh\nexit 7\n");
    write_file("badexp.sh", "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"A\", "
                            "\"SecretAccessKey\": \"s\", \"Expiration\": \"tomorrow\"}'\n");
    char text[3000];
    snprintf(text, sizeof text,
             "[profile proc]\ncredential_process = sh %s --arg\n"
             "[profile bad]\ncredential_process = sh %s\n"
             "[profile fail]\ncredential_process = sh %s\n"
             "[profile badexp]\ncredential_process = sh %s/badexp.sh\n"
             "[profile static]\naws_access_key_id = STATIC\naws_secret_access_key = s\n"
             "credential_process = sh %s\n",
             script, bad, fail, dir, fail);
    write_file("config-process", text);
    static const struct {
        const char *profile;
        bm_err rc;
        const char *akid_or_msg;
    } cases[] = {
        {"proc", BM_OK, "ASIAPROC"},
        {"static", BM_OK, "STATIC"}, /* static keys in the profile win */
        {"bad", BM_E_NO_CREDENTIALS, "not the Version 1 credentials JSON"},
        {"fail", BM_E_NO_CREDENTIALS, "exited with status 7"},
        /* An unreadable expiry would make temporary credentials look eternal. */
        {"badexp", BM_E_NO_CREDENTIALS, "not the Version 1 credentials JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *vars[] = {"AWS_PROFILE",
                              cases[i].profile,
                              "AWS_SHARED_CREDENTIALS_FILE",
                              "/nonexistent",
                              "AWS_CONFIG_FILE",
                              conf,
                              NULL};
        struct fake_aws e;
        env_setup(&e, vars);
        struct bm_creds c;
        struct bm_errmsg em = {{0}};
        assert_int_equal(bm_creds_get(e.creds, &c, &em), cases[i].rc);
        if (cases[i].rc == BM_OK) {
            assert_string_equal(c.akid, cases[i].akid_or_msg);
        } else {
            assert_non_null(strstr(em.text, cases[i].akid_or_msg));
        }
        if (i == 0) {
            assert_string_equal(c.secret, "procsecret");
            assert_string_equal(c.token, "proctok");
            assert_string_equal(c.source, "process");
            assert_int_equal(c.expires, 1776646800);
        }
        assert_int_equal(e.http.ncalls, 0);
        fake_aws_teardown(&e);
    }
}

static void test_container(void **state)
{
    (void)state;
    char tokfile[512];
    snprintf(tokfile, sizeof tokfile, "%s/eks-token", dir);
    write_file("eks-token", "  eks-pod-identity-token\n");
    const char *vars[] = {"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                          "http://127.0.0.1:9911/creds",
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                          "from-variable",
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                          tokfile,
                          "AWS_SHARED_CREDENTIALS_FILE",
                          "/nonexistent",
                          "AWS_CONFIG_FILE",
                          "/nonexistent",
                          NULL};
    struct fake_aws e;
    env_setup(&e, vars);
    fake_push(&e.http,
              (struct fake_resp){.status = 200, .body = creds_json("2026-04-20T01:00:00Z")});
    fake_push(&e.http,
              (struct fake_resp){.status = 200, .body = creds_json("2026-04-20T02:00:00Z")});
    struct bm_creds c;
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_string_equal(c.akid, "ASIACONT");
    assert_string_equal(c.token, "conttoken");
    assert_string_equal(c.source, "container");
    assert_int_equal(c.expires, 1776646800);
    assert_string_equal(e.http.calls[0].url, "http://127.0.0.1:9911/creds");
    /* The token file wins over the variable (EKS Pod Identity rotates the file). */
    assert_string_equal(e.http.calls[0].headers[0], "Authorization: eks-pod-identity-token");
    /* Cached until five minutes before expiry... */
    e.clock.now_ms += 54 * 60 * 1000;
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_int_equal(e.http.ncalls, 1);
    /* ...then refreshed. */
    e.clock.now_ms += 2 * 60 * 1000;
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_int_equal(e.http.ncalls, 2);
    assert_int_equal(c.expires, 1776650400);
    fake_aws_teardown(&e);

    /* A relative URI goes to the ECS agent address; a foreign plain-http host is refused. */
    const char *rel[] = {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                         "/v2/credentials/abc",
                         "AWS_SHARED_CREDENTIALS_FILE",
                         "/nonexistent",
                         "AWS_CONFIG_FILE",
                         "/nonexistent",
                         NULL};
    env_setup(&e, rel);
    fake_push(&e.http,
              (struct fake_resp){.status = 200, .body = creds_json("2026-04-20T01:00:00Z")});
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_string_equal(e.http.calls[0].url, "http://169.254.170.2/v2/credentials/abc");
    assert_int_equal(e.http.calls[0].nheaders, 0);
    fake_aws_teardown(&e);
    const char *bad[] = {"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                         "http://evil.example/creds",
                         "AWS_SHARED_CREDENTIALS_FILE",
                         "/nonexistent",
                         "AWS_CONFIG_FILE",
                         "/nonexistent",
                         NULL};
    env_setup(&e, bad);
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_creds_get(e.creds, &c, &em), BM_E_NO_CREDENTIALS);
    assert_int_equal(e.http.ncalls, 0);
    fake_aws_teardown(&e);
}

static void test_imds(void **state)
{
    (void)state;
    const char *vars[] = {"AWS_EC2_METADATA_SERVICE_ENDPOINT",
                          "http://127.0.0.1:9912",
                          "AWS_SHARED_CREDENTIALS_FILE",
                          "/nonexistent",
                          "AWS_CONFIG_FILE",
                          "/nonexistent",
                          NULL};
    struct fake_aws e;
    env_setup(&e, vars);
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = "imds-session-token"});
    fake_push(&e.http, (struct fake_resp){.status = 200, .body = "bmas-role\n"});
    fake_push(&e.http,
              (struct fake_resp){.status = 200,
                                 .body = "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\","
                                         "\"AccessKeyId\":\"ASIAIMDS\",\"SecretAccessKey\":"
                                         "\"imdssecret\",\"Token\":\"imdstoken\","
                                         "\"Expiration\":\"2026-04-20T06:00:00Z\"}"});
    struct bm_creds c;
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_string_equal(c.akid, "ASIAIMDS");
    assert_string_equal(c.source, "imds");
    /* IMDSv2: the PUT for a token comes first, and every read carries it. */
    assert_string_equal(e.http.calls[0].method, "PUT");
    assert_string_equal(e.http.calls[0].url, "http://127.0.0.1:9912/latest/api/token");
    assert_string_equal(e.http.calls[0].headers[0], "X-aws-ec2-metadata-token-ttl-seconds: 21600");
    assert_string_equal(e.http.calls[1].url,
                        "http://127.0.0.1:9912/latest/meta-data/iam/security-credentials/");
    assert_string_equal(e.http.calls[1].headers[0], "X-aws-ec2-metadata-token: imds-session-token");
    assert_string_equal(
        e.http.calls[2].url,
        "http://127.0.0.1:9912/latest/meta-data/iam/security-credentials/bmas-role");
    fake_aws_teardown(&e);

    /* No token (IMDSv1-only or not on EC2): no credentials, and only one call. */
    env_setup(&e, vars);
    fake_push(&e.http, (struct fake_resp){.transport_error = true});
    struct bm_errmsg em = {{0}};
    assert_int_equal(bm_creds_get(e.creds, &c, &em), BM_E_NO_CREDENTIALS);
    assert_int_equal(e.http.ncalls, 1);
    fake_aws_teardown(&e);
}

static void test_invalidate_and_no_secret_in_logs(void **state)
{
    (void)state;
    const char *vars[] = {"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                          "http://127.0.0.1:9911/c",
                          "AWS_SHARED_CREDENTIALS_FILE",
                          "/nonexistent",
                          "AWS_CONFIG_FILE",
                          "/nonexistent",
                          "BMAS_AUTH_TOKEN",
                          "bearer-secret",
                          NULL};
    struct fake_aws e;
    env_setup(&e, vars);
    for (int i = 0; i < 3; i++)
        fake_push(&e.http,
                  (struct fake_resp){.status = 200, .body = creds_json("2026-04-21T00:00:00Z")});
    struct bm_creds c;
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    bm_creds_invalidate(e.creds);
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_int_equal(e.http.ncalls, 2);
    /* A second invalidation within the minute is ignored: no refresh storm. */
    bm_creds_invalidate(e.creds);
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_int_equal(e.http.ncalls, 2);
    e.clock.now_ms += 61000;
    bm_creds_invalidate(e.creds);
    assert_int_equal(bm_creds_get(e.creds, &c, NULL), BM_OK);
    assert_int_equal(e.http.ncalls, 3);

    /* The start-up configuration dump never shows secrets. */
    const char *all[] = {"AWS_ACCESS_KEY_ID",
                         "AKID",
                         "AWS_SECRET_ACCESS_KEY",
                         "topsecret",
                         "AWS_SESSION_TOKEN",
                         "sessiontok",
                         "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                         "authtok",
                         "BMAS_AUTH_TOKEN",
                         "bearer",
                         NULL};
    fake_env_list = all;
    struct bm_config cfg;
    struct bm_errmsg em;
    assert_int_equal(bm_config_load(&cfg, fake_getenv, &em), BM_OK);
    struct bm_buf b;
    bm_buf_init(&b, 1 << 20);
    assert_int_equal(bm_config_json(&cfg, &b), BM_OK);
    assert_null(strstr(b.data, "topsecret"));
    assert_null(strstr(b.data, "sessiontok"));
    assert_null(strstr(b.data, "authtok"));
    assert_non_null(strstr(b.data, "\"AWS_ACCESS_KEY_ID\":\"AKID\""));
    bm_buf_cleanup(&b);
    bm_config_cleanup(&cfg);
    fake_aws_teardown(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_first),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_web_identity),
        cmocka_unit_test(test_credential_process),
        cmocka_unit_test(test_container),
        cmocka_unit_test(test_imds),
        cmocka_unit_test(test_invalidate_and_no_secret_in_logs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
