/*
 * test_tcp_auth.c — the authenticated handshake of the TCP transport
 * (backends/tcp/tcp_auth.c) between live transports on loopback, and
 * against raw sockets that play a peer byte for byte.
 *
 * Success: nodes with the same secret authenticate both ways and
 * deliver; a rotation (current and previous secret) keeps them talking;
 * a raw acceptor that knows the secret sees the documented frames, no
 * message before the connector has checked it, and never the secret.
 * Refusals, each closed with a WARN line naming the peer's address and
 * the reason, and counted: a wrong secret (on both sides), a peer with no
 * secret, a secret on one side only, a replayed handshake (caught by the
 * nonce cache, and by the MAC once the cache has forgotten), a reflected
 * proof, an acceptor that cannot prove itself (the connector sends it
 * nothing), and malformed or out-of-order handshake frames.
 */
#include <stdlib.h>

#include "../../backends/tcp/tcp_auth.h"
#include "harness.h"
#include "testlib.h"

static const char S1[] = "correct horse battery staple 1";
static const char S2[] = "another secret, for rotation 2";

static struct node A, B;
static uint64_t hb_seq;

static void use_secret(struct node *n, const char *s, const char *prev)
{
	n->cfg.secret = s;
	n->cfg.secret_len = s ? strlen(s) : 0;
	n->cfg.secret_prev = prev;
	n->cfg.secret_prev_len = prev ? strlen(prev) : 0;
}

/* A (1) and B (2) in cluster 7, with the secrets given; linked. */
static void setup(const char *sa, const char *sa_prev, const char *sb,
		  const char *sb_prev)
{
	if (sr_loop_create(NULL, &L))
		abort(); /* the test's own setup */
	node_init(&A, 1, 7, 0);
	node_init(&B, 2, 7, 0);
	use_secret(&A, sa, sa_prev);
	use_secret(&B, sb, sb_prev);
	if (node_open(&A) || node_open(&B))
		abort();
	link_nodes(&A, &B);
	hb_seq = 0;
}

static void teardown(void)
{
	node_close(&A);
	node_close(&B);
	sr_loop_destroy(L);
	L = NULL;
}

static sr_tcp_auth_stats auth_stats(const struct node *n)
{
	sr_tcp_auth_stats st;
	sr_tcp_auth_stats_get(n->tcp, &st);
	return st;
}

/* from gets a heartbeat through to `to` within ms; 1 if it did. */
static int gets_through(struct node *from, struct node *to, int ms)
{
	int before = to->got;
	uint64_t t0 = now_ms();
	while (to->got == before && now_ms() - t0 < (uint64_t)ms) {
		sr_msg m = heartbeat(from->cfg.id, to->cfg.id, ++hb_seq);
		sr_tcp_send(from->tcp, &m);
		run_for(10);
	}
	return to->got > before;
}

static void expect_log(const struct node *n, const char *what)
{
	if (!node_logged(n, what))
		TEST_FAIL("no '%s' in the log of node %llu:\n%s", what,
			  (unsigned long long)n->cfg.id, n->log);
}

/* ---- raw peers --------------------------------------------------- */

/* Receive exactly n bytes on fd (turning the loop meanwhile); 0 or -1. */
static int raw_recv_n(int fd, uint8_t *buf, size_t n, int ms)
{
	size_t got = 0;
	uint64_t t0 = now_ms();
	while (got < n && now_ms() - t0 < (uint64_t)ms) {
		ssize_t r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
		if (r == 0)
			return -1;
		if (r > 0)
			got += (size_t)r;
		else
			sr_loop_run_once(L, 5);
	}
	return got == n ? 0 : -1;
}

/* A listening socket on loopback (non-blocking); its port in *port. */
static int raw_listen(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(fd, 8) || getsockname(fd, (struct sockaddr *)&sa, &len))
		abort();
	*port = ntohs(sa.sin_port);
	return fd;
}

