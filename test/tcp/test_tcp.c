/*
 * test_tcp.c — the TCP transport between live transports on loopback:
 * delivery of every message type, ordering, write batching, large
 * messages (partial reads and writes), send errors and drops, the bound
 * on a queue to a peer that stops reading, a peer that reads slowly (the
 * queue fills, drains and is compacted; every accepted message arrives
 * intact and in order), reconnect after a restart,
 * partitions by the test hook and healing, address changes, peer removal,
 * corking (nothing written until uncorked)
 * (also from inside on_message), a private loop driven by poll(), and
 * clean shutdown with traffic in flight (every byte allocated through the
 * hooks is returned).
 *
 * Hostile peers are in test_tcp_hostile.c.
 */
#include <poll.h>

#include "harness.h"
#include "testlib.h"

static void loop_open(void)
{
	if (sr_loop_create(NULL, &L))
		abort(); /* the test's own setup */
}

static void loop_close(void)
{
	sr_loop_destroy(L);
	L = NULL;
}

/* Two linked nodes 1 and 2 in cluster 7, connected both ways. */
static void pair_open(struct node *a, struct node *b)
{
	loop_open();
	node_init(a, 1, 7, 0);
	node_init(b, 2, 7, 0);
	if (node_open(a) || node_open(b))
		abort();
	link_nodes(a, b);
}

TEST(test_every_message_type_arrives_intact_and_in_order)
{
	struct node a, b;
	enum { PER_TYPE = 6, N = SR_MSG_TYPE_MAX * PER_TYPE };
	static struct sample_store st[N];
	static sr_msg msgs[N];

	pair_open(&a, &b);
	for (int i = 0; i < N; i++) {
		sample_msg(&msgs[i], 1 + (uint32_t)(i % SR_MSG_TYPE_MAX),
			   (uint64_t)i, &st[i]);
		msgs[i].from = 1;
		msgs[i].to = 2;
	}
	b.expect = msgs;
	b.n_expect = N;
	/* sent at once, while the connection is still being set up */
	for (int i = 0; i < N; i++)
		CHECK_EQ(sr_tcp_send(a.tcp, &msgs[i]), 0);
	RUN_UNTIL(b.got == N, 3000);
	CHECK_EQ(b.got, N);
	CHECK_EQ(b.mismatches, 0);
	sr_tcp_stats sa = node_stats(&a), sb = node_stats(&b);
	CHECK_EQ(sa.msgs_sent, N);
	CHECK_EQ(sb.msgs_recv, N);
	CHECK_EQ(sa.drops, 0);
	CHECK_EQ(sa.bytes_sent, sb.bytes_recv);
	CHECK_EQ(sa.queued_bytes, 0);
	CHECK_EQ(peer_state(&a, 2), SR_TCP_UP);

	/* and the other way */
	sr_msg back = heartbeat(2, 1, 1);
	CHECK_EQ(sr_tcp_send(b.tcp, &back), 0);
	RUN_UNTIL(a.got == 1, 3000);
	CHECK_EQ(a.got, 1);
	sr_tcp_peer_info pi;
	CHECK_EQ(sr_tcp_peer_get(b.tcp, 1, &pi), 0);
	CHECK(pi.inbound);
	pair_close(&a, &b);
	CHECK_EQ(a.ca.live, 0);
	CHECK_EQ(b.ca.live, 0);
}

/* Send n heartbeats in one go and count the write(2) calls. */
static uint64_t writes_for_burst(int write_through, int n)
{
	struct node a, b;
	loop_open();
	node_init(&a, 1, 7, 0);
	node_init(&b, 2, 7, 0);
	a.cfg.write_through = write_through;
	if (node_open(&a) || node_open(&b))
		abort();
	link_nodes(&a, &b);
	sr_msg m = heartbeat(1, 2, 1);
	sr_tcp_send(a.tcp, &m);
	RUN_UNTIL(b.got == 1, 3000);
	uint64_t w0 = node_stats(&a).writes;
	for (int i = 0; i < n; i++) {
		m = heartbeat(1, 2, 2 + (uint64_t)i);
		if (sr_tcp_send(a.tcp, &m))
			return 0;
	}
	RUN_UNTIL(b.got == n + 1, 3000);
	uint64_t w = b.got == n + 1 && !b.out_of_order
			     ? node_stats(&a).writes - w0
			     : 0;
	pair_close(&a, &b);
	return w;
}

