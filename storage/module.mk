# storage/: libbm_storage.a, the only caller of sqlite3_* and of libpq (docs/style.md G1).
STORAGE_SRCS := $(wildcard storage/*.c)
$(eval $(call lib_rule,storage,$(STORAGE_SRCS)))
# libpq for the PostgreSQL store (storage/pg*.c); PKG_CFLAGS and PKG_LIBS read PKGS lazily.
PKGS += libpq
