# Unit tests of the engine: test/unit/test_*.c, one binary each.
UNIT_SRCS = $(wildcard test/unit/test_*.c)
UNIT_BINS = $(patsubst test/unit/%.c,$(BUILD)/test/unit/%,$(UNIT_SRCS))
TESTS += $(UNIT_BINS)

$(BUILD)/test/unit/%: test/unit/%.c $(STATIC) test/testlib.h $(wildcard test/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS)

# The engine under arbitrary peer behaviour (libFuzzer; `make fuzz`).
FUZZ_SRCS += test/unit/fuzz_engine.c
