# storage/: libbm_storage.a, the only caller of sqlite3_* and of libpq (docs/style.md G1).
STORAGE_SRCS := $(wildcard storage/*.c)
# libpq for the PostgreSQL store (storage/pg*.c). deps.sh installs libpq-dev wherever bmas is
# built and tested (and test_storage_pg.sh fails without the store's test binaries); a build
# without it, such as the Docker image's build stage, leaves the store out until bmas uses it.
ifeq ($(shell pkg-config --exists libpq 2>/dev/null && echo yes),yes)
PKGS += libpq
else
STORAGE_SRCS := $(filter-out storage/pg%.c,$(STORAGE_SRCS))
UNIT_EXCLUDE += tests/unit/test_storage_pg.c tests/unit/test_storage_pg_commit.c
endif
$(eval $(call lib_rule,storage,$(STORAGE_SRCS)))
