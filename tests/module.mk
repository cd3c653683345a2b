# tests/: one cmocka binary per tests/unit/test_<mod>_<unit>.c, linked to that module's
# library and the ones it depends on (server -> storage -> core, emulator -> core).

UNIT_SRCS := $(filter-out $(UNIT_EXCLUDE),$(wildcard tests/unit/test_*.c))
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRCS))
LIBS_core     := $(B)/libbm_core.a
LIBS_storage  := $(B)/libbm_storage.a $(LIBS_core)
LIBS_server   := $(B)/libbm_server.a $(LIBS_storage)
LIBS_emu      := $(B)/libbm_emu.a $(LIBS_core)

define unit_rule
$(filter $(B)/tests/test_$(1)_%,$(UNIT_BINS)): $(B)/tests/test_$(1)_%: $(B)/tests/unit/test_$(1)_%.o $(LIBS_$(1))
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  LD      $$@")
	$$(Q)$$(CC) $$(ALL_LDFLAGS) $$^ $$(PKG_LIBS) $$(CMOCKA_LIBS) -o $$@
endef
$(foreach m,core storage server emu,$(eval $(call unit_rule,$(m))))

# Test tooling built with each variant's binaries: the corpus generator that writes log
# objects and their expected totals for test_corpus.sh and test_wire_moto.sh.
TOOL_BINS := $(B)/tests/tools/gen_corpus
$(B)/tests/tools/gen_corpus: $(B)/tests/tools/gen_corpus.o
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) $^ -lz -o $@
tools: deps $(TOOL_BINS)

$(B)/stamp-all: $(BINS) $(TOOL_BINS)
	@touch $@

unit: deps $(UNIT_BINS) $(BINS)
	@tests/tools/run-unit.sh $(B)/tests

# Everything one variant needs to be tested: binaries, unit tests, test tools.
test-bins: deps $(UNIT_BINS) $(BINS) $(TOOL_BINS)

# ASan+UBSan: the unit tests, then the integration tests against the sanitized binaries (a
# leak or an error makes a binary exit non-zero, which the tests check on shutdown).
asan:
	@$(MAKE) --no-print-directory -j$(NPROC) VARIANT=asan test-bins build/asan/stamp-all
	@tests/tools/run-unit.sh build/asan/tests
	@ASAN_OPTIONS=detect_leaks=1 tests/tools/run-itest.sh build/asan/bin

# The integration scripts `make test` runs against the ASan+UBSan binaries: every script of the
# service (bmas's request, ingest, storage and publishing paths, where a sanitizer finding
# matters most), the backfill CLI, and the wire tests of bmas's own AWS clients. The others
# (the emulator's own tests, the README commands, the docs) run against the release binaries,
# the ones `make run` and users start. Each check runs once; `make test-full` runs every check
# against both builds.
ASAN_ITEST := $(sort $(basename $(notdir $(wildcard tests/integration/test_service_*.sh \
                tests/integration/test_wire_*.sh))) test_ingest_cli test_ingest_engines test_corpus)

itest: all
	@tests/tools/run-itest.sh $(BINDIR)

# What CI runs (.ci/run): lint; both builds at once per variant (-j: one job per CPU); the unit
# tests under ASan+UBSan, and the ingest tests again on the zlib-only build (no ISA-L: the
# fallback when libisal is absent at build time); then the integration suite in one parallel
# run, each script against the build named above.
test: deps
	@tests/tools/lint.sh
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@$(MAKE) --no-print-directory -j$(NPROC) VARIANT=asan test-bins build/asan/stamp-all
	@$(MAKE) --no-print-directory -j$(NPROC) VARIANT=zlib build/zlib/tests/test_core_ingest
	@tests/tools/run-unit.sh build/asan/tests
	@tests/tools/run-unit.sh build/zlib/tests
	@ASAN_OPTIONS=detect_leaks=1 ITEST_ASAN="$(ASAN_ITEST)" ITEST_ASAN_BINDIR=build/asan/bin \
	    tests/tools/run-itest.sh $(BINDIR)

test-full: deps
	@tests/tools/lint.sh
	@$(MAKE) --no-print-directory -j$(NPROC) test-bins
	@tests/tools/run-unit.sh $(B)/tests
	@tests/tools/run-itest.sh $(BINDIR)
	@$(MAKE) --no-print-directory asan

bench: all
	@tests/tools/deps.sh --bench
	@tests/bench/run.sh $(BINDIR)

lint:
	@tests/tools/lint.sh

# Single-line mutations of core logic (tests/mutants/mutants.txt), each of which the tests must
# notice. Not part of `make test`: it rebuilds once per mutant.
mutants: deps
	@tests/tools/mutants.sh

# The README's first command: bmas with the emulator as AWS and sample logs flowing.
run: all
	@tests/tools/run-local.sh $(BINDIR)

# The same with two bmas on a throw-away PostgreSQL server (several instances, one store).
run-pg: all
	@RUN_PG=1 tests/tools/run-local.sh $(BINDIR)

# make run keeps its state (database, emulator data, the generator's totals) in RUN_DIR across
# runs; this starts the next one fresh.
RUN_DIR ?= build/run
run-reset:
	@if [ -s $(RUN_DIR)/run.pid ] && kill -0 "$$(cat $(RUN_DIR)/run.pid)" 2>/dev/null; then \
	    echo "make run is running on $(RUN_DIR) (pid $$(cat $(RUN_DIR)/run.pid)): stop it with Ctrl-C first" >&2; \
	    exit 1; fi
	rm -rf $(RUN_DIR)

# libFuzzer targets: tests/fuzz/fuzz_<target>.c, corpora in tests/fuzz/corpus/<target>/.
# `make fuzz` runs each for FUZZ_SECONDS (default 60); crashes land in build/fuzz/.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRCS))
$(B)/fuzz/fuzz_%: $(B)/tests/fuzz/fuzz_%.o $(LIBS_core)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -o $@
# The /aggregates parameters live in storage (bm_db_query_parse, query_plan.c).
$(B)/fuzz/fuzz_aggquery: $(B)/tests/fuzz/fuzz_aggquery.o $(LIBS_storage)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -o $@
fuzz-build: deps $(FUZZ_BINS)
fuzz:
	@$(MAKE) --no-print-directory VARIANT=fuzz fuzz-build
	@for f in build/fuzz/fuzz/fuzz_*; do \
	    t=$$(basename $$f | sed 's/^fuzz_//'); mkdir -p build/fuzz/corpus-$$t; \
	    $$f -max_total_time=$${FUZZ_SECONDS:-60} -artifact_prefix=build/fuzz/ \
	        build/fuzz/corpus-$$t tests/fuzz/corpus/$$t || exit 1; done
