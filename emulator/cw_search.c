/* cw_search.c: the SEARCH expressions of GetMetricData, the subset dashboards use:
 *
 *   SEARCH('{Namespace,Dim1,Dim2} MetricName="InputTokens" Dim1="v"', 'Sum', 300)
 *
 * The braces give a schema: the namespace and exactly the dimension names a metric must have.
 * Each term after them is Key="value" (or Key=value) that must hold exactly: MetricName, or a
 * dimension of the schema; all terms hold at once. Names in the schema may be double-quoted.
 * Anything richer (partial words, OR, NOT, parentheses) is refused by name, so a test never
 * mistakes an unsupported search for an empty one. */
#include "emulator/emu_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* A name or value up to one of stop (or a double-quoted one), into out; NULL when empty,
 * too long or an unterminated quote. */
static const char *token(const char *p, const char *stop, char *out, size_t cap)
{
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p != '"'; p++) {
            if (*p == '\0' || n + 1 >= cap)
                return NULL;
            out[n++] = *p;
        }
        p++;
    } else {
        for (; *p != '\0' && strchr(stop, *p) == NULL; p++) {
            if (n + 1 >= cap)
                return NULL;
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return n > 0 ? p : NULL;
}

static bool fail(char *err, size_t cap, const char *why)
{
    snprintf(err, cap, "%s", why);
    return false;
}

bool bm__emu_cw_search_parse(const char *expr, struct emu_search *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    const char *p = skip_ws(expr);
    if (strncmp(p, "SEARCH(", 7) != 0)
        return fail(err, cap, "bmas-emulator evaluates SEARCH expressions only, not metric math.");
    p = skip_ws(p + 7);
    if (*p++ != '\'')
        return fail(err, cap, "SEARCH's first argument is a quoted search expression.");
    p = skip_ws(p);
    if (*p++ != '{')
        return fail(err, cap, "bmas-emulator needs a {Namespace,Dimension...} schema in SEARCH.");
    if ((p = token(skip_ws(p), ",}'", out->ns, sizeof out->ns)) == NULL)
        return fail(err, cap, "SEARCH's schema needs a namespace.");
    for (p = skip_ws(p); *p == ','; p = skip_ws(p)) {
        if (out->nd == EMU_SEARCH_MAX)
            return fail(err, cap, "SEARCH's schema names too many dimensions.");
        if ((p = token(skip_ws(p + 1), ",}' ", out->dims[out->nd++], EMU_SEARCH_LEN)) == NULL)
            return fail(err, cap, "SEARCH's schema has an empty dimension name.");
    }
    if (*p++ != '}')
        return fail(err, cap, "SEARCH's schema is not closed with }.");
    for (p = skip_ws(p); *p != '\'' && *p != '\0'; p = skip_ws(p)) {
        if (out->nt == EMU_SEARCH_MAX)
            return fail(err, cap, "SEARCH has too many terms for bmas-emulator.");
        struct emu_search_term *t = &out->terms[out->nt++];
        if ((p = token(p, "=' ", t->k, sizeof t->k)) == NULL || *p++ != '=' ||
            (p = token(p, "' ", t->v, sizeof t->v)) == NULL)
            return fail(err, cap,
                        "bmas-emulator's SEARCH takes only Key=\"value\" terms (MetricName or a "
                        "schema dimension): no partial words, OR, NOT or parentheses.");
        bool known = strcmp(t->k, "MetricName") == 0;
        for (size_t i = 0; i < out->nd && !known; i++)
            known = strcmp(t->k, out->dims[i]) == 0;
        if (!known)
            return fail(err, cap,
                        "A SEARCH term names neither MetricName nor a dimension of "
                        "the schema.");
    }
    if (*p++ != '\'')
        return fail(err, cap, "SEARCH's search expression is not closed with '.");
    p = skip_ws(p);
    if (*p++ != ',' || *(p = skip_ws(p)) != '\'' ||
        (p = token(p + 1, "'", out->stat, sizeof out->stat)) == NULL || *p++ != '\'')
        return fail(err, cap, "SEARCH's second argument is a quoted statistic.");
    p = skip_ws(p);
    char *end = NULL;
    if (*p++ != ',' || (out->period = strtol(skip_ws(p), &end, 10)) <= 0 || *skip_ws(end) != ')' ||
        *skip_ws(skip_ws(end) + 1) != '\0')
        return fail(err, cap, "SEARCH's third argument is a period in seconds, then ).");
    return true;
}

bool bm__emu_cw_search_match(const struct emu_search *q, const struct emu_series *s)
{
    if (strcmp(s->ns, q->ns) != 0 || s->n_dims != q->nd)
        return false;
    for (size_t i = 0; i < q->nd; i++) {
        bool has = false;
        for (size_t k = 0; k < s->n_dims && !has; k++)
            has = strcmp(s->dims[k].k, q->dims[i]) == 0;
        if (!has)
            return false;
    }
    for (size_t i = 0; i < q->nt; i++) {
        const struct emu_search_term *t = &q->terms[i];
        bool ok = false;
        if (strcmp(t->k, "MetricName") == 0)
            ok = strcmp(s->name, t->v) == 0;
        for (size_t k = 0; k < s->n_dims && !ok; k++)
            ok = strcmp(s->dims[k].k, t->k) == 0 && strcmp(s->dims[k].v, t->v) == 0;
        if (!ok)
            return false;
    }
    return true;
}
