/*
 * test_tcp_coalesce.c — coalesced heartbeats and append answers between
 * live transports on loopback (seshat/tcp.h coalesce_max_bytes,
 * docs/wire-protocol.md "Coalesced heartbeats").
 *
 * The heartbeats of many groups queued for one peer in one loop iteration
 * leave as one coalesced message, and so do the answers; every message
 * arrives field for field and in the order it was sent, other messages
 * in between included (they close a coalesced frame rather than overtake
 * it); frames stop at coalesce_max_bytes; a node with coalescing off (as
 * a node of the previous version is) gets and sends ordinary messages in
 * both directions with no protocol error; coalescing works behind the
 * authenticated handshake; and a raw peer that sends a bad coalesced
 * frame (another sender, a count that disagrees with the length) or sends
 * one to a node that did not offer it has its connection closed with
 * nothing of that frame delivered.
 */
#include "harness.h"
#include "testlib.h"

#define SECRET "0123456789abcdef-coalesce"

/* Nodes 1 and 2 of cluster 7, connected both ways and past their
 * handshakes.  max_a/max_b: coalesce_max_bytes of each (-1: the
 * default); secret: both use it. */
static int pair_up(struct node *a, struct node *b, int max_a, int max_b,
		   int secret)
{
	pair_init(a, b);
	if (max_a >= 0)
		a->cfg.coalesce_max_bytes = (uint32_t)max_a;
	if (max_b >= 0)
		b->cfg.coalesce_max_bytes = (uint32_t)max_b;
	if (secret) {
		a->cfg.secret = b->cfg.secret = SECRET;
		a->cfg.secret_len = b->cfg.secret_len = strlen(SECRET);
	}
	return pair_connect(a, b);
}

/* n heartbeats from -> to, one per group, seq increasing from seq0. */
static sr_msg *heartbeats(sr_id from, sr_id to, int n, uint64_t seq0)
{
	sr_msg *m = calloc((size_t)n, sizeof(*m));
	for (int i = 0; i < n && m; i++) {
		m[i] = heartbeat(from, to, seq0 + (uint64_t)i);
		m[i].group = 1 + (uint32_t)i * 3;
		m[i].term = 2 + (uint64_t)i % 5;
		m[i].u.append.commit = 7 + (uint64_t)i;
	}
	return m;
}

/* The answer of group i to a heartbeat, every field distinct. */
static sr_msg answer(sr_id from, sr_id to, int i)
{
	sr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_APPEND_RESP;
	m.from = from;
	m.to = to;
	m.group = 5 + (uint32_t)i;
	m.term = 3 + (uint64_t)i;
	m.u.append_resp.success = (uint8_t)(i % 3 != 0);
	m.u.append_resp.index = 100 + (uint64_t)i;
	m.u.append_resp.hint_index = 200 + (uint64_t)i;
	m.u.append_resp.hint_term = 300 + (uint64_t)i;
	m.u.append_resp.seq = 400 + (uint64_t)i;
	return m;
}

TEST(test_heartbeats_of_many_groups_leave_as_one_coalesced_message)
{
	struct node a, b;
	enum { N = 256 };
	CHECK_EQ(pair_up(&a, &b, -1, -1, 0), 0);
	sr_msg *m = heartbeats(1, 2, N, 1);
	sr_tcp_stats a0 = node_stats(&a), b0 = node_stats(&b);
	CHECK_EQ(send_all(&a, &b, m, N), 1);
	sr_tcp_stats a1 = node_stats(&a), b1 = node_stats(&b);
	CHECK_EQ(a1.msgs_sent - a0.msgs_sent, N);
	CHECK_EQ(a1.coalesced_sent - a0.coalesced_sent, 1);
	CHECK_EQ(a1.coalesced_msgs - a0.coalesced_msgs, N);
	CHECK_EQ(a1.batched_msgs - a0.batched_msgs, 0);
	CHECK_EQ(a1.writes - a0.writes, 1);
	/* 256 heartbeats in a batch would take 20 + 256 x 70 bytes */
	CHECK_EQ(a1.bytes_sent - a0.bytes_sent, 20 + 20 + N * 44);
	CHECK_EQ(b1.frames_recv - b0.frames_recv, 1);
	CHECK_EQ(b1.coalesced_recv - b0.coalesced_recv, 1);
	CHECK_EQ(b1.coalesced_msgs_recv - b0.coalesced_msgs_recv, N);
	CHECK_EQ(b1.msgs_recv - b0.msgs_recv, N);
	/* nothing stays counted as queued */
	sr_tcp_peer_info pi;
	CHECK_EQ(sr_tcp_peer_get(a.tcp, 2, &pi), 0);
	CHECK_EQ(pi.queued_msgs, 0);
	CHECK_EQ(pi.queued_bytes, 0);
	CHECK_EQ(node_stats(&b).proto_errors, 0);
	free(m);
	pair_close(&a, &b);
	CHECK_EQ(a.ca.live, 0);
	CHECK_EQ(b.ca.live, 0);
}