TEST(test_a_burst_of_messages_leaves_in_few_writes)
{
	uint64_t batched = writes_for_burst(0, 2000);
	CHECK(batched > 0);
	CHECK(batched <= 20);
	uint64_t direct = writes_for_burst(1, 2000);
	CHECK(direct >= 2000);
}

/* sr_tcp_cork(): nothing reaches the socket until the cork is lifted,
 * whoever tries to write (write-through, the deferred flush, an
 * explicit flush); then everything leaves, in order. */
TEST(test_a_corked_transport_writes_nothing_until_uncorked)
{
	for (int wt = 0; wt <= 1; wt++) {
		struct node a, b;
		loop_open();
		node_init(&a, 1, 7, 0);
		node_init(&b, 2, 7, 0);
		a.cfg.write_through = wt;
		if (node_open(&a) || node_open(&b))
			abort();
		link_nodes(&a, &b);
		sr_msg m = heartbeat(1, 2, 1);
		CHECK_EQ(sr_tcp_send(a.tcp, &m), 0);
		RUN_UNTIL(b.got == 1, 3000);
		CHECK_EQ(b.got, 1);
		uint64_t w0 = node_stats(&a).writes;
		sr_tcp_cork(a.tcp, 1);
		for (int i = 0; i < 50; i++) {
			m = heartbeat(1, 2, 2 + (uint64_t)i);
			CHECK_EQ(sr_tcp_send(a.tcp, &m), 0);
		}
		sr_tcp_flush(a.tcp);
		for (int i = 0; i < 20; i++)
			sr_loop_run_once(L, 5);
		CHECK_EQ(b.got, 1);
		CHECK_EQ(node_stats(&a).writes, w0);
		sr_tcp_cork(a.tcp, 0);
		RUN_UNTIL(b.got == 51, 3000);
		CHECK_EQ(b.got, 51);
		CHECK_EQ(b.out_of_order, 0);
		pair_close(&a, &b);
	}
}

TEST(test_large_messages_cross_intact)
{
	struct node a, b;
	enum { N = 12 };
	size_t big = 3u << 20;
	uint8_t *data = malloc(big);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 7 + (i >> 9));
	sr_entry e[2] = {
		{ .term = 2,
		  .index = 5,
		  .type = SR_ENTRY_NORMAL,
		  .len = 1 << 16 },
		{ .term = 2, .index = 6, .type = SR_ENTRY_NORMAL },
	};
	static sr_msg msgs[N];
	uint32_t lens[N];
	pair_open(&a, &b);
	for (int i = 0; i < N; i++) {
		msgs[i] = heartbeat(1, 2, 1 + (uint64_t)i);
		msgs[i].u.append.entries = e;
		msgs[i].u.append.n_entries = 2;
		lens[i] = (uint32_t)(i == N - 1 ? big - 200
						: 1000u * (uint32_t)i);
	}
	b.expect = msgs;
	b.n_expect = N;
	/* entry pointers are borrowed for the call only: the same e[] is
	 * rewritten for every message (the expected copy sees the same e[]
	 * while that message is in flight) */
	for (int i = 0; i < N; i++) {
		e[0].data = data + i;
		e[1].data = data + 100 + i;
		e[1].len = lens[i];
		CHECK_EQ(sr_tcp_send(a.tcp, &msgs[i]), 0);
		RUN_UNTIL(b.got == i + 1, 5000);
		CHECK_EQ(b.got, i + 1);
	}
	CHECK_EQ(b.bytes, 0 + (size_t)N * 65536 + (big - 200) +
				  1000u * (N - 1) * (N - 2) / 2);
	CHECK_EQ(b.mismatches, 0);
	/* a 3 MiB frame grew B's receive buffer; idle, it shrinks back */
	CHECK(node_stats(&b).buffer_bytes < (2u << 20));
	pair_close(&a, &b);
	free(data);
}

