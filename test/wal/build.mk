# test/wal — the WAL's tests, fuzz target and benchmark.
#
#   test_wal           the storage vtable on both engines: appends,
#                      completions, reads, truncation, segments, snapshots,
#                      compaction, hard state, lock, backpressure, hooks
#   test_wal_recovery  on-disk format, torn tails, bit flips, missing
#                      segments, index gaps, the repair option
#   test_wal_groups    many Raft groups on one WAL: round trips, drops,
#                      retention, version-1 directories, damage per group
#   test_wal_groups_crash  one batch of several groups lost or torn at
#                      every byte boundary: each group keeps a prefix
#   test_wal_crash     a child appends and is SIGKILLed at random moments;
#                      every acknowledged entry must survive
#   test_wal_fault     write/fsync/fallocate failures injected with
#                      -Wl,--wrap (and an io_uring submit shim)
#   bench_wal          `make bench`: appends/s beside the raw disk limits
#                      (SR_WAL_BENCH_OPEN=1 adds the 1 GiB open benchmark)
#   bench_wal_groups   `make bench`: restart time with many groups
#   bench_wal_snap     `make bench`: snapshot_finish() and the log's
#                      appends beside a snapshot being written
#   fuzz_wal.c         `make fuzz`: segment decoder and recovery
#   fuzz_wal_files.c   `make fuzz`: snapshot header, meta and lost files
WAL_OUT   = $(BUILD)/test/wal
WAL_TESTS = test_wal test_wal_recovery test_wal_crash test_wal_groups \
            test_wal_groups_crash
TESTS    += $(patsubst %,$(WAL_OUT)/%,$(WAL_TESTS))
WAL_DEPS  = $(STATIC) test/testlib.h test/wal/walt.h $(wildcard backends/wal/*.h)
# The archive keeps the WAL's internal names local: tests that build files
# with wal_format.h link the encoder's object themselves.
WAL_FMT_OBJ = $(BUILD)/obj/backends/wal/wal_format.o

$(WAL_OUT)/%: test/wal/%.c $(WAL_DEPS) $(WAL_FMT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Ibackends/wal -o $@ $< $(WAL_FMT_OBJ) $(TEST_LIBS)

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
FUZZ_SRCS += test/wal/fuzz_wal.c test/wal/fuzz_wal_files.c

BENCHES += $(WAL_OUT)/bench_wal $(WAL_OUT)/bench_wal_groups \
           $(WAL_OUT)/bench_wal_snap

# It times the WAL's fsync calls and turns its sync_file_range off and on
# through shims of its own.
$(WAL_OUT)/bench_wal_snap: test/wal/bench_wal_snap.c $(WAL_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< -Wl,--wrap=fsync \
		-Wl,--wrap=sync_file_range $(TEST_LIBS)

# `make tsan`: ThreadSanitizer over the tests where threads share state —
# the WAL's writer thread beside the host's (test/wal) and the CRC32C
# tables both use (test_crc32c) — plus the TCP transport and a
# three-engine cluster on it.  Its own build directory; any race report
# fails the run (TSan exits 66).  CI runs it (.ci/run, step tsan).
TSAN_BUILD ?= build-tsan
TSAN_TESTS  = unit/test_crc32c wal/test_wal wal/test_wal_recovery wal/test_wal_groups \
              wal/test_wal_fault tcp/test_tcp tcp/test_tcp_cluster
TSAN_BINS   = $(patsubst %,$(TSAN_BUILD)/test/%,$(TSAN_TESTS))

tsan:
	$(MAKE) --no-print-directory BUILD=$(TSAN_BUILD) OPT="-O1 -g" \
		SAN="-fsanitize=thread -fno-omit-frame-pointer" $(TSAN_BINS)
	TSAN_OPTIONS="second_deadlock_stack=1 $${TSAN_OPTIONS:-}" \
		TEST_LOGDIR=$(TSAN_BUILD)/test-logs bash test/run-all $(TSAN_BINS)

.PHONY: tsan