TEST(test_answers_coalesce_the_same_way)
{
	struct node a, b;
	enum { N = 200 };
	CHECK_EQ(pair_up(&a, &b, -1, -1, 0), 0);
	sr_msg *m = calloc(N, sizeof(*m));
	for (int i = 0; i < N; i++)
		m[i] = answer(2, 1, i);
	sr_tcp_stats b0 = node_stats(&b);
	CHECK_EQ(send_all(&b, &a, m, N), 1);
	sr_tcp_stats b1 = node_stats(&b);
	CHECK_EQ(b1.coalesced_sent - b0.coalesced_sent, 1);
	CHECK_EQ(b1.coalesced_msgs - b0.coalesced_msgs, N);
	CHECK_EQ(b1.bytes_sent - b0.bytes_sent, 20 + 20 + N * 45);
	CHECK_EQ(node_stats(&a).coalesced_msgs_recv, N);
	CHECK_EQ(node_stats(&a).proto_errors, 0);
	free(m);
	pair_close(&a, &b);
}

TEST(test_other_messages_close_the_frame_and_nothing_is_reordered)
{
	struct node a, b;
	CHECK_EQ(pair_up(&a, &b, -1, -1, 0), 0);
	/* 10 heartbeats, a vote, 10 heartbeats, an append with an entry,
	 * 5 answers, 5 heartbeats: appends' seqs increase throughout, and
	 * every message must arrive where it was sent */
	sr_msg m[32];
	sr_msg *h = heartbeats(1, 2, 25, 1);
	int n = 0;
	for (int i = 0; i < 10; i++)
		m[n++] = h[i];
	memset(&m[n], 0, sizeof(m[n]));
	m[n].type = SR_MSG_VOTE;
	m[n].from = 1;
	m[n].to = 2;
	m[n].term = 9;
	m[n++].u.vote.last_index = 4;
	for (int i = 10; i < 20; i++)
		m[n++] = h[i];
	static uint8_t data[100];
	sr_entry e = { 3, 11, SR_ENTRY_NORMAL, sizeof(data), data };
	m[n] = heartbeat(1, 2, 21);
	m[n].u.append.entries = &e;
	m[n++].u.append.n_entries = 1;
	for (int i = 0; i < 5; i++)
		m[n++] = answer(1, 2, i);
	for (int i = 20; i < 25; i++) {
		m[n] = h[i];
		m[n++].u.append.seq = 21 + (uint64_t)i;
	}
	CHECK_EQ(n, 32);
	sr_tcp_stats a0 = node_stats(&a);
	/* frames: hb x10, vote, hb x10, append, answers x5, hb x5 */
	CHECK_EQ(send_all(&a, &b, m, n), 6);
	sr_tcp_stats a1 = node_stats(&a);
	CHECK_EQ(a1.coalesced_sent - a0.coalesced_sent, 4);
	CHECK_EQ(a1.coalesced_msgs - a0.coalesced_msgs, 30);
	CHECK_EQ(a1.writes - a0.writes, 1);
	CHECK_EQ(b.bytes, sizeof(data));
	CHECK_EQ(node_stats(&b).proto_errors, 0);
	free(h);
	pair_close(&a, &b);
}

TEST(test_coalesced_frames_stop_at_coalesce_max_bytes)
{
	struct node a, b;
	enum { N = 100 };
	/* (1000 - 20) / 44 = 22 heartbeats per frame */
	CHECK_EQ(pair_up(&a, &b, 1000, -1, 0), 0);
	sr_msg *m = heartbeats(1, 2, N, 1);
	CHECK_EQ(send_all(&a, &b, m, N), (N + 21) / 22);
	CHECK_EQ(node_stats(&a).coalesced_sent, (N + 21) / 22);
	/* a limit below one record: ordinary messages (batched) */
	free(m);
	pair_close(&a, &b);
	CHECK_EQ(pair_up(&a, &b, 60, -1, 0), 0);
	m = heartbeats(1, 2, N, 1);
	CHECK_EQ(send_all(&a, &b, m, N), 1);
	CHECK_EQ(node_stats(&a).coalesced_sent, 0);
	CHECK_EQ(node_stats(&a).batched_msgs, N);
	CHECK_EQ(node_stats(&b).proto_errors, 0);
	free(m);
	pair_close(&a, &b);
}

