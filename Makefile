# bmas: one non-recursive Makefile; each folder adds its sources in its module.mk (docs/style.md G7).
# Variants build into build/<variant>/ and never share objects: rel (the default, -O2) and asan.

VARIANT ?= rel
B       := build/$(VARIANT)
PKGS    := libmicrohttpd libcurl libcjson zlib sqlite3 libcrypto
CC      ?= cc

# ISA-L's inflate when libisal is installed (deps.sh installs it), else zlib alone; the zlib
# variant is built without it on purpose, to test that fallback build.
ISAL_PKG = $(if $(filter zlib,$(VARIANT)),,$(shell pkg-config --exists libisal 2>/dev/null && echo libisal))

# pkg-config runs only once the deps step has installed the packages it asks about.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) $(ISAL_PKG) cmocka 2>/dev/null) $(if $(ISAL_PKG),-DBM_HAVE_ISAL)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) $(ISAL_PKG) 2>/dev/null) -lm
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wvla -Werror=switch
BASE_CFLAGS = -DBM_VERSION=\"$(VERSION)\" -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -MMD -MP $(WARN) -I.
SAN     := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

ifeq ($(VARIANT),asan)
  OPT := $(SAN)
  LDSAN := -fsanitize=address,undefined
else ifeq ($(VARIANT),fuzz)
  CC := clang
  OPT := -O1 -gdwarf-4 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
  LDSAN := -fsanitize=fuzzer,address,undefined
else
  OPT := -O2
  LDSAN :=
endif
ALL_CFLAGS  = $(BASE_CFLAGS) $(OPT) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(LDSAN) $(LDFLAGS) -pthread

# Release builds go to bin/ (what users run); other variants keep their binaries in build/<v>/bin.
ifeq ($(VARIANT),rel)
  BINDIR := bin
else
  BINDIR := $(B)/bin
endif
BINS :=

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
# Parallel builds inside `make test` and friends, whatever flags make was called with.
NPROC   := $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps test test-full unit itest asan bench clean lint run run-pg run-reset help fuzz fuzz-build mutants tools test-bins
all: deps $(B)/stamp-all

help:
	@echo "make          build bin/bmas and bin/bmas-emulator"
	@echo "make run      start the emulator and bmas with sample logs flowing (see README)"
	@echo "make run-reset  forget make run's state (build/run: the database, the emulator's data)"
	@echo "make run-pg   the same with two bmas on a throw-away PostgreSQL server (several instances)"
	@echo "make test     lint, unit tests under ASan/UBSan, every integration script once (CI)"
	@echo "make test-full  every unit and integration test against both release and ASan builds"
	@echo "make asan     ASan+UBSan build running the unit tests"
	@echo "make bench    throughput and latency benchmarks (not a test)"
	@echo "make lint     clang-format check and banned-function grep"
	@echo "make mutants  single-line mutations of core logic that the tests must all kill"
	@echo "make fuzz     libFuzzer targets for FUZZ_SECONDS each (default 60)"

# The deps step is a stamp so a clean clone installs once and later builds skip apt entirely.
deps: build/.deps
build/.deps: tests/tools/deps.sh
	@tests/tools/deps.sh
	@mkdir -p build && touch $@

# Quiet by default; `make V=1` shows whole command lines.
Q := $(if $(V),,@)

# Static library per module: $(eval $(call lib_rule,name,sources))
define lib_rule
$(B)/libbm_$(1).a: $(patsubst %.c,$(B)/%.o,$(2))
	@mkdir -p $$(dir $$@)
	@rm -f $$@
	@$(if $(Q),echo "  AR      $$@")
	$(Q)ar rcs $$@ $$^
endef

# Each module.mk adds its library (lib_rule) and appends its binaries to BINS.
include core/module.mk
-include storage/module.mk
-include server/module.mk
-include emulator/module.mk
include tests/module.mk

$(B)/%.o: %.c | build/.deps
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

-include $(shell find build -name '*.d' 2>/dev/null)

clean:
	rm -rf build bin
