# test/wal — the WAL's tests, fuzz target and benchmark.
#
#   test_wal           the storage vtable on both engines: appends,
#                      completions, reads, truncation, segments, snapshots,
#                      compaction, hard state, lock, backpressure, hooks
#   test_wal_recovery  on-disk format, torn tails, bit flips, missing
#                      segments, index gaps, the repair option
#   test_wal_crash     a child appends and is SIGKILLed at random moments;
#                      every acknowledged entry must survive
#   test_wal_fault     write/fsync/fallocate failures injected with
#                      -Wl,--wrap (and an io_uring submit shim)
#   bench_wal          `make bench`: appends/s beside the raw disk limits
#                      (SR_WAL_BENCH_OPEN=1 adds the 1 GiB open benchmark)
#   fuzz_wal.c         `make fuzz`: segment decoder and recovery
WAL_OUT   = $(BUILD)/test/wal
WAL_TESTS = test_wal test_wal_recovery test_wal_crash
TESTS    += $(patsubst %,$(WAL_OUT)/%,$(WAL_TESTS))
WAL_DEPS  = $(STATIC) test/testlib.h test/wal/walt.h $(wildcard backends/wal/*.h)

$(WAL_OUT)/%: test/wal/%.c $(WAL_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Ibackends/wal -o $@ $< $(TEST_LIBS)

# The fault-injection binary: the WAL's system calls go through the shim
# in test_wal_fault.c (and io_uring_submit, when the engine is built).
WAL_WRAP       = -Wl,--wrap=pwrite -Wl,--wrap=fdatasync -Wl,--wrap=fallocate \
                 -Wl,--wrap=fsync
WAL_WRAP_URING = -Wl,--wrap=io_uring_submit
TESTS += $(WAL_OUT)/test_wal_fault

$(WAL_OUT)/test_wal_fault: test/wal/test_wal_fault.c $(WAL_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Ibackends/wal -o $@ $< $(WAL_WRAP) \
		$(if $(filter 1,$(URING)),$(WAL_WRAP_URING)) $(TEST_LIBS)
FUZZ_SRCS += test/wal/fuzz_wal.c

BENCHES += $(WAL_OUT)/bench_wal
