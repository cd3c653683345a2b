/* fault.c: a test hook that makes SQLite's own allocations fail on demand (sqlite's faultsim
 * idea, with the public SQLITE_CONFIG_MALLOC interface: distro builds lack the test controls),
 * so unit tests can check that every error path returns a clean bm_err and leaks nothing. */
#include "storage/storage_int.h"

static sqlite3_mem_methods real_mem;
static atomic_long countdown = -1;

static bool fail_now(void)
{
    long n = atomic_load(&countdown);
    if (n < 0)
        return false;
    if (n == 0)
        return true;
    atomic_store(&countdown, n - 1);
    return false;
}

static void *fault_malloc(int n)
{
    return fail_now() ? NULL : real_mem.xMalloc(n);
}

static void *fault_realloc(void *p, int n)
{
    return fail_now() ? NULL : real_mem.xRealloc(p, n);
}

void bm__db_fault_install(void)
{
    sqlite3_mem_methods m;
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem) != SQLITE_OK)
        return;
    m = real_mem;
    m.xMalloc = fault_malloc;
    m.xRealloc = fault_realloc;
    sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
}

void bm__db_fault_after(long n)
{
    atomic_store(&countdown, n);
}
