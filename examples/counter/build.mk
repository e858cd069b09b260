# examples/counter — a replicated counter, three processes on
# seshat/server.h (docs/tutorial.md).  test/server/counter.sh runs three
# of them; test/install builds it again against the installed library.
EXAMPLES += $(BUILD)/examples/counter

$(BUILD)/examples/counter: examples/counter/counter.c $(STATIC) \
		$(wildcard include/seshat/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -o $@ $< $(STATIC) $(LDLIBS_ALL) $(URING_LIBS)
