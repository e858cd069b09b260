# test/tcp — the wire codec, the event loop and the TCP transport.
#
#   test_codec        codec round trips, golden frames, hostile input
#   test_codec_batch  batch frames: round trips, golden batch, malformed
#   test_codec_coalesce  coalesced heartbeats and answers: round trips,
#                     golden frames, malformed
#   test_loop         the epoll loop: watchers, timers, deferred calls
#   test_tcp          live transports on loopback: hostile peers,
#                     reconnects, partitions, bounds, both loop modes
#   test_tcp_cluster  3 engines over real TCP elect a leader and commit
#                     (built only when the engine and the memory store
#                     exist)
#   test_tcp_batch    batch frames between live transports: one frame for
#                     many groups, limits, a peer without batching, auth,
#                     hostile batches
#   test_tcp_coalesce coalesced heartbeats and answers between live
#                     transports: one message for many groups, order
#                     kept, limits, a peer without it, auth, hostile
#   test_sha256       SHA-256 / HMAC-SHA-256 against FIPS 180-4, RFC 4231
#   test_tcp_auth     the authenticated handshake: success, every refusal
#   bench_tcp         `make bench`: throughput between two transports
#   fuzz_codec.c      `make fuzz`: libFuzzer target for the decoder
#   fuzz_auth.c       `make fuzz`: the handshake decoders
TCP_TEST_NAMES = test_codec test_codec_batch test_codec_coalesce test_loop test_tcp test_tcp_hostile test_tcp_batch test_tcp_coalesce test_sha256 \
		 test_tcp_auth
ifneq ($(wildcard lib/node.c),)
ifneq ($(wildcard backends/mem/mem.c),)
TCP_TEST_NAMES += test_tcp_cluster
endif
endif
TESTS     += $(patsubst %,$(BUILD)/test/tcp/%,$(TCP_TEST_NAMES))
BENCHES   += $(BUILD)/test/tcp/bench_tcp
FUZZ_SRCS += test/tcp/fuzz_codec.c test/tcp/fuzz_auth.c

$(BUILD)/test/tcp/%: test/tcp/%.c $(STATIC) test/testlib.h $(wildcard test/tcp/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS)

# The archive keeps the transport's internal names local: the tests that
# call SHA-256 and the handshake codec directly link those objects (pure
# functions of bytes) ahead of it.
TCP_SHA_OBJ  = $(BUILD)/obj/backends/tcp/sha256.o
TCP_WIRE_OBJ = $(BUILD)/obj/backends/tcp/tcp_auth_wire.o
$(BUILD)/test/tcp/test_sha256: TCP_OWN_OBJS = $(TCP_SHA_OBJ)
$(BUILD)/test/tcp/test_tcp_auth: TCP_OWN_OBJS = $(TCP_WIRE_OBJ) $(TCP_SHA_OBJ)
$(BUILD)/test/tcp/test_sha256 $(BUILD)/test/tcp/test_tcp_auth: $(BUILD)/test/tcp/%: test/tcp/%.c $(STATIC) $(TCP_WIRE_OBJ) $(TCP_SHA_OBJ) test/testlib.h $(wildcard test/tcp/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TCP_OWN_OBJS) $(TEST_LIBS)
