# emulator/: libbm_emu.a from every emulator/*.c but main.c, and the bmas-emulator binary
# (docs/style.md G1: emulator -> core).
EMU_SRCS := $(filter-out emulator/main.c,$(wildcard emulator/*.c))
$(eval $(call lib_rule,emu,$(EMU_SRCS)))

BINS += $(BINDIR)/bmas-emulator
$(BINDIR)/bmas-emulator: $(B)/emulator/main.o $(B)/libbm_emu.a $(B)/libbm_core.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -o $@