static int raw_accept(int lfd, int ms)
{
	int fd = -1;
	RUN_UNTIL((fd = accept(lfd, NULL, NULL)) >= 0, ms);
	return fd;
}

/* A raw connector's auth hello as node `from`, with a fixed nonce. */
static void raw_auth_hello(uint8_t out[TCP_AUTH_HELLO_FRAME], sr_id from,
			   sr_id to, uint8_t fill)
{
	sr_hello h = { 7, from, to, "", 0 };
	uint8_t nonce[TCP_NONCE_SIZE];
	memset(nonce, fill, sizeof(nonce));
	CHECK(tcp_auth_encode_hello(&h, nonce, out) == 0);
}

/* A hand-made frame of `type` with payload p (plen bytes). */
static size_t raw_frame(uint8_t *out, uint32_t type, const void *p,
			uint32_t plen)
{
	memset(out, 0, SR_FRAME_HDR_SIZE);
	uint32_t v[5] = { SR_FRAME_MAGIC, 0, 0, plen, 0 };
	memcpy(out, &v[0], 4);
	out[4] = 1;
	out[6] = (uint8_t)type;
	out[7] = (uint8_t)(type >> 8);
	memcpy(out + 12, &v[3], 4);
	memcpy(out + SR_FRAME_HDR_SIZE, p, plen);
	uint32_t crc = sr_crc32c(0, out, 16);
	crc = sr_crc32c(crc, out + SR_FRAME_HDR_SIZE, plen);
	memcpy(out + 16, &crc, 4);
	return SR_FRAME_HDR_SIZE + plen;
}

/* ---- the documented bytes ---------------------------------------- */

