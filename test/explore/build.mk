# test/explore — the bounded exhaustive explorer (docs/explorer.md).
#
#   build/test/explore/explore     make explore [EXPLORE_SECONDS=s]
#
# It runs the real engine on the simulator's harness (test/sim), so it
# links the same harness files.  Not part of `make test`: its budget is
# set by the caller (CI runs `make explore EXPLORE_SECONDS=120`).

EXPLORE_OUT = $(BUILD)/test/explore
EXPLORE_SECONDS ?= 60

$(EXPLORE_OUT)/explore: test/explore/explore.c $(SIM_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Itest/sim -o $@ $< $(SIM_HARNESS) $(TEST_LIBS)

build-tests: $(EXPLORE_OUT)/explore
