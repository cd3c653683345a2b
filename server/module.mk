# server/: libbm_server.a (routes, commands) and bin/bmas (main.c only).
SERVER_SRCS := $(filter-out server/main.c,$(wildcard server/*.c))

# GET /dashboard's page: uPlot from npm (npm ci from the committed lockfile, so a clean clone
# gets exactly that version) and server/dashboard/ become one C array (gen.js), built into bmas.
WEBDASH_UPLOT := server/dashboard/node_modules/uplot/dist/uPlot.iife.min.js
WEBDASH_SRCS  := $(wildcard server/dashboard/*.html server/dashboard/*.js server/dashboard/*.css)
$(WEBDASH_UPLOT): server/dashboard/package-lock.json | build/.deps
	@$(if $(Q),echo "  NPM     server/dashboard")
	$(Q)cd server/dashboard && npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@
build/gen/webdash_page.c: $(WEBDASH_SRCS) $(WEBDASH_UPLOT)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)node server/dashboard/gen.js server/dashboard $@
SERVER_SRCS += build/gen/webdash_page.c

$(eval $(call lib_rule,server,$(SERVER_SRCS)))
BINS += $(BINDIR)/bmas
$(BINDIR)/bmas: $(B)/server/main.o $(B)/libbm_server.a $(B)/libbm_storage.a $(B)/libbm_core.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -o $@
