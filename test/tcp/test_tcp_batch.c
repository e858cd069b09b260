/*
 * test_tcp_batch.c — batch frames between live transports on loopback
 * (seshat/tcp.h "Sending", docs/wire-protocol.md "Batch frames").
 *
 * The messages of many groups queued for one peer in one loop iteration
 * leave as one frame; batches stop at batch_max_bytes; a node with
 * batching off (as an older version would be) gets and sends one frame
 * per message, in both directions, with no protocol error; batching works
 * behind the authenticated handshake; and a raw peer that sends a bad
 * batch (a wrong sender in its last message, trailing bytes) or sends a
 * batch to a node that did not offer batches has its connection closed
 * with nothing of that batch delivered.
 */
#include "harness.h"
#include "testlib.h"

#define SECRET "0123456789abcdef-batch"

/* Nodes 1 and 2 of cluster 7, connected both ways and past their
 * handshakes (so each knows what the other offered).  batch_a/batch_b:
 * batch_max_bytes of each (-1: the default); secret: both use it.  The
 * heartbeats these tests batch would coalesce (test_tcp_coalesce.c), so
 * coalescing is off here. */
static int pair_up(struct node *a, struct node *b, int batch_a, int batch_b,
		   int secret)
{
	pair_init(a, b);
	a->cfg.coalesce_max_bytes = b->cfg.coalesce_max_bytes = 0;
	if (batch_a >= 0)
		a->cfg.batch_max_bytes = (uint32_t)batch_a;
	if (batch_b >= 0)
		b->cfg.batch_max_bytes = (uint32_t)batch_b;
	if (secret) {
		a->cfg.secret = b->cfg.secret = SECRET;
		a->cfg.secret_len = b->cfg.secret_len = strlen(SECRET);
	}
	return pair_connect(a, b);
}

/* n heartbeats from -> to, one per group 1..n. */
static sr_msg *group_heartbeats(sr_id from, sr_id to, int n)
{
	sr_msg *m = calloc((size_t)n, sizeof(*m));
	for (int i = 0; i < n && m; i++) {
		m[i] = heartbeat(from, to, 1 + (uint64_t)i);
		m[i].group = 1 + (uint32_t)i;
	}
	return m;
}

TEST(test_many_groups_in_one_iteration_leave_as_one_frame)
{
	struct node a, b;
	enum { N = 256 };
	CHECK_EQ(pair_up(&a, &b, -1, -1, 0), 0);
	sr_msg *m = group_heartbeats(1, 2, N);
	sr_tcp_stats a0 = node_stats(&a), b0 = node_stats(&b);
	uint64_t w0 = a0.writes;
	CHECK_EQ(send_all(&a, &b, m, N), 1);
	sr_tcp_stats a1 = node_stats(&a), b1 = node_stats(&b);
	CHECK_EQ(a1.msgs_sent - a0.msgs_sent, N);
	CHECK_EQ(a1.batched_msgs - a0.batched_msgs, N);
	CHECK_EQ(a1.writes - w0, 1);
	CHECK_EQ(b1.frames_recv - b0.frames_recv, 1);
	CHECK_EQ(b1.batches_recv - b0.batches_recv, 1);
	CHECK_EQ(b1.msgs_recv - b0.msgs_recv, N);
	/* 256 frames of 80 bytes would be 20480; one batch saves 10 per
	 * message less one header */
	CHECK_EQ(a1.bytes_sent - a0.bytes_sent, 20 + N * 70);
	/* one message alone keeps its own frame */
	CHECK_EQ(send_all(&a, &b, m, 1), 1);
	CHECK_EQ(node_stats(&a).batched_msgs, a1.batched_msgs);
	CHECK_EQ(node_stats(&b).batches_recv, b1.batches_recv);
	CHECK_EQ(node_stats(&b).proto_errors, 0);
	free(m);
	pair_close(&a, &b);
	CHECK_EQ(a.ca.live, 0);
	CHECK_EQ(b.ca.live, 0);
}

TEST(test_batches_stop_at_batch_max_bytes)
{
	struct node a, b;
	enum { N = 100 };
	/* 14 heartbeat items (70 bytes each) fit in 1000 bytes */
	CHECK_EQ(pair_up(&a, &b, 1000, -1, 0), 0);
	sr_msg *m = group_heartbeats(1, 2, N);
	CHECK_EQ(send_all(&a, &b, m, N), (N + 13) / 14);
	/* a message larger than the limit travels alone, in order */
	static uint8_t big[3000];
	sr_entry e = { 4, 11, SR_ENTRY_NORMAL, sizeof(big), big };
	m[50].u.append.entries = &e;
	m[50].u.append.n_entries = 1;
	CHECK_EQ(send_all(&a, &b, m, N), (50 + 13) / 14 + 1 + (49 + 13) / 14);
	CHECK_EQ(node_stats(&b).proto_errors, 0);
	free(m);
	pair_close(&a, &b);
}

