# storage/: libbm_storage.a, the only caller of sqlite3_* and of libpq (docs/style.md G1).
# libpq (Debian libpq-dev) backs the PostgreSQL store that BMAS_DB=postgres://... selects.
STORAGE_SRCS := $(wildcard storage/*.c)
PKGS += libpq
$(eval $(call lib_rule,storage,$(STORAGE_SRCS)))
