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
WAL_TESTS = test_wal
TESTS    += $(patsubst %,$(WAL_OUT)/%,$(WAL_TESTS))
WAL_DEPS  = $(STATIC) test/testlib.h test/wal/walt.h $(wildcard backends/wal/*.h)

$(WAL_OUT)/%: test/wal/%.c $(WAL_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Ibackends/wal -o $@ $< $(TEST_LIBS)
