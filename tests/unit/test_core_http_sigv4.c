/* Signs the AWS SigV4 test-suite requests through core/http.c's transport (bm_http_curl_new and
 * its perform: libcurl's CURLOPT_AWS_SIGV4 plus the session token header bmas adds), given
 * what bmas hands it (canonical path and sorted, encoded query in the URL, caller headers),
 * and compares the Authorization header that reaches a local socket with the suite's expected
 * signature. The suite is tests/vectors/sigv4 (or $BM_SIGV4_VECTORS); the test fails when it
 * is missing or holds fewer than TU_SIGV4_MIN_CASES cases. */
#include "tu_vectors.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

/* Cases whose shape is one bmas sends: GET or POST with an unsigned body, plain headers,
 * a query that bmas would sort and encode itself. They must all match. */
static const char *const must_match[] = {
    "get-vanilla",
    "get-vanilla-query",
    "get-vanilla-query-order-encoded",
    "get-vanilla-query-order-key-case",
    "get-vanilla-query-unreserved",
    "get-vanilla-utf8-query",
    "get-vanilla-empty-query-key",
    "get-vanilla-with-session-token",
    "get-unreserved",
    "get-utf8",
    "get-space-normalized",
    "get-slash-normalized",
    "post-vanilla",
    "post-vanilla-query",
    "post-vanilla-empty-query-value",
    "post-header-key-case",
    "post-header-key-sort",
    "post-header-value-case",
    "get-header-value-trim",
    "get-relative-normalized",
    "get-relative-relative-normalized",
    "get-slash-dot-slash-normalized",
    "get-slash-pointless-dot-normalized",
    "get-slashes-normalized",
    "post-sts-header-before",
};
/* Shapes bmas never sends, where libcurl 7.88 differs from the suite: it does not merge a
 * header given twice into one comma-joined value, nor fold a value spread over lines. Run and
 * reported, not required. (Also out of scope: post-sts-header-after adds the token after signing,
 * bmas always signs it; the
 * *-unnormalized cases, as bmas puts the canonical path in its URLs; and the two
 * x-www-form-urlencoded cases, which sign a body-hash header that bmas leaves to curl.) */
static const char *const known_different[] = {"get-header-key-duplicate", "get-header-value-order",
                                              "get-header-value-multiline"};

#define TU_HTTP_MAX_HEADERS 32

struct capture {
    int fd;
    char req[16384];
};

