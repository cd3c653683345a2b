# storage/: libbm_storage.a, the only caller of sqlite3_* (docs/style.md G1).
STORAGE_SRCS := $(wildcard storage/*.c)
$(eval $(call lib_rule,storage,$(STORAGE_SRCS)))
