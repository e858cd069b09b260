# examples/embed — a one-node cluster on the in-memory store (embed.c).
# Built only once the engine and the memory store are in the tree.

ifeq ($(words $(wildcard lib/node.c backends/mem/mem.c)),2)
EXAMPLES += $(BUILD)/examples/embed

$(BUILD)/examples/embed: examples/embed/embed.c $(STATIC) \
		$(wildcard include/seshat/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -o $@ $< $(STATIC) $(LDLIBS_ALL) $(URING_LIBS)
endif
