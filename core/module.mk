# core/: libbm_core.a, everything that needs neither MHD nor SQLite (docs/style.md G1).
CORE_SRCS := $(wildcard core/*.c)
$(eval $(call lib_rule,core,$(CORE_SRCS)))