TEST(test_a_node_without_batching_gets_and_sends_single_frames)
{
	struct node a, b;
	enum { N = 64 };
	CHECK_EQ(pair_up(&a, &b, -1, 0, 0), 0);
	sr_msg *ab = group_heartbeats(1, 2, N), *ba = group_heartbeats(2, 1, N);
	CHECK_EQ(send_all(&a, &b, ab, N), N);
	CHECK_EQ(send_all(&b, &a, ba, N), N);
	CHECK_EQ(node_stats(&a).batched_msgs, 0);
	CHECK_EQ(node_stats(&b).batched_msgs, 0);
	CHECK_EQ(node_stats(&a).batches_recv, 0);
	CHECK_EQ(node_stats(&b).batches_recv, 0);
	CHECK_EQ(node_stats(&a).proto_errors, 0);
	CHECK_EQ(node_stats(&b).proto_errors, 0);
	free(ab);
	free(ba);
	pair_close(&a, &b);
}

TEST(test_batches_cross_an_authenticated_handshake)
{
	struct node a, b;
	enum { N = 128 };
	CHECK_EQ(pair_up(&a, &b, -1, -1, 1), 0);
	sr_tcp_auth_stats as;
	sr_tcp_auth_stats_get(b.tcp, &as);
	CHECK(as.enabled && as.ok >= 1);
	CHECK_EQ(as.failures, 0);
	sr_msg *m = group_heartbeats(1, 2, N);
	CHECK_EQ(send_all(&a, &b, m, N), 1);
	sr_msg *back = group_heartbeats(2, 1, N);
	CHECK_EQ(send_all(&b, &a, back, N), 1);
	free(m);
	free(back);
	pair_close(&a, &b);
}

static int raw_batch_closed(struct node *b, const uint8_t *f, size_t len)
{
	return raw_closed_after(b, SR_FEATURE_BATCH, f, len);
}

/* A sealed batch of heartbeats from 3 to 2, groups 1..n; the last one's
 * sender is `last_from`.  *len: its size. */
static uint8_t *batch_from_3(int n, sr_id last_from, size_t *len)
{
	size_t cap = SR_FRAME_HDR_SIZE + (size_t)n * 80;
	uint8_t *f = malloc(cap);
	size_t l = SR_FRAME_HDR_SIZE;
	sr_codec_batch_begin(f, cap);
	for (int i = 0; i < n; i++) {
		sr_msg m = heartbeat(i == n - 1 ? last_from : 3, 2,
				     1 + (uint64_t)i);
		m.group = 1 + (uint32_t)i;
		sr_codec_batch_add(&m, f, cap, &l);
	}
	sr_codec_batch_seal(f, l);
	*len = l;
	return f;
}

TEST(test_a_bad_batch_closes_the_connection_and_delivers_nothing)
{
	struct node b;
	CHECK_EQ(raw_target_open(&b), 0);

	/* a good batch from node 3 is delivered */
	size_t len;
	uint8_t *f = batch_from_3(10, 3, &len);
	CHECK_EQ(raw_delivered(&b, SR_FEATURE_BATCH, f, len, 10), 10);
	free(f);

	/* the last message claims another sender: nothing is delivered */
	b.got = 0;
	f = batch_from_3(10, 1, &len);
	CHECK_EQ(raw_batch_closed(&b, f, len), 1);
	CHECK_EQ(b.got, 0);
	CHECK(node_logged(&b, "message from 1 to 2 in a batch"));
	CHECK_EQ(node_stats(&b).proto_errors, 1);
	free(f);

	/* trailing bytes after the last item (CRC fixed up) */
	f = batch_from_3(4, 3, &len);
	uint8_t *g = malloc(len + 3);
	memcpy(g, f, len);
	memset(g + len, 0, 3);
	sr_codec_batch_seal(g, len + 3);
	CHECK_EQ(raw_batch_closed(&b, g, len + 3), 1);
	CHECK_EQ(b.got, 0);
	CHECK(node_logged(&b, "malformed (CRC, item lengths, nesting or "
			      "fields) batch frame"));
	CHECK_EQ(node_stats(&b).proto_errors, 2);
	free(g);
	free(f);
	node_close(&b);

	/* a node that did not offer batches refuses one */
	node_init(&b, 2, 7, 0);
	b.cfg.batch_max_bytes = 0;
	CHECK_EQ(node_open(&b), 0);
	CHECK_EQ(sr_tcp_set_peer(b.tcp, 3, "127.0.0.1:1"), 0);
	f = batch_from_3(3, 3, &len);
	CHECK_EQ(raw_batch_closed(&b, f, len), 1);
	CHECK_EQ(b.got, 0);
	CHECK(node_logged(&b, "does not take batches"));
	free(f);
	node_close(&b);
	CHECK_EQ(b.ca.live, 0);
	sr_loop_destroy(L);
	L = NULL;
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