TEST(test_send_errors_are_returned_and_counted)
{
	struct node a, b;
	loop_open();
	node_init(&a, 1, 7, 0);
	a.cfg.max_frame_bytes = 4096;
	a.cfg.max_queue_bytes = 8192;
	CHECK_EQ(node_open(&a), 0);
	node_init(&b, 2, 7, 0);
	CHECK_EQ(node_open(&b), 0);
	link_nodes(&a, &b);

	sr_msg m = heartbeat(1, 9, 1);
	CHECK_EQ(sr_tcp_send(a.tcp, &m), SR_ENOTFOUND);
	m.to = 2;
	sr_entry e = { .term = 1,
		       .index = 1,
		       .type = SR_ENTRY_NORMAL,
		       .len = 5000,
		       .data = malloc(5000) };
	m.u.append.entries = &e;
	m.u.append.n_entries = 1;
	CHECK_EQ(sr_tcp_send(a.tcp, &m), SR_ETOOBIG);
	e.type = 77;
	e.len = 10;
	CHECK_EQ(sr_tcp_send(a.tcp, &m), SR_EINVAL);
	free((void *)e.data);
	sr_tcp_peer_info pi;
	CHECK_EQ(sr_tcp_peer_get(a.tcp, 2, &pi), 0);
	CHECK_EQ(pi.drops, 2);
	CHECK_EQ(node_stats(&a).drops, 3);

	/* configuration and peer errors */
	CHECK_EQ(sr_tcp_set_peer(a.tcp, 1, "127.0.0.1:1"), SR_EINVAL);
	CHECK_EQ(sr_tcp_set_peer(a.tcp, 0, "127.0.0.1:1"), SR_EINVAL);
	CHECK_EQ(sr_tcp_set_peer(a.tcp, 5, "no-port"), SR_EINVAL);
	CHECK_EQ(sr_tcp_set_peer(a.tcp, 5, "host:99999"), SR_EINVAL);
	CHECK_EQ(sr_tcp_set_peer(a.tcp, 5, "[::1:5"), SR_EINVAL);
	CHECK_EQ(sr_tcp_remove_peer(a.tcp, 5), SR_ENOTFOUND);
	CHECK_EQ(sr_tcp_partition(a.tcp, 5, 1), SR_ENOTFOUND);
	sr_tcp_config bad;
	sr_tcp *t;
	sr_tcp_config_init(&bad, 3, 7);
	CHECK_EQ(sr_tcp_create(&bad, &t), SR_EINVAL); /* no on_message */
	bad = a.cfg;
	bad.max_queue_bytes = bad.max_frame_bytes;
	CHECK_EQ(sr_tcp_create(&bad, &t), SR_EINVAL);
	bad = b.cfg;
	bad.listen_addr = b.listen; /* port 0 is fine ... */
	snprintf(b.listen, sizeof(b.listen), "127.0.0.1:%d",
		 sr_tcp_port(b.tcp));
	CHECK_EQ(sr_tcp_create(&bad, &t), SR_EIO); /* ... a taken one is not */
	CHECK(node_logged(&b, "cannot listen"));
	pair_close(&a, &b);
}

