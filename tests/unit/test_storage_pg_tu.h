/* test_storage_pg_tu.h: helpers of the PostgreSQL store's unit tests: the server (PG_URL, or
 * one started for the run by tests/tools/pg-lib.sh), a schema per test, raw SQL beside the
 * code under test. */
#ifndef BM_TEST_STORAGE_PG_TU_H
#define BM_TEST_STORAGE_PG_TU_H

#include "test_storage_tu.h"

#include "storage/pg_int.h"

#include <pthread.h>

static inline const char *pg_url(void)
{
    const char *u = getenv("PG_URL");
    if (u == NULL || u[0] == '\0')
        fail_msg("PG_URL is not set");
    return u;
}

/* PG_URL with search_path set to schema: each test's tables apart from the others'. */
static inline void schema_url(const char *schema, char *out, size_t cap)
{
    const char *u = pg_url();
    snprintf(out, cap, "%s%soptions=-csearch_path%%3D%s", u, strchr(u, '?') ? "&" : "?", schema);
}

/* Runs sql (several statements allowed) in schema on a private connection; returns the first
 * column of the first row as an integer (0 when there is none or it is NULL). */
static inline int64_t q_int(const char *schema, const char *sql)
{
    char url[512];
    schema_url(schema, url, sizeof url);
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning")); /* no NOTICE on stderr */
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    int64_t v = st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)
                    ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                    : 0;
    PQclear(r);
    PQfinish(c);
    return v;
}

/* A fresh schema and a pool on it, migrated when migrate is set. */
static inline struct bm_pg *fresh(const char *schema, int max_conn, bool migrate)
{
    char url[512], sql[256];
    struct bm_errmsg em = {{0}};
    struct bm_pg *pg = NULL;
    struct bm_pg_options opt = {.max_connections = max_conn};
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
    q_int("public", sql);
    schema_url(schema, url, sizeof url);
    if (bm__pg_open(url, &opt, &pg, &em) != BM_OK)
        fail_msg("bm__pg_open: %s", em.text);
    if (migrate && bm__pg_migrate(pg, bm__pg_schema_version(), &em) != BM_OK)
        fail_msg("migrate: %s", em.text);
    return pg;
}

/* The URL's password, to check that no message shows it. */
static inline void url_password(char *out, size_t cap)
{
    PQconninfoOption *o = PQconninfoParse(pg_url(), NULL);
    assert_non_null(o);
    out[0] = '\0';
    for (PQconninfoOption *p = o; p->keyword != NULL; p++)
        if (strcmp(p->keyword, "password") == 0 && p->val != NULL)
            snprintf(out, cap, "%s", p->val);
    PQconninfoFree(o);
    assert_true(strlen(out) >= 8);
}

/* Runs sql on the server's maintenance database "postgres" (PG_URL's credentials): what
 * must not run inside the database it changes, and what must still run while that database
 * refuses connections. */
static inline void admin(const char *sql)
{
    const char *const keys[] = {"dbname", "dbname", NULL};
    const char *const vals[] = {pg_url(), "postgres", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect to postgres: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

/* Without PG_URL, runs this binary again under tests/tools/pg-lib.sh run (found from the test
 * data folder run-unit.sh exports, or from the repository root), which starts a server and
 * sets it. Not a skip: when the server cannot start, the binary fails with pg-lib.sh's
 * message. Returns only when PG_URL is set. */
static inline void pg_need_server(char **argv)
{
    if (getenv("PG_URL") != NULL && getenv("PG_URL")[0] != '\0')
        return;
    char lib[1024];
    const char *data = getenv("BM_TEST_DATA");
    snprintf(lib, sizeof lib, "%s/../tools/pg-lib.sh", data ? data : "tests/data");
    fprintf(stderr, "# PG_URL not set: starting a server with %s\n", lib);
    execl("/bin/bash", "bash", lib, "run", argv[0], (char *)NULL);
    fprintf(stderr, "%s: PG_URL is not set and %s cannot run\n", argv[0], lib);
    exit(1);
}

#endif
