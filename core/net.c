/* net.c: the listen address both binaries take (BMAS_LISTEN, bmas-emulator --listen):
 * "ADDR:PORT", "[v6]:PORT" or ":PORT", numeric addresses plus "localhost". */
#include "core/bm_rt.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

bm_err bm_listen_parse(const char *spec, const char *what, struct sockaddr_storage *out,
                       socklen_t *len, struct bm_errmsg *em)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || (size_t)(colon - spec) >= sizeof host)
        return bm_errmsg_set(em, BM_E_CONFIG, "%s: expected ADDR:PORT, got \"%s\"", what, spec);
    size_t hl = (size_t)(colon - spec);
    memcpy(host, spec, hl);
    host[hl] = '\0';
    char *h = host;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        h = host + 1;
    }
    const char *port = colon + 1;
    char *end = NULL;
    long p = strtol(port, &end, 10);
    if (end == port || *end != '\0' || p < 0 || p > 65535)
        return bm_errmsg_set(em, BM_E_CONFIG, "%s: bad port in \"%s\"", what, spec);
    /* Numeric only (inet_pton, not the resolver), so a typo never turns into a DNS lookup
     * nor an old shorthand like "1.2.3"; an empty host means any IPv4 address. */
    if (strcmp(h, "localhost") == 0)
        h = "127.0.0.1";
    memset(out, 0, sizeof *out);
    struct sockaddr_in *a4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
    if (*h == '\0' || inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)p);
        if (*h == '\0')
            a4->sin_addr.s_addr = htonl(INADDR_ANY);
        *len = sizeof *a4;
    } else if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)p);
        *len = sizeof *a6;
    } else {
        return bm_errmsg_set(em, BM_E_CONFIG, "%s: bad address in \"%s\"", what, spec);
    }
    return BM_OK;
}