TEST(test_a_dead_peer_costs_drops_not_memory)
{
	struct node a;
	char addr[64];
	loop_open();
	node_init(&a, 1, 7, 0);
	a.cfg.reconnect_min_ms = 20;
	a.cfg.reconnect_max_ms = 100;
	CHECK_EQ(node_open(&a), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", dead_port());
	CHECK_EQ(sr_tcp_set_peer(a.tcp, 2, addr), 0);
	sr_tcp_peer_info pi;
	RUN_UNTIL(sr_tcp_peer_get(a.tcp, 2, &pi) == 0 && pi.attempts >= 2,
		  2000);
	CHECK(pi.attempts >= 2);
	CHECK_EQ(pi.state, SR_TCP_DOWN);
	sr_msg m = heartbeat(1, 2, 1);
	CHECK_EQ(sr_tcp_send(a.tcp, &m), SR_ESTATE);
	CHECK_EQ(node_stats(&a).drops_down, 1);
	/* backoff: over 600 ms, with delays doubling from 20 ms up to
	 * 100 ms (jittered to [d/2, d]), a handful of attempts, not hundreds */
	uint32_t before = pi.attempts;
	run_for(600);
	sr_tcp_peer_get(a.tcp, 2, &pi);
	CHECK(pi.attempts - before >= 4);
	CHECK(pi.attempts - before <= 30);
	CHECK(node_logged(&a, "connect"));
	RUN_UNTIL(peer_state(&a, 2) == SR_TCP_DOWN, 1000);
	CHECK(node_stats(&a).buffer_bytes < 1024); /* no queue while down */
	node_close(&a);
	CHECK_EQ(a.ca.live, 0);
	loop_close();
}

TEST(test_queue_to_a_peer_that_never_reads_is_bounded)
{
	struct node a;
	loop_open();
	node_init(&a, 1, 7, 0);
	a.cfg.max_frame_bytes = 128u << 10;
	a.cfg.max_queue_bytes = 1u << 20;
	CHECK_EQ(node_open(&a), 0);
	/* a listener that never accepts: the kernel completes connections
	 * into its backlog, nobody reads */
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK_EQ(listen(lfd, 4), 0);
	getsockname(lfd, (struct sockaddr *)&sa, &len);
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
	sr_tcp_set_peer(a.tcp, 2, addr);
	RUN_UNTIL(peer_state(&a, 2) == SR_TCP_UP, 2000);
	CHECK_EQ(peer_state(&a, 2), SR_TCP_UP);

	uint8_t *data = calloc(1, 64u << 10);
	sr_entry e = { .term = 1,
		       .index = 1,
		       .type = SR_ENTRY_NORMAL,
		       .len = 64u << 10,
		       .data = data };
	int busy = 0;
	size_t peak = 0;
	for (int i = 0; i < 600; i++) {
		sr_msg m = heartbeat(1, 2, (uint64_t)i + 1);
		m.u.append.entries = &e;
		m.u.append.n_entries = 1;
		int rc = sr_tcp_send(a.tcp, &m);
		CHECK(rc == 0 || rc == SR_EBUSY);
		busy += rc == SR_EBUSY;
		sr_loop_run_once(L, 0);
		sr_tcp_peer_info pi;
		sr_tcp_peer_get(a.tcp, 2, &pi);
		CHECK(pi.queued_bytes <= a.cfg.max_queue_bytes);
		if (a.ca.live > peak)
			peak = a.ca.live;
	}
	CHECK(busy > 0);
	sr_tcp_stats st = node_stats(&a);
	CHECK_EQ(st.drops_full, (uint64_t)busy);
	CHECK(peak < a.cfg.max_queue_bytes + (512u << 10));
	free(data);
	node_close(&a);
	close(lfd);
	CHECK_EQ(a.ca.live, 0);
	loop_close();
}

/* Read what is there from fd into buf; decode whole frames, checking
 * that their seqs are exactly the accepted ones, in order. */
struct slow_reader {
	uint8_t buf[1 << 20];
	size_t len;
	int hello_seen;
	const uint64_t *accepted;
	int n_accepted, next, bad;
	sr_decoder dec;
};

static void slow_read(struct slow_reader *r, int fd, size_t max)
{
	ssize_t n = recv(fd, r->buf + r->len, max, MSG_DONTWAIT);
	if (n <= 0)
		return;
	r->len += (size_t)n;
	size_t off = 0;
	for (;;) {
		sr_frame_hdr h;
		if (r->len - off < SR_FRAME_HDR_SIZE ||
		    sr_codec_header(r->buf + off, r->len - off, 1u << 20, &h))
			break;
		size_t flen = SR_FRAME_HDR_SIZE + h.len;
		if (r->len - off < flen)
			break;
		sr_msg m;
		if (!r->hello_seen) {
			r->hello_seen = h.type == SR_FRAME_HELLO;
			r->bad += !r->hello_seen;
		} else if (sr_codec_decode(&r->dec, r->buf + off, flen, &m,
					   NULL) ||
			   r->next >= r->n_accepted ||
			   m.u.append.seq != r->accepted[r->next++]) {
			r->bad++;
		}
		off += flen;
	}
	memmove(r->buf, r->buf + off, r->len - off);
	r->len -= off;
}

TEST(test_a_slow_reader_gets_every_accepted_message_intact)
{
	struct node a;
	static struct slow_reader r;
	enum { N = 3000 };
	static uint64_t accepted[N];
	int n_acc = 0;

	loop_open();
	node_init(&a, 1, 7, 0);
	a.cfg.max_frame_bytes = 64u << 10;
	a.cfg.max_queue_bytes = 256u << 10;
	a.cfg.sndbuf_bytes = 8192; /* partial writes, a few KiB at a time */
	CHECK_EQ(node_open(&a), 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	int small = 4096;
	setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	CHECK_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK_EQ(listen(lfd, 4), 0);
	getsockname(lfd, (struct sockaddr *)&sa, &slen);
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
	sr_tcp_set_peer(a.tcp, 2, addr);
	RUN_UNTIL(peer_state(&a, 2) == SR_TCP_UP, 2000);
	int fd = accept(lfd, NULL, NULL);
	CHECK(fd >= 0);

	memset(&r, 0, sizeof(r));
	r.accepted = accepted;
	sr_decoder_init(&r.dec, 1u << 20, 0, NULL);
	uint8_t *data = calloc(1, 20000);
	int busy = 0;
	for (int i = 0; i < N; i++) {
		sr_entry e = { .term = 1,
			       .index = 1,
			       .type = SR_ENTRY_NORMAL,
			       .len = 1000 + (uint32_t)(i * 7919) % 19000,
			       .data = data };
		sr_msg m = heartbeat(1, 2, (uint64_t)i + 1);
		m.u.append.entries = &e;
		m.u.append.n_entries = 1;
		int rc = sr_tcp_send(a.tcp, &m);
		if (rc == 0)
			accepted[n_acc++] = (uint64_t)i + 1;
		busy += rc == SR_EBUSY;
		r.n_accepted = n_acc;
		sr_loop_run_once(L, 0);
		slow_read(&r, fd, 6000); /* a little at a time */
	}
	uint64_t t0 = now_ms();
	while (r.next < n_acc && !r.bad && now_ms() - t0 < 5000) {
		sr_loop_run_once(L, 1);
		slow_read(&r, fd, 65536);
	}
	CHECK(busy > 0);       /* the queue did fill up */
	CHECK(n_acc > N / 10); /* and kept accepting as it drained */
	CHECK_EQ(r.bad, 0);
	CHECK_EQ(r.next, n_acc);
	sr_tcp_peer_info pi;
	sr_tcp_peer_get(a.tcp, 2, &pi);
	CHECK_EQ(pi.queued_msgs, 0);
	CHECK_EQ(pi.queued_bytes, 0);
	CHECK_EQ(pi.drops, (uint64_t)busy);
	sr_decoder_free(&r.dec);
	free(data);
	close(fd);
	close(lfd);
	node_close(&a);
	CHECK_EQ(a.ca.live, 0);
	loop_close();
}

TEST(test_reconnects_after_the_peer_restarts)
{
	struct node a, b;
	pair_open(&a, &b);
	sr_msg m = heartbeat(1, 2, 1);
	sr_tcp_send(a.tcp, &m);
	RUN_UNTIL(b.got == 1, 2000);
	CHECK_EQ(b.got, 1);
	int port = sr_tcp_port(b.tcp);
	node_close(&b);
	RUN_UNTIL(peer_state(&a, 2) == SR_TCP_DOWN, 2000);
	CHECK_EQ(peer_state(&a, 2), SR_TCP_DOWN);
	CHECK(node_logged(&a, "closed by the peer") || node_logged(&a, "rese"
								       "t"));

	node_init(&b, 2, 7, port);
	CHECK_EQ(node_open(&b), 0);
	link_nodes(&b, &a);
	/* like Raft's heartbeats: keep sending until one gets through */
	uint64_t t0 = now_ms();
	for (uint64_t seq = 2; b.got == 0 && now_ms() - t0 < 3000; seq++) {
		m = heartbeat(1, 2, seq);
		sr_tcp_send(a.tcp, &m);
		run_for(10);
	}
	CHECK(b.got > 0);
	CHECK(node_stats(&a).connects >= 2);
	pair_close(&a, &b);
}

/*
 * A peer that restarts while our backoff has grown to seconds connects to
 * us first (its own backoff starts afresh); that connection proves it is
 * listening again, so we must reach it now, not when our timer says.
 */
TEST(test_inbound_connection_resets_the_reconnect_backoff)
{
	struct node a, b;
	sr_tcp_peer_info pi;
	loop_open();
	node_init(&a, 1, 7, 0);
	node_init(&b, 2, 7, 0);
	a.cfg.reconnect_min_ms = 200;
	a.cfg.reconnect_max_ms = 5000;
	CHECK_EQ(node_open(&a), 0);
	CHECK_EQ(node_open(&b), 0);
	link_nodes(&a, &b);
	sr_msg m = heartbeat(1, 2, 1);
	sr_tcp_send(a.tcp, &m);
	RUN_UNTIL(b.got == 1, 2000);
	CHECK_EQ(b.got, 1);
	int port = sr_tcp_port(b.tcp);
	node_close(&b);
	/* failures 1..4: the retry now pending waits 800..1600 ms */
	RUN_UNTIL(sr_tcp_peer_get(a.tcp, 2, &pi) == 0 && pi.attempts >= 4,
		  4000);
	CHECK(pi.attempts >= 4);
	CHECK_EQ(pi.state, SR_TCP_DOWN);

	node_init(&b, 2, 7, port);
	CHECK_EQ(node_open(&b), 0);
	link_nodes(&b, &a);
	uint64_t t0 = now_ms();
	RUN_UNTIL(peer_state(&a, 2) == SR_TCP_UP, 3000);
	uint64_t took = now_ms() - t0;
	CHECK_EQ(peer_state(&a, 2), SR_TCP_UP);
	if (took >= 300)
		TEST_FAIL("reached the restarted peer after %llu ms",
			  (unsigned long long)took);
	printf("  reached the restarted peer in %llu ms\n",
	       (unsigned long long)took);
	m = heartbeat(1, 2, 2);
	CHECK_EQ(sr_tcp_send(a.tcp, &m), 0);
	RUN_UNTIL(b.got == 1, 2000);
	CHECK_EQ(b.got, 1);
	CHECK(node_logged(&a, "reconnecting now"));
	pair_close(&a, &b);
	CHECK_EQ(a.ca.live, 0);
}

/* Send one heartbeat each way every 10 ms for ms; count deliveries. */
static void chatter(struct node *a, struct node *b, int ms, uint64_t *seq)
{
	uint64_t t0 = now_ms();
	while (now_ms() - t0 < (uint64_t)ms) {
		sr_msg m = heartbeat(1, 2, ++*seq);
		sr_tcp_send(a->tcp, &m);
		m = heartbeat(2, 1, *seq);
		sr_tcp_send(b->tcp, &m);
		run_for(10);
	}
}

TEST(test_partition_stops_traffic_and_healing_restores_it)
{
	struct node a, b;
	uint64_t seq = 0;
	pair_open(&a, &b);
	chatter(&a, &b, 100, &seq);
	CHECK(a.got > 0 && b.got > 0);

	CHECK_EQ(sr_tcp_partition(a.tcp, 2, 1), 0);
	CHECK_EQ(sr_tcp_partition(b.tcp, 1, 1), 0);
	sr_msg m = heartbeat(1, 2, ++seq);
	CHECK_EQ(sr_tcp_send(a.tcp, &m), SR_ESTATE);
	run_for(50);
	int ga = a.got, gb = b.got;
	chatter(&a, &b, 300, &seq);
	CHECK_EQ(a.got, ga);
	CHECK_EQ(b.got, gb);
	sr_tcp_peer_info pi;
	sr_tcp_peer_get(a.tcp, 2, &pi);
	CHECK(pi.partitioned);
	CHECK(!pi.inbound);
	CHECK_EQ(pi.state, SR_TCP_DOWN);

	CHECK_EQ(sr_tcp_partition(a.tcp, 2, 0), 0);
	CHECK_EQ(sr_tcp_partition(b.tcp, 1, 0), 0);
	uint64_t t0 = now_ms();
	while ((a.got == ga || b.got == gb) && now_ms() - t0 < 3000)
		chatter(&a, &b, 20, &seq);
	CHECK(a.got > ga && b.got > gb);
	pair_close(&a, &b);
}

TEST(test_one_sided_cut_refuses_the_peer_handshake)
{
	struct node a, b;
	uint64_t seq = 0;
	pair_open(&a, &b);
	chatter(&a, &b, 50, &seq);
	CHECK_EQ(sr_tcp_partition(a.tcp, 2, 1), 0); /* only A cuts */
	run_for(50);
	int ga = a.got;
	chatter(&a, &b, 300, &seq);
	CHECK_EQ(a.got, ga); /* B keeps reconnecting, A keeps refusing */
	CHECK(node_logged(&a, "partitioned"));
	CHECK(node_stats(&a).refused > 0);
	pair_close(&a, &b);
}

TEST(test_address_change_moves_the_connection)
{
	struct node a, b, c;
	pair_open(&a, &b);
	sr_msg m = heartbeat(1, 2, 1);
	sr_tcp_send(a.tcp, &m);
	RUN_UNTIL(b.got == 1, 2000);
	/* node 2 moves: a new transport on another port */
	node_init(&c, 2, 7, 0);
	CHECK_EQ(node_open(&c), 0);
	char addr[64];
	node_addr(&c, addr, sizeof(addr));
	CHECK_EQ(sr_tcp_set_peer(a.tcp, 2, addr), 0);
	CHECK_EQ(sr_tcp_set_peer(c.tcp, 1, "127.0.0.1:1"), 0);
	uint64_t t0 = now_ms();
	for (uint64_t s = 2; c.got == 0 && now_ms() - t0 < 3000; s++) {
		m = heartbeat(1, 2, s);
		sr_tcp_send(a.tcp, &m);
		run_for(10);
	}
	CHECK(c.got > 0);
	CHECK(node_logged(&a, "address changed"));
	node_close(&c);
	pair_close(&a, &b);
}

TEST(test_removed_peer_is_forgotten_and_refused)
{
	struct node a, b;
	pair_open(&a, &b);
	sr_msg m = heartbeat(1, 2, 1);
	sr_tcp_send(a.tcp, &m);
	RUN_UNTIL(b.got == 1, 2000);
	CHECK_EQ(sr_tcp_remove_peer(b.tcp, 1), 0);
	sr_tcp_peer_info pi;
	CHECK_EQ(sr_tcp_peer_get(b.tcp, 1, &pi), SR_ENOTFOUND);
	m = heartbeat(2, 1, 1);
	CHECK_EQ(sr_tcp_send(b.tcp, &m), SR_ENOTFOUND);
	/* A notices its connection closed, reconnects, and is refused */
	RUN_UNTIL(node_logged(&b, "unknown node 1"), 2000);
	CHECK(node_logged(&b, "unknown node 1"));
	pair_close(&a, &b);
}

TEST(test_on_message_may_remove_the_sender)
{
	struct node a, b;
	pair_open(&a, &b);
	b.remove_sender = 1;
	for (uint64_t i = 1; i <= 10; i++) {
		sr_msg m = heartbeat(1, 2, i);
		sr_tcp_send(a.tcp, &m);
	}
	RUN_UNTIL(b.got >= 1, 2000);
	run_for(100);
	CHECK_EQ(b.got, 1); /* the rest arrived on a connection now closed */
	pair_close(&a, &b);
	CHECK_EQ(b.ca.live, 0);
}

TEST(test_private_loop_driven_by_poll)
{
	struct node a, b;
	L = NULL;
	node_init(&a, 1, 7, 0);
	node_init(&b, 2, 7, 0);
	a.cfg.loop = b.cfg.loop = NULL;
	CHECK_EQ(node_open(&a), 0);
	CHECK_EQ(node_open(&b), 0);
	link_nodes(&a, &b);
	CHECK(sr_tcp_loop(a.tcp) != sr_tcp_loop(b.tcp));
	sr_msg m = heartbeat(1, 2, 1);
	CHECK_EQ(sr_tcp_send(a.tcp, &m), 0);
	uint64_t t0 = now_ms();
	while (b.got == 0 && now_ms() - t0 < 3000) {
		struct pollfd p[2] = { { sr_tcp_fd(a.tcp), POLLIN, 0 },
				       { sr_tcp_fd(b.tcp), POLLIN, 0 } };
		int ta = sr_tcp_timeout_ms(a.tcp),
		    tb = sr_tcp_timeout_ms(b.tcp);
		int to = ta < 0 ? tb : (tb < 0 || ta < tb ? ta : tb);
		poll(p, 2, to < 0 || to > 100 ? 100 : to);
		CHECK(sr_tcp_process(a.tcp) >= 0);
		CHECK(sr_tcp_process(b.tcp) >= 0);
	}
	CHECK_EQ(b.got, 1);
	/* output waiting for the flush shows as a zero timeout */
	m = heartbeat(1, 2, 2);
	CHECK_EQ(sr_tcp_send(a.tcp, &m), 0);
	CHECK_EQ(sr_tcp_timeout_ms(a.tcp), 0);
	node_close(&a);
	node_close(&b);
	CHECK_EQ(a.ca.live, 0);
}

TEST(test_ipv6_loopback)
{
	struct node a, b;
	char addr[64];
	loop_open();
	node_init(&a, 1, 7, 0);
	node_init(&b, 2, 7, 0);
	snprintf(b.listen, sizeof(b.listen), "[::1]:0");
	CHECK_EQ(node_open(&a), 0);
	if (node_open(&b) != 0) { /* no IPv6 on this host: nothing to test */
		node_close(&a);
		loop_close();
		return;
	}
	snprintf(addr, sizeof(addr), "[::1]:%d", sr_tcp_port(b.tcp));
	CHECK_EQ(sr_tcp_set_peer(a.tcp, 2, addr), 0);
	node_addr(&a, addr, sizeof(addr));
	CHECK_EQ(sr_tcp_set_peer(b.tcp, 1, addr), 0);
	sr_msg m = heartbeat(1, 2, 1);
	CHECK_EQ(sr_tcp_send(a.tcp, &m), 0);
	RUN_UNTIL(b.got == 1, 2000);
	CHECK_EQ(b.got, 1);
	CHECK(node_logged(&b, "connection from [::1]:"));
	pair_close(&a, &b);
}

TEST(test_destroy_with_traffic_in_flight_frees_everything)
{
	struct node a, b;
	pair_open(&a, &b);
	uint8_t *data = calloc(1, 256u << 10);
	sr_entry e = { .term = 1,
		       .index = 1,
		       .type = SR_ENTRY_NORMAL,
		       .len = 256u << 10,
		       .data = data };
	for (uint64_t i = 1; i <= 40; i++) {
		sr_msg m = heartbeat(1, 2, i);
		m.u.append.entries = &e;
		m.u.append.n_entries = 1;
		sr_tcp_send(a.tcp, &m);
		m = heartbeat(2, 1, i);
		sr_tcp_send(b.tcp, &m);
		if (i == 20)
			run_for(5);
	}
	free(data);
	/* mid-transfer: queues full, receive buffers partly filled */
	pair_close(&a, &b);
	CHECK_EQ(a.ca.live, 0);
	CHECK_EQ(b.ca.live, 0);
}

TEST(test_unknown_peers_are_heard_only_when_accepted)
{
	struct node a, b;
	char addr[64];
	sr_msg hb = heartbeat(1, 2, 1);

	loop_open();
	node_init(&a, 1, 7, 0);
	node_init(&b, 2, 7, 0);
	CHECK_EQ(node_open(&a), 0);
	CHECK_EQ(node_open(&b), 0);
	/* a knows b; b does not know a: refused by default */
	node_addr(&b, addr, sizeof(addr));
	CHECK_EQ(sr_tcp_set_peer(a.tcp, 2, addr), 0);
	CHECK_EQ(sr_tcp_send(a.tcp, &hb), 0);
	run_for(200);
	CHECK_EQ(b.got, 0);
	CHECK(node_logged(&b, "unknown node 1"));
	node_close(&b);

	/* a node waiting to join hears from members it cannot know yet */
	node_init(&b, 2, 7, 0);
	b.cfg.accept_unknown_peers = 1;
	CHECK_EQ(node_open(&b), 0);
	node_addr(&b, addr, sizeof(addr));
	CHECK_EQ(sr_tcp_set_peer(a.tcp, 2, addr), 0);
	for (int i = 0; i < 50 && b.got == 0; i++) {
		CHECK_EQ(sr_tcp_send(a.tcp, &hb), 0);
		run_for(20);
	}
	CHECK(b.got > 0);
	/* and it can answer: the handshake advertised where a listens */
	{
		sr_tcp_peer_info pi;
		CHECK_EQ(sr_tcp_peer_get(b.tcp, 1, &pi), 0);
		CHECK(node_logged(&b, "node 1 joins as a peer at 127.0.0.1:"));
	}
	{
		sr_msg back = heartbeat(2, 1, 2);
		CHECK_EQ(sr_tcp_send(b.tcp, &back), 0);
		RUN_UNTIL(a.got >= 1, 3000);
		CHECK(a.got >= 1);
	}
	node_close(&a);
	node_close(&b);
	loop_close();
	CHECK_EQ(a.ca.live, 0);
	CHECK_EQ(b.ca.live, 0);
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
