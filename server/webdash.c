/* webdash.c: GET /dashboard, the browser page built from server/dashboard/ into the binary
 * (build/gen/webdash_page.c). It needs no token itself: the page sends the one it is given to
 * /aggregates and /status, which keep checking it. Revalidated by ETag, locked down by CSP. */
#include "server/srv_int.h"

#include <string.h>

/* True when If-None-Match (RFC 9110 13.1.2: "*" or a list of entity tags, weak ones compared
 * weakly as the GET method allows) names the page's ETag. */
static bool etag_matches(const char *inm)
{
    size_t want = strlen(bm__webdash_etag);
    const char *p = inm;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        const char *end = p;
        while (*end != '\0' && *end != ',' && *end != ' ' && *end != '\t')
            end++;
        if ((size_t)(end - p) == want && memcmp(p, bm__webdash_etag, want) == 0)
            return true;
        p = end;
    }
    return false;
}

void bm__route_webdash(const char *if_none_match, struct bm__reply *r)
{
    /* The CSP allows the page's own inline style and script by hash, and fetches to itself
     * only; no-cache (not no-store) lets a browser keep the page and revalidate it. */
    static const char *const headers[][2] = {
        {"Content-Security-Policy", bm__webdash_csp},
        {"ETag", bm__webdash_etag},
        {"X-Content-Type-Options", "nosniff"},
        {"Referrer-Policy", "no-referrer"},
    };
    r->headers = headers;
    r->n_headers = sizeof headers / sizeof headers[0];
    r->cache_control = "no-cache";
    bm_buf_reset(&r->body);
    if (if_none_match != NULL && etag_matches(if_none_match)) {
        r->status = 304;
        return;
    }
    if (bm_buf_append(&r->body, bm__webdash_page, bm__webdash_page_len) != BM_OK) {
        r->n_headers = 0;
        r->cache_control = NULL;
        bm__reply_error(r, BM_E_NOMEM, "out of memory", NULL);
        return;
    }
    r->status = 200;
    r->content_type = "text/html; charset=utf-8";
}