/* Accepts one connection, reads the request head, answers 200. */
static void *serve_one(void *arg)
{
    struct capture *c = arg;
    int s = accept(c->fd, NULL, NULL);
    if (s < 0)
        return NULL;
    size_t len = 0;
    while (len < sizeof c->req - 1) {
        ssize_t n = read(s, c->req + len, sizeof c->req - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        c->req[len] = '\0';
        char *end = strstr(c->req, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strstr(c->req, "\r\nContent-Length:");
            size_t body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
            if (len >= (size_t)(end - c->req) + 4 + body)
                break;
        }
    }
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    if (write(s, ok, sizeof ok - 1) < 0)
        c->req[0] = '\0';
    close(s);
    return NULL;
}

static char *slurp(const char *dir, const char *name)
{
    char path[2200];
    snprintf(path, sizeof path, "%.1024s/%.1024s", dir, name);
    return tu_read_file(path, NULL);
}

/* Returns 1 when curl's signature matches, 0 when not, -1 when the case is out of scope. */
static int run_case(const char *root, const char *name, char *why, size_t why_len)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    char *req = slurp(dir, "request.txt");
    char *ctx = slurp(dir, "context.json");
    char *canon = slurp(dir, "header-canonical-request.txt");
    char *sig = slurp(dir, "header-signature.txt");
    int result = -1;
    cJSON *j = ctx ? cJSON_Parse(ctx) : NULL;
    if (req == NULL || j == NULL || canon == NULL || sig == NULL) {
        snprintf(why, why_len, "missing files");
        goto done;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItem(j, "sign_body"))) {
        snprintf(why, why_len, "signs the body hash header (bmas lets curl hash the body)");
        goto done;
    }
    /* Method from the request line; canonical path and query (what bmas would build). */
    char method[16];
    sscanf(req, "%15s", method);
    char *path = strchr(canon, '\n') + 1;
    char *query = strchr(path, '\n');
    *query++ = '\0';
    char *qend = strchr(query, '\n');
    *qend = '\0';
    struct capture cap = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(cap.fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(cap.fd, 1), 0);
    getsockname(cap.fd, (struct sockaddr *)&sa, &sl);
    char url[4096];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s%s%s", ntohs(sa.sin_port), path,
             *query ? "?" : "", query);
    /* Headers as written in request.txt (multi-line values folded), then the fixed date; the
     * session token is left to core/http.c, as bmas's credentials carry it. */
    const char *hdrs[TU_HTTP_MAX_HEADERS];
    size_t nh = 0;
    char *line = strchr(req, '\n') + 1;
    char *body = NULL;
    while (*line && *line != '\n') {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strchr(line, ':') != NULL && nh < TU_HTTP_MAX_HEADERS - 1)
            hdrs[nh++] = line;
        line = nl ? nl + 1 : line + strlen(line);
    }
    if (*line == '\n')
        body = line + 1;
    hdrs[nh++] = "X-Amz-Date: 20150830T123600Z";
    const cJSON *cr = cJSON_GetObjectItem(j, "credentials");
    const cJSON *tok = cJSON_GetObjectItem(cr, "token");
    struct bm_creds creds = {0};
    snprintf(creds.akid, sizeof creds.akid, "%s",
             cJSON_GetObjectItem(cr, "access_key_id")->valuestring);
    snprintf(creds.secret, sizeof creds.secret, "%s",
             cJSON_GetObjectItem(cr, "secret_access_key")->valuestring);
    if (cJSON_IsString(tok))
        snprintf(creds.token, sizeof creds.token, "%s", tok->valuestring);
    /* core/http.c's transport does the signing: the request is what bmas would hand it. */
    struct bm_http_curl_opts o = {.total_timeout_ms = 10000};
    struct bm_http_ops ops;
    assert_int_equal(bm_http_curl_new(&o, &ops), BM_OK);
    struct bm_http_req rq = {
        .method = method,
        .url = url,
        .service = cJSON_GetObjectItem(j, "service")->valuestring,
        .region = cJSON_GetObjectItem(j, "region")->valuestring,
        .creds = &creds,
        .headers = hdrs,
        .nheaders = nh,
        .body = body,
        .body_len = body ? strlen(body) : 0,
    };
    struct bm_http_resp rs;
    bm_http_resp_init(&rs);
    struct bm_errmsg em = {0};
    pthread_t th;
    pthread_create(&th, NULL, serve_one, &cap);
    bm_err rc = ops.perform(ops.impl, &rq, &rs, &em);
    pthread_join(th, NULL);
    close(cap.fd);
    bm_http_resp_cleanup(&rs);
    bm_http_curl_free(&ops);
    assert_int_equal(rc, BM_OK);
    const char *got = strstr(cap.req, "Signature=");
    size_t siglen = strcspn(sig, "\r\n ");
    result = got != NULL && strncmp(got + 10, sig, siglen) == 0;
    if (!result)
        snprintf(why, why_len, "curl sent: %.300s", cap.req);
done:
    cJSON_Delete(j);
    bm_free(req);
    bm_free(ctx);
    bm_free(canon);
    bm_free(sig);
    return result;
}

static void test_vectors(void **state)
{
    (void)state;
    const char *root = tu_vectors_dir();
    size_t n = 0;
    char **names = tu_vector_cases(&n);
    for (size_t i = 0; i < n; i++)
        bm_free(names[i]);
    bm_free(names);
    if (n < TU_SIGV4_MIN_CASES)
        fail_msg("SigV4 suite at %s: %zu cases, want at least %d", root, n, TU_SIGV4_MIN_CASES);
    int matched = 0, required = 0;
    for (size_t i = 0; i < sizeof must_match / sizeof must_match[0]; i++) {
        char why[600] = "";
        int r = run_case(root, must_match[i], why, sizeof why);
        if (r != 1)
            fail_msg("%s: libcurl's signature differs from the suite's (%s)", must_match[i], why);
        matched += r == 1;
        required++;
    }
    print_message("# %d/%d SigV4 suite cases signed by libcurl as bmas builds them\n", matched,
                  required);
    for (size_t i = 0; i < sizeof known_different / sizeof known_different[0]; i++) {
        char why[600] = "";
        int r = run_case(root, known_different[i], why, sizeof why);
        print_message("# %s (not a bmas shape): %s\n", known_different[i],
                      r == 1 ? "matches" : "differs, as documented");
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_vectors)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