static void unhex(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

/*
 * The worked example of docs/wire-protocol.md ("Authenticated
 * handshake"): secret "0123456789abcdef", cluster 0xc1, node 2 to node
 * 3 advertising 127.0.0.1:7002, nonce_c 32 x 0x11, nonce_a 32 x 0x22.
 * The expected headers and MACs were computed from the document's
 * description with another implementation (Python's hmac and hashlib).
 */
TEST(test_the_documented_handshake_bytes)
{
	static const char key[] = "0123456789abcdef";
	sr_hello h = { 0xc1, 2, 3, "127.0.0.1:7002", 0 };
	uint8_t nc[TCP_NONCE_SIZE], na[TCP_NONCE_SIZE], mac[TCP_MAC_SIZE];
	uint8_t hello[TCP_AUTH_HELLO_FRAME], ch[TCP_CHALLENGE_FRAME];
	uint8_t proof[TCP_PROOF_FRAME], want[TCP_MAC_SIZE], hdr[20];

	memset(nc, 0x11, sizeof(nc));
	memset(na, 0x22, sizeof(na));
	CHECK(tcp_auth_encode_hello(&h, nc, hello) == 0);
	unhex("535241460100410000000000b80000003c6dd90b", hdr, 20);
	CHECK(memcmp(hello, hdr, 20) == 0);

	tcp_auth_mac((const uint8_t *)key, 16, TCP_PROVER_ACCEPTOR,
		     hello + SR_FRAME_HDR_SIZE, na, mac);
	unhex("38050cd8ac942e6fc7caf2cafc9b457860c2cbd76adb55efeda7159d41026"
	      "ef6",
	      want, 32);
	CHECK(memcmp(mac, want, 32) == 0);
	tcp_auth_encode_challenge(na, mac, ch);
	unhex("535241460100420000000000400000009797f861", hdr, 20);
	CHECK(memcmp(ch, hdr, 20) == 0);

	tcp_auth_mac((const uint8_t *)key, 16, TCP_PROVER_CONNECTOR,
		     hello + SR_FRAME_HDR_SIZE, na, mac);
	unhex("700090342940afcbf42a22e2782b76774ad4f817bf962cb28705a0d1b1379"
	      "cea",
	      want, 32);
	CHECK(memcmp(mac, want, 32) == 0);
	tcp_auth_encode_proof(mac, proof);
	unhex("53524146010043000000000020000000", hdr, 16);
	unhex("9262a5c4", hdr + 16, 4);
	CHECK(memcmp(proof, hdr, 20) == 0);
}

/* ---- success ----------------------------------------------------- */

TEST(test_nodes_with_the_same_secret_authenticate_and_talk)
{
	setup(S1, NULL, S1, NULL);
	CHECK(gets_through(&A, &B, 3000));
	CHECK(gets_through(&B, &A, 3000));
	sr_tcp_auth_stats a = auth_stats(&A), b = auth_stats(&B);
	CHECK(a.enabled && b.enabled);
	/* each proved itself as connector and checked the other's proof */
	CHECK_EQ(a.ok, 2);
	CHECK_EQ(b.ok, 2);
	CHECK_EQ(a.failures + b.failures, 0);
	expect_log(&B, "node 1 (authenticated)");
	CHECK_EQ(A.warns + B.warns, 0);
	teardown();
}

TEST(test_a_rotation_keeps_the_cluster_talking)
{
	/* mid-rotation: A still proves with S1 and accepts S2, B already
	 * proves with S2 and still accepts S1 */
	setup(S1, S2, S2, S1);
	CHECK(gets_through(&A, &B, 3000));
	CHECK(gets_through(&B, &A, 3000));
	CHECK_EQ(auth_stats(&A).failures + auth_stats(&B).failures, 0);
	teardown();
}

TEST(test_bad_secrets_are_refused_by_create)
{
	if (sr_loop_create(NULL, &L))
		abort();
	struct node n;
	node_init(&n, 1, 7, 0);
	use_secret(&n, "short", NULL); /* under 16 bytes */
	CHECK_EQ(node_open(&n), SR_EINVAL);
	use_secret(&n, NULL, S1); /* a previous secret alone */
	CHECK_EQ(node_open(&n), SR_EINVAL);
	use_secret(&n, S1, "short");
	CHECK_EQ(node_open(&n), SR_EINVAL);
	use_secret(&n, S1, NULL);
	n.cfg.secret_len = 1025;
	CHECK_EQ(node_open(&n), SR_EINVAL);
	CHECK_EQ(n.ca.live, 0);
	sr_loop_destroy(L);
	L = NULL;
}

/*
 * A raw acceptor that knows the secret: it sees the auth hello as
 * documented, nothing more until it has proved itself, then the proof
 * and the messages queued meanwhile — and nowhere the secret.
 */
TEST(test_the_connector_sends_nothing_before_the_acceptor_proves_itself)
{
	if (sr_loop_create(NULL, &L))
		abort();
	node_init(&A, 1, 7, 0);
	use_secret(&A, S1, NULL);
	CHECK_EQ(node_open(&A), 0);
	int port, lfd = raw_listen(&port);
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	CHECK_EQ(sr_tcp_set_peer(A.tcp, 2, addr), 0);
	int fd = raw_accept(lfd, 2000);
	CHECK(fd >= 0);

	uint8_t hello[TCP_AUTH_HELLO_FRAME];
	CHECK_EQ(raw_recv_n(fd, hello, sizeof(hello), 2000), 0);
	sr_hello h;
	uint8_t nonce_c[TCP_NONCE_SIZE];
	CHECK_EQ(tcp_auth_decode_hello(hello, sizeof(hello), &h, nonce_c), 0);
	CHECK_EQ(h.cluster, 7);
	CHECK_EQ(h.from, 1);
	CHECK_EQ(h.to, 2);
	CHECK_EQ(hello[6], TCP_FRAME_AUTH_HELLO);

	/* messages queued now wait behind the handshake */
	hb_seq = 0;
	for (int i = 0; i < 3; i++) {
		sr_msg m = heartbeat(1, 2, ++hb_seq);
		CHECK_EQ(sr_tcp_send(A.tcp, &m), 0);
	}
	run_for(100);
	uint8_t junk[16];
	CHECK(recv(fd, junk, sizeof(junk), MSG_DONTWAIT) < 0 &&
	      errno == EAGAIN);

	/* prove ourselves; A answers with its proof, then the messages */
	uint8_t nonce_a[TCP_NONCE_SIZE], mac[TCP_MAC_SIZE];
	uint8_t ch[TCP_CHALLENGE_FRAME];
	memset(nonce_a, 0x5a, sizeof(nonce_a));
	tcp_auth_mac((const uint8_t *)S1, strlen(S1), TCP_PROVER_ACCEPTOR,
		     hello + SR_FRAME_HDR_SIZE, nonce_a, mac);
	tcp_auth_encode_challenge(nonce_a, mac, ch);
	CHECK_EQ(raw_send(fd, ch, sizeof(ch)), 0);

	uint8_t proof[TCP_PROOF_FRAME], got[TCP_MAC_SIZE];
	CHECK_EQ(raw_recv_n(fd, proof, sizeof(proof), 2000), 0);
	CHECK_EQ(tcp_auth_decode_proof(proof, sizeof(proof), got), 0);
	tcp_auth_mac((const uint8_t *)S1, strlen(S1), TCP_PROVER_CONNECTOR,
		     hello + SR_FRAME_HDR_SIZE, nonce_a, mac);
	CHECK(memcmp(got, mac, sizeof(mac)) == 0);

	uint8_t stream[3 * 80];
	CHECK_EQ(raw_recv_n(fd, stream, sizeof(stream), 2000), 0);
	sr_decoder d;
	sr_decoder_init(&d, 0, 0, NULL);
	size_t off = 0;
	for (int i = 0; i < 3; i++) {
		sr_msg m;
		size_t flen;
		CHECK_EQ(sr_codec_decode(&d, stream + off, sizeof(stream) - off,
					 &m, &flen),
			 0);
		CHECK_EQ(m.u.append.seq, (uint64_t)i + 1);
		off += flen;
	}
	sr_decoder_free(&d);
	/* the secret is in none of the bytes A sent */
	uint8_t all[sizeof(hello) + sizeof(proof) + sizeof(stream)];
	memcpy(all, hello, sizeof(hello));
	memcpy(all + sizeof(hello), proof, sizeof(proof));
	memcpy(all + sizeof(hello) + sizeof(proof), stream, sizeof(stream));
	CHECK(memmem(all, sizeof(all), S1, 8) == NULL);
	CHECK_EQ(auth_stats(&A).ok, 1);
	close(fd);
	close(lfd);
	node_close(&A);
	sr_loop_destroy(L);
	L = NULL;
}

/* ---- refusals ---------------------------------------------------- */

TEST(test_a_wrong_secret_is_refused_on_both_sides)
{
	setup(S1, NULL, S2, NULL);
	CHECK(!gets_through(&A, &B, 500));
	CHECK(!gets_through(&B, &A, 300));
	RUN_UNTIL(auth_stats(&A).bad_proof >= 2 &&
			  auth_stats(&B).bad_proof >= 2,
		  3000);
	sr_tcp_auth_stats a = auth_stats(&A), b = auth_stats(&B);
	/* as acceptor each refuses the other's proof; as connector each
	 * refuses the other's challenge and sends it nothing */
	CHECK(a.bad_proof >= 2 && b.bad_proof >= 2);
	CHECK_EQ(a.failures, a.bad_proof);
	CHECK_EQ(a.ok + b.ok, 0);
	expect_log(&B, "connection from 127.0.0.1:");
	expect_log(&B, "refused: node 1 failed authentication (wrong secret");
	expect_log(&A, "peer 2 (127.0.0.1:");
	expect_log(&A, "refused: node 2 failed authentication");
	CHECK_EQ(A.got + B.got, 0);
	teardown();
}

/* accept_unknown_peers makes a node that proved the secret a peer; one
 * that did not is refused before it can become one, and the connector
 * keeps backing off instead of hammering. */
TEST(test_unknown_nodes_join_only_with_the_secret)
{
	setup(S1, NULL, S1, NULL);
	node_close(&B);
	node_init(&B, 2, 7, 0);
	use_secret(&B, S1, NULL);
	B.cfg.accept_unknown_peers = 1;
	CHECK_EQ(node_open(&B), 0);
	struct node C;
	node_init(&C, 9, 7, 0);
	use_secret(&C, S2, NULL);
	CHECK_EQ(node_open(&C), 0);
	char baddr[64];
	node_addr(&B, baddr, sizeof(baddr));
	sr_tcp_set_peer(C.tcp, 2, baddr);
	run_for(1000);
	sr_tcp_peer_info pi;
	CHECK_EQ(sr_tcp_peer_get(B.tcp, 9, &pi), SR_ENOTFOUND);
	/* C, the connector, sees B's proof fail first and hangs up; B
	 * counts the hang-ups */
	uint64_t fails = auth_stats(&C).bad_proof;
	CHECK(fails >= 1);
	/* backoff: with reconnect_max_ms 200, about 7 attempts in 1 s */
	CHECK(fails <= 12);
	RUN_UNTIL(auth_stats(&B).abandoned >= 1, 1000);
	CHECK(auth_stats(&B).abandoned >= 1);
	CHECK_EQ(auth_stats(&B).failures, 0);
	expect_log(&C, "refused: node 2 failed authentication");
	expect_log(&B, "node 9 hung up after our challenge");
	CHECK_EQ(B.got, 0);
	node_close(&C);

	node_init(&C, 9, 7, 0);
	use_secret(&C, S1, NULL);
	CHECK_EQ(node_open(&C), 0);
	sr_tcp_set_peer(C.tcp, 2, baddr);
	RUN_UNTIL(sr_tcp_peer_get(B.tcp, 9, &pi) == 0, 3000);
	CHECK_EQ(sr_tcp_peer_get(B.tcp, 9, &pi), 0);
	CHECK(gets_through(&C, &B, 3000));
	CHECK(gets_through(&B, &C, 3000));
	node_close(&C);
	teardown();
}

TEST(test_a_peer_without_the_secret_is_refused)
{
	setup(S1, NULL, S1, NULL);
	sr_tcp_set_peer(B.tcp, 3, "127.0.0.1:1"); /* known, never reached */
	int fd = raw_connect(sr_tcp_port(B.tcp));
	CHECK(fd >= 0);
	CHECK_EQ(raw_hello(fd, 7, 3, 2), 0); /* a plain hello */
	uint8_t f[128];
	sr_msg m = heartbeat(3, 2, 1);
	size_t len = 0;
	sr_codec_encode(&m, f, sizeof(f), &len);
	raw_send(fd, f, len);
	RUN_UNTIL(raw_closed(fd), 2000);
	CHECK(raw_closed(fd));
	close(fd);
	expect_log(&B, "refused: node 3 sent no authentication");
	CHECK_EQ(auth_stats(&B).no_auth, 1);
	CHECK_EQ(auth_stats(&B).failures, 1);
	CHECK_EQ(B.got, 0);
	CHECK(gets_through(&A, &B, 3000)); /* the others go on */
	teardown();
}

TEST(test_a_secret_on_one_side_only_is_refused_both_ways)
{
	setup(NULL, NULL, S1, NULL);
	CHECK(!gets_through(&A, &B, 500));
	CHECK(!gets_through(&B, &A, 300));
	RUN_UNTIL(auth_stats(&B).no_auth >= 1 && auth_stats(&A).unexpected >= 1,
		  3000);
	/* B (secret) refuses A's plain hello; A (none) refuses B's */
	CHECK(auth_stats(&B).no_auth >= 1);
	CHECK(auth_stats(&A).unexpected >= 1);
	CHECK(!auth_stats(&A).enabled);
	expect_log(&B, "refused: node 1 sent no authentication");
	expect_log(&A, "refused: node 2 authenticates with a secret, but this "
		       "node has none");
	CHECK_EQ(A.got + B.got, 0);
	teardown();
}

/*
 * Record a complete, valid handshake of A's (as a raw acceptor that
 * knows the secret), then replay A's bytes to B: B's fresh nonce makes
 * the recorded proof worthless, and B's nonce cache names the replay.
 */
TEST(test_a_replayed_handshake_is_refused)
{
	setup(S1, NULL, S1, NULL);
	int port, lfd = raw_listen(&port);
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	/* A's peer 2 is now the recorder */
	CHECK_EQ(sr_tcp_set_peer(A.tcp, 2, addr), 0);
	int fd = raw_accept(lfd, 2000);
	CHECK(fd >= 0);
	uint8_t hello[TCP_AUTH_HELLO_FRAME];
	CHECK_EQ(raw_recv_n(fd, hello, sizeof(hello), 2000), 0);
	uint8_t nonce_a[TCP_NONCE_SIZE], mac[TCP_MAC_SIZE];
	uint8_t ch[TCP_CHALLENGE_FRAME], proof[TCP_PROOF_FRAME];
	memset(nonce_a, 0x33, sizeof(nonce_a));
	tcp_auth_mac((const uint8_t *)S1, strlen(S1), TCP_PROVER_ACCEPTOR,
		     hello + SR_FRAME_HDR_SIZE, nonce_a, mac);
	tcp_auth_encode_challenge(nonce_a, mac, ch);
	CHECK_EQ(raw_send(fd, ch, sizeof(ch)), 0);
	CHECK_EQ(raw_recv_n(fd, proof, sizeof(proof), 2000), 0);
	close(fd);
	close(lfd);
	char baddr[64];
	node_addr(&B, baddr, sizeof(baddr));
	sr_tcp_set_peer(A.tcp, 2, baddr);
	run_for(50);
	uint64_t refused = node_stats(&B).refused;
	uint64_t ok = auth_stats(&B).ok;

	/* 1: B has not seen the nonce; the old proof fails its MAC */
	fd = raw_connect(sr_tcp_port(B.tcp));
	CHECK(fd >= 0);
	CHECK_EQ(raw_send(fd, hello, sizeof(hello)), 0);
	CHECK_EQ(raw_recv_n(fd, ch, sizeof(ch), 2000), 0);
	CHECK_EQ(raw_send(fd, proof, sizeof(proof)), 0);
	RUN_UNTIL(raw_closed(fd), 2000);
	CHECK(raw_closed(fd));
	close(fd);
	expect_log(&B, "refused: node 1 failed authentication (wrong secret, "
		       "or a replayed handshake)");
	CHECK_EQ(auth_stats(&B).bad_proof, 1);

	/* 2: again: now the nonce itself gives it away */
	fd = raw_connect(sr_tcp_port(B.tcp));
	CHECK_EQ(raw_send(fd, hello, sizeof(hello)), 0);
	raw_send(fd, proof, sizeof(proof));
	RUN_UNTIL(raw_closed(fd), 2000);
	CHECK(raw_closed(fd));
	close(fd);
	expect_log(&B, "refused: replayed handshake from node 1");
	CHECK_EQ(auth_stats(&B).replayed, 1);
	CHECK_EQ(auth_stats(&B).failures, 2);
	CHECK_EQ(node_stats(&B).refused, refused + 2);
	CHECK_EQ(auth_stats(&B).ok, ok);   /* nothing was accepted */
	CHECK(gets_through(&A, &B, 3000)); /* the real A still can */
	teardown();
}

/* The acceptor's own proof sent back as the connector's: the prover's
 * side is under the MAC, so it fails. */
TEST(test_a_reflected_proof_is_refused)
{
	setup(S1, NULL, S1, NULL);
	sr_tcp_set_peer(B.tcp, 3, "127.0.0.1:1");
	int fd = raw_connect(sr_tcp_port(B.tcp));
	uint8_t hello[TCP_AUTH_HELLO_FRAME], ch[TCP_CHALLENGE_FRAME];
	uint8_t proof[TCP_PROOF_FRAME];
	raw_auth_hello(hello, 3, 2, 0x77);
	CHECK_EQ(raw_send(fd, hello, sizeof(hello)), 0);
	CHECK_EQ(raw_recv_n(fd, ch, sizeof(ch), 2000), 0);
	uint8_t nonce_a[TCP_NONCE_SIZE], mac[TCP_MAC_SIZE];
	CHECK_EQ(tcp_auth_decode_challenge(ch, sizeof(ch), nonce_a, mac), 0);
	tcp_auth_encode_proof(mac, proof);
	CHECK_EQ(raw_send(fd, proof, sizeof(proof)), 0);
	RUN_UNTIL(raw_closed(fd), 2000);
	CHECK(raw_closed(fd));
	close(fd);
	expect_log(&B, "refused: node 3 failed authentication");
	CHECK_EQ(auth_stats(&B).bad_proof, 1);
	CHECK_EQ(B.got, 0);
	teardown();
}

/* A connector whose acceptor cannot prove the secret sends it nothing
 * after the hello. */
TEST(test_an_acceptor_without_the_secret_gets_nothing)
{
	if (sr_loop_create(NULL, &L))
		abort();
	node_init(&A, 1, 7, 0);
	use_secret(&A, S1, NULL);
	CHECK_EQ(node_open(&A), 0);
	int port, lfd = raw_listen(&port);
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	CHECK_EQ(sr_tcp_set_peer(A.tcp, 2, addr), 0);
	int fd = raw_accept(lfd, 2000);
	CHECK(fd >= 0);
	uint8_t hello[TCP_AUTH_HELLO_FRAME], ch[TCP_CHALLENGE_FRAME];
	CHECK_EQ(raw_recv_n(fd, hello, sizeof(hello), 2000), 0);
	sr_msg m = heartbeat(1, 2, 1);
	sr_tcp_send(A.tcp, &m);
	uint8_t nonce_a[TCP_NONCE_SIZE], mac[TCP_MAC_SIZE];
	memset(nonce_a, 1, sizeof(nonce_a));
	tcp_auth_mac((const uint8_t *)S2, strlen(S2), TCP_PROVER_ACCEPTOR,
		     hello + SR_FRAME_HDR_SIZE, nonce_a, mac);
	tcp_auth_encode_challenge(nonce_a, mac, ch);
	CHECK_EQ(raw_send(fd, ch, sizeof(ch)), 0);
	RUN_UNTIL(raw_closed(fd), 2000);
	CHECK(raw_closed(fd)); /* closed without a byte more */
	expect_log(&A, "refused: node 2 failed authentication (wrong secret, "
		       "or not the node we meant to reach)");
	CHECK_EQ(auth_stats(&A).bad_proof, 1);
	close(fd);
	close(lfd);
	node_close(&A);
	sr_loop_destroy(L);
	L = NULL;
}

/* Send bytes on a fresh connection to B; B must close it and log why. */
static void refused_with(const uint8_t *bytes, size_t len, const char *why)
{
	int fd = raw_connect(sr_tcp_port(B.tcp));
	CHECK(fd >= 0);
	raw_send(fd, bytes, len);
	RUN_UNTIL(raw_closed(fd), 2000);
	CHECK(raw_closed(fd));
	close(fd);
	expect_log(&B, why);
}

TEST(test_malformed_handshakes_are_refused)
{
	setup(S1, NULL, S1, NULL);
	sr_tcp_set_peer(B.tcp, 3, "127.0.0.1:1");
	uint8_t buf[512], hello[TCP_AUTH_HELLO_FRAME];
	uint8_t mac[TCP_MAC_SIZE] = { 0 };
	uint64_t n = 0;

	/* bad CRC on the auth hello */
	raw_auth_hello(hello, 3, 2, 0x11);
	hello[sizeof(hello) - 1] ^= 1;
	refused_with(hello, sizeof(hello), "malformed handshake");
	CHECK_EQ(auth_stats(&B).malformed, ++n);

	/* an address without its NUL */
	raw_auth_hello(hello, 3, 2, 0x12);
	memset(hello + SR_FRAME_HDR_SIZE + 24, 'x', SR_ADDR_MAX);
	size_t len = raw_frame(buf, TCP_FRAME_AUTH_HELLO,
			       hello + SR_FRAME_HDR_SIZE,
			       TCP_AUTH_HELLO_PAYLOAD);
	refused_with(buf, len, "malformed handshake");
	CHECK_EQ(auth_stats(&B).malformed, ++n);

	/* a proof with no hello before it */
	tcp_auth_encode_proof(mac, buf);
	refused_with(buf, TCP_PROOF_FRAME, "a proof without a challenge");
	CHECK_EQ(auth_stats(&B).malformed, ++n);

	/* an auth hello one byte short: the length is checked first */
	len = raw_frame(buf, TCP_FRAME_AUTH_HELLO, hello + SR_FRAME_HDR_SIZE,
			TCP_AUTH_HELLO_PAYLOAD - 1);
	refused_with(buf, len, "bad frame header");

	/* a challenge sent to the acceptor */
	len = raw_frame(buf, TCP_FRAME_CHALLENGE, mac, 32);
	memcpy(buf + len, mac, 32); /* pad: 64-byte payload */
	len = raw_frame(buf, TCP_FRAME_CHALLENGE, buf + SR_FRAME_HDR_SIZE, 64);
	refused_with(buf, len, "bad frame header");

	/* a message where the proof belongs */
	raw_auth_hello(hello, 3, 2, 0x13);
	memcpy(buf, hello, sizeof(hello));
	sr_msg m = heartbeat(3, 2, 1);
	sr_codec_encode(&m, buf + sizeof(hello), sizeof(buf) - sizeof(hello),
			&len);
	refused_with(buf, sizeof(hello) + len,
		     "frame type 3 where the proof belongs");
	CHECK_EQ(auth_stats(&B).malformed, ++n);

	/* a second auth hello where the proof belongs */
	raw_auth_hello(buf, 3, 2, 0x14);
	raw_auth_hello(buf + TCP_AUTH_HELLO_FRAME, 3, 2, 0x15);
	refused_with(buf, 2 * TCP_AUTH_HELLO_FRAME, "malformed handshake");
	CHECK_EQ(auth_stats(&B).malformed, ++n);

	CHECK_EQ(B.got, 0);
	CHECK(gets_through(&A, &B, 3000));
	teardown();
}

TEST(test_a_silent_connector_times_out)
{
	if (sr_loop_create(NULL, &L))
		abort();
	node_init(&B, 2, 7, 0);
	use_secret(&B, S1, NULL);
	B.cfg.handshake_timeout_ms = 200;
	CHECK_EQ(node_open(&B), 0);
	sr_tcp_set_peer(B.tcp, 3, "127.0.0.1:1");
	int fd = raw_connect(sr_tcp_port(B.tcp));
	uint8_t hello[TCP_AUTH_HELLO_FRAME], ch[TCP_CHALLENGE_FRAME];
	raw_auth_hello(hello, 3, 2, 0x21);
	CHECK_EQ(raw_send(fd, hello, sizeof(hello)), 0);
	CHECK_EQ(raw_recv_n(fd, ch, sizeof(ch), 2000), 0);
	/* no proof: the handshake deadline closes it */
	RUN_UNTIL(raw_closed(fd), 3000);
	CHECK(raw_closed(fd));
	close(fd);
	expect_log(&B, "no handshake in time");
	node_close(&B);
	sr_loop_destroy(L);
	L = NULL;
}

int main(int argc, char **argv)
{
	return test_main(argc, argv);
}