TEST(test_a_node_without_coalescing_gets_and_sends_ordinary_messages)
{
	struct node a, b;
	enum { N = 64 };
	CHECK_EQ(pair_up(&a, &b, -1, 0, 0), 0);
	sr_msg *ab = heartbeats(1, 2, N, 1), *ba = heartbeats(2, 1, N, 1);
	/* still batched: one frame each way */
	CHECK_EQ(send_all(&a, &b, ab, N), 1);
	CHECK_EQ(send_all(&b, &a, ba, N), 1);
	sr_msg ans[8];
	for (int i = 0; i < 8; i++)
		ans[i] = answer(1, 2, i);
	CHECK_EQ(send_all(&a, &b, ans, 8), 1);
	for (int i = 0; i < 8; i++)
		ans[i] = answer(2, 1, i);
	CHECK_EQ(send_all(&b, &a, ans, 8), 1);
	CHECK_EQ(node_stats(&a).coalesced_sent, 0);
	CHECK_EQ(node_stats(&b).coalesced_sent, 0);
	CHECK_EQ(node_stats(&a).coalesced_recv, 0);
	CHECK_EQ(node_stats(&b).coalesced_recv, 0);
	CHECK_EQ(node_stats(&a).batched_msgs, N + 8);
	CHECK_EQ(node_stats(&a).proto_errors, 0);
	CHECK_EQ(node_stats(&b).proto_errors, 0);
	free(ab);
	free(ba);
	pair_close(&a, &b);
}

TEST(test_coalescing_crosses_an_authenticated_handshake)
{
	struct node a, b;
	enum { N = 128 };
	CHECK_EQ(pair_up(&a, &b, -1, -1, 1), 0);
	sr_tcp_auth_stats as;
	sr_tcp_auth_stats_get(b.tcp, &as);
	CHECK(as.enabled && as.ok >= 1);
	sr_msg *m = heartbeats(1, 2, N, 1);
	CHECK_EQ(send_all(&a, &b, m, N), 1);
	CHECK_EQ(node_stats(&a).coalesced_sent, 1);
	sr_msg *back = calloc(N, sizeof(*back));
	for (int i = 0; i < N; i++)
		back[i] = answer(2, 1, i);
	CHECK_EQ(send_all(&b, &a, back, N), 1);
	CHECK_EQ(node_stats(&b).coalesced_sent, 1);
	free(m);
	free(back);
	pair_close(&a, &b);
}

/* A sealed coalesced frame of n heartbeats from `from` to 2. */
static uint8_t *frame_from(int n, sr_id from, size_t *len)
{
	size_t cap = 40 + (size_t)n * 44;
	uint8_t *f = malloc(cap);
	sr_msg *m = heartbeats(from, 2, n, 1);
	size_t l = 0;
	sr_codec_coalesced_begin(&m[0], f, cap, &l);
	for (int i = 1; i < n; i++)
		sr_codec_coalesced_add(&m[i], f, cap, &l);
	sr_codec_coalesced_seal(f, l);
	free(m);
	*len = l;
	return f;
}

TEST(test_a_bad_coalesced_frame_closes_the_connection_and_delivers_nothing)
{
	struct node b;
	const uint32_t both = SR_FEATURE_BATCH | SR_FEATURE_COALESCE;
	CHECK_EQ(raw_target_open(&b), 0);

	/* a good frame from node 3 is delivered */
	size_t len;
	uint8_t *f = frame_from(10, 3, &len);
	CHECK_EQ(raw_delivered(&b, both, f, len, 10), 10);
	CHECK_EQ(node_stats(&b).coalesced_msgs_recv, 10);
	free(f);

	/* the frame claims another sender: nothing is delivered */
	b.got = 0;
	f = frame_from(10, 1, &len);
	CHECK_EQ(raw_closed_after(&b, both, f, len), 1);
	CHECK_EQ(b.got, 0);
	CHECK(node_logged(&b, "message from 1 to 2 in a coalesced frame"));
	CHECK_EQ(node_stats(&b).proto_errors, 1);
	free(f);

	/* a count that disagrees with the length (CRC fixed up) */
	f = frame_from(4, 3, &len);
	f[36] = 5;
	uint32_t crc = sr_crc32c(0, f, 16);
	crc = sr_crc32c(crc, f + 20, len - 20);
	for (int i = 0; i < 4; i++)
		f[16 + i] = (uint8_t)(crc >> (8 * i));
	CHECK_EQ(raw_closed_after(&b, both, f, len), 1);
	CHECK_EQ(b.got, 0);
	CHECK(node_logged(&b, "malformed (CRC, count, lengths or fields) "
			      "coalesced frame"));
	CHECK_EQ(node_stats(&b).proto_errors, 2);
	free(f);
	node_close(&b);

	/* a node that did not offer coalescing refuses such a frame */
	node_init(&b, 2, 7, 0);
	b.cfg.coalesce_max_bytes = 0;
	CHECK_EQ(node_open(&b), 0);
	CHECK_EQ(sr_tcp_set_peer(b.tcp, 3, "127.0.0.1:1"), 0);
	f = frame_from(3, 3, &len);
	CHECK_EQ(raw_closed_after(&b, both, f, len), 1);
	CHECK_EQ(b.got, 0);
	CHECK(node_logged(&b, "does not take them"));
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
