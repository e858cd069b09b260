# test/sim — the in-memory store's tests, the Raft scenario tests, the
# deterministic simulator and the engine benchmark.
#
#   build/test/sim/mem_test       sr_mem unit tests
#   build/test/sim/paper_test     the Raft paper's rules, scenario by scenario
#   build/test/sim/faults_test    flow control, limits, storage, restarts
#   build/test/sim/churn_test     membership changes, transfers, reads
#   build/test/sim/simulate       random seeds with faults (500 by default)
#   build/test/sim/bench_engine   3 engines in one process (make bench)

SIM_OUT     = $(BUILD)/test/sim
SIM_HARNESS = test/sim/cluster.c test/sim/hooks.c test/sim/check.c \
              test/sim/conf.c test/sim/client.c
SIM_DEPS    = $(SIM_HARNESS) test/sim/cluster.h test/testlib.h \
              $(wildcard include/seshat/*.h) $(STATIC)

$(SIM_OUT)/mem_test: test/sim/mem_test.c test/testlib.h $(wildcard include/seshat/*.h) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS)

$(SIM_OUT)/paper_test $(SIM_OUT)/faults_test $(SIM_OUT)/churn_test \
$(SIM_OUT)/simulate: $(SIM_OUT)/%: test/sim/%.c $(SIM_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(SIM_HARNESS) $(TEST_LIBS)

$(SIM_OUT)/bench_engine: test/sim/bench_engine.c $(wildcard include/seshat/*.h) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS)

TESTS   += $(SIM_OUT)/mem_test $(SIM_OUT)/paper_test $(SIM_OUT)/faults_test \
           $(SIM_OUT)/churn_test $(SIM_OUT)/simulate
BENCHES += $(SIM_OUT)/bench_engine
