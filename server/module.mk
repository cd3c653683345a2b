# server/: libbm_server.a (routes, commands) and bin/bmas (main.c only).
SERVER_SRCS := $(filter-out server/main.c,$(wildcard server/*.c))
$(eval $(call lib_rule,server,$(SERVER_SRCS)))
BINS += $(BINDIR)/bmas
$(BINDIR)/bmas: $(B)/server/main.o $(B)/libbm_server.a $(B)/libbm_storage.a $(B)/libbm_core.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -o $@
