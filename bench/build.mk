# bench/ — `make bench-kv`: kvnode vs Redis vs canonical raft, side by side.
#
# Nothing here is part of `make`, `make test` or `build-tests`: the
# programs are built only by `make bench-kv` (canonical raft's harness
# needs Debian's libraft-dev and libuv1-dev, which the build does not
# otherwise require).  bench/bench_kv.py runs the comparison; QUICK=1
# makes it short; docs/benchmarks.md explains the table.
#
#   bench/floor.c        one loopback round trip + one fdatasync
#   bench/repl_floor.c   "floor3": 3 processes, a batch durable on the
#                        leader + 1 follower before +OK, no Raft at all
#   bench/seshat_node.c  engine + WAL + TCP, W proposals in flight
#   bench/craft_kv.c     canonical raft with a tiny RESP front end
#   bench/kv_prefetch.c  `make bench-kvmap`: the fsm's prefetch hint, cold map
#
# `make bench-scale`: the idle cost of many Raft groups per process
# (bench/bench_scale.py drives three bench/scale_node processes; QUICK=1,
# SCALE_GROUPS, WINDOW, FRAMES=1, STORAGE=mem|wal; docs/benchmarks.md
# "Multi-group scale").

BENCH_DIR = $(BUILD)/bench

# repl_floor's RESP parser takes bytes from the network: fuzz it with the
# library's targets (`make fuzz`).
FUZZ_SRCS += bench/fuzz_repl_floor.c
CRAFT_OK := $(shell pkg-config --exists raft libuv 2>/dev/null && echo 1 || echo 0)

$(BENCH_DIR)/floor: bench/floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -o $@ $< -lpthread

$(BENCH_DIR)/repl_floor: bench/repl_floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -o $@ $< -lpthread

$(BENCH_DIR)/seshat_node: bench/seshat_node.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -o $@ $< $(STATIC) $(LDLIBS_ALL) $(URING_LIBS)

# canonical raft's headers are not -Wstrict-prototypes clean.
$(BENCH_DIR)/craft_kv: bench/craft_kv.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Wno-strict-prototypes $(shell pkg-config --cflags raft libuv) \
		-o $@ $< $(shell pkg-config --libs raft libuv)

BENCH_KV_BINS = $(BENCH_DIR)/floor $(BENCH_DIR)/repl_floor \
	$(BENCH_DIR)/seshat_node $(KVNODE_BIN)
ifeq ($(CRAFT_OK),1)
BENCH_KV_BINS += $(BENCH_DIR)/craft_kv
endif

bench-kv: $(BENCH_KV_BINS)
	@BUILD=$(BUILD) QUICK=$(QUICK) python3 bench/bench_kv.py

$(BENCH_DIR)/scale_node: bench/scale_node.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -o $@ $< $(STATIC) $(LDLIBS_ALL) $(URING_LIBS)

bench-scale: $(BENCH_DIR)/scale_node
	@BUILD=$(BUILD) QUICK=$(QUICK) python3 bench/bench_scale.py

# `make bench-kvmap`: kvnode applying runs of SETs to a map that is not in
# the cache, with and without the state machine's prefetch hint
# (bench/kv_prefetch.c; docs/benchmarks.md "Prefetching a run of entries").
$(BENCH_DIR)/kv_prefetch: bench/kv_prefetch.c $(KVNODE_LIBOBJS) $(STATIC) \
		$(KVNODE_DIR)/kvnode.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -I$(KVNODE_DIR) -o $@ $< $(KVNODE_LIBOBJS) \
		$(STATIC) $(LDLIBS_ALL) $(URING_LIBS)

bench-kvmap: $(BENCH_DIR)/kv_prefetch
	nice $(BENCH_DIR)/kv_prefetch

.PHONY: bench-kv bench-scale bench-kvmap
