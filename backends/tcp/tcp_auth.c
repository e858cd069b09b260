/*
 * tcp_auth.c — the authenticated handshake of the TCP transport: both
 * ends of a connection prove that they know the cluster's shared secret
 * before any Raft message crosses it (docs/wire-protocol.md,
 * "Authenticated handshake").
 *
 * Without a secret (the default, for loopback demos) a connection starts
 * with the plain hello of tcp_in.c and nothing here runs except the
 * refusal of a peer that tries to authenticate.  With one:
 *
 *   connector                                acceptor
 *   AUTH_HELLO: hello fields, nonce_c  --->  identity checks as for a
 *                                            hello; nonce_c not seen
 *                                            recently
 *                                      <---  CHALLENGE: nonce_a,
 *                                            MAC(acceptor, hello, nonce_a)
 *   check the acceptor's MAC
 *   PROOF: MAC(connector, hello, nonce_a) --->  check; the connection
 *   then messages, as without a secret         is bound to its peer
 *
 * Each nonce is 32 bytes from getrandom(2), fresh for every connection,
 * so a recorded handshake never verifies again: the other side's nonce
 * is new.  The MAC (HMAC-SHA-256, sha256.c) covers a context string, the
 * prover's side, the whole auth hello as sent (cluster id, both node ids,
 * the advertised address, nonce_c) and nonce_a: a proof made by one side
 * is never valid for the other (reflection), for another pair of nodes,
 * another cluster, or another connection.  MACs are compared in
 * constant time.  A node can hold a second, previous secret during a
 * rotation: it proves with the current one and accepts proofs made with
 * either.
 *
 * Nothing after the PROOF carries the secret or a MAC: the handshake
 * authenticates who opened the connection, it does not protect the
 * stream from someone on the path who can inject into or take over an
 * established TCP connection (that takes TLS; see docs/operations.md).
 *
 * Every refusal closes the connection with a WARN line naming the peer's
 * address, the node id it claimed and the reason, and is counted in
 * sr_tcp_auth_stats: a wrong proof (wrong secret, or a replay), a
 * replayed nonce, a plain hello to a node that has a secret, an auth
 * hello to a node without one, and malformed or out-of-order handshake
 * frames.
 *
 * The acceptor writes exactly once on an accepted connection, the
 * 84-byte challenge, while the socket's send buffer is empty; if the
 * kernel does not take it whole the connection is closed rather than
 * buffered.  The connector writes its auth hello directly the same way,
 * and its proof travels at the front of the send queue, so the messages
 * queued while it connected follow it in order.
 */
#include "sha256.h"
#include "tcp_int.h"

#include "internal/frame.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------ */
/* Keys and counters                                                  */
/* ------------------------------------------------------------------ */

static int key_copy(sr_tcp *t, const void *src, size_t len, uint8_t **out)
{
	*out = NULL;
	if (!src)
		return 0;
	*out = tcp_realloc(t, NULL, 0, len);
	if (!*out)
		return SR_ENOMEM;
	memcpy(*out, src, len);
	return 0;
}

int tcp_auth_check_config(const sr_tcp_config *c)
{
	if (c->secret &&
	    (c->secret_len < TCP_SECRET_MIN || c->secret_len > TCP_SECRET_MAX))
		return SR_EINVAL;
	if (!c->secret && (c->secret_len || c->secret_prev))
		return SR_EINVAL; /* a previous secret needs a current one */
	if (c->secret_prev && (c->secret_prev_len < TCP_SECRET_MIN ||
			       c->secret_prev_len > TCP_SECRET_MAX))
		return SR_EINVAL;
	if (!c->secret_prev && c->secret_prev_len)
		return SR_EINVAL;
	return 0;
}

int tcp_auth_init(sr_tcp *t)
{
	struct tcp_auth *a = &t->auth;
	int rc = key_copy(t, t->cfg.secret, t->cfg.secret_len, &a->key);
	if (!rc)
		rc = key_copy(t, t->cfg.secret_prev, t->cfg.secret_prev_len,
			      &a->key_prev);
	if (rc) {
		tcp_auth_free(t);
		return rc;
	}
	a->key_len = a->key ? t->cfg.secret_len : 0;
	a->key_prev_len = a->key_prev ? t->cfg.secret_prev_len : 0;
	/* The caller's buffers are not ours to keep pointing at. */
	t->cfg.secret = NULL;
	t->cfg.secret_prev = NULL;
	return 0;
}

void tcp_auth_free(sr_tcp *t)
{
	struct tcp_auth *a = &t->auth;
	if (a->key) {
		secure_wipe(a->key, t->cfg.secret_len);
		tcp_free(t, a->key, t->cfg.secret_len);
	}
	if (a->key_prev) {
		secure_wipe(a->key_prev, t->cfg.secret_prev_len);
		tcp_free(t, a->key_prev, t->cfg.secret_prev_len);
	}
	a->key = a->key_prev = NULL;
}

SR_API void sr_tcp_auth_stats_get(const sr_tcp *t, sr_tcp_auth_stats *out)
{
	*out = t->auth.st;
	out->enabled = t->auth.key != NULL;
}

/* Count a refusal of kind *what. */
static void auth_fail(sr_tcp *t, uint64_t *what)
{
	t->auth.st.failures++;
	(*what)++;
}

/* 1 if mac is the proof of `prover` under the current or previous key. */
static int mac_ok(const sr_tcp *t, int prover, const uint8_t *hello,
		  const uint8_t *nonce_a, const uint8_t *mac)
{
	uint8_t want[TCP_MAC_SIZE];
	int ok;

	tcp_auth_mac(t->auth.key, t->auth.key_len, prover, hello, nonce_a,
		     want);
	ok = ct_equal(want, mac, TCP_MAC_SIZE);
	if (t->auth.key_prev) {
		tcp_auth_mac(t->auth.key_prev, t->auth.key_prev_len, prover,
			     hello, nonce_a, want);
		ok |= ct_equal(want, mac, TCP_MAC_SIZE);
	}
	secure_wipe(want, sizeof(want));
	return ok;
}

static int fresh_nonce(uint8_t nonce[TCP_NONCE_SIZE])
{
	size_t got = 0;
	while (got < TCP_NONCE_SIZE) {
		ssize_t n = getrandom(nonce + got, TCP_NONCE_SIZE - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return SR_EIO;
		got += (size_t)n;
	}
	return 0;
}

/* Write a whole small frame on a socket whose buffer is empty. */
static int write_small(int fd, const uint8_t *buf, size_t len)
{
	ssize_t n;
	do
		n = send(fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : SR_EIO;
}

/* ------------------------------------------------------------------ */
/* Acceptor                                                           */
/* ------------------------------------------------------------------ */

/* 1 if nonce was seen recently; otherwise remember it. */
static int nonce_replayed(struct tcp_auth *a, const uint8_t *nonce)
{
	for (unsigned i = 0; i < a->seen_n; i++)
		if (!memcmp(a->seen[i], nonce, TCP_NONCE_SIZE))
			return 1;
	memcpy(a->seen[a->seen_next], nonce, TCP_NONCE_SIZE);
	a->seen_next = (a->seen_next + 1) % TCP_SEEN_NONCES;
	if (a->seen_n < TCP_SEEN_NONCES)
		a->seen_n++;
	return 0;
}

static void in_refuse(sr_tcp *t, struct tcp_in *c, uint64_t *what,
		      const char *why)
{
	auth_fail(t, what);
	t->st.refused++;
	tcp_in_close(t, c, SR_LOG_WARN, why);
}

static void in_malformed(sr_tcp *t, struct tcp_in *c, const char *why)
{
	if (t->auth.key) /* without a secret it is just a bad hello */
		auth_fail(t, &t->auth.st.malformed);
	t->st.proto_errors++;
	tcp_in_close(t, c, SR_LOG_WARN, why);
}

/* An auth hello arrived at a node that has a secret. */
static void in_auth_hello(sr_tcp *t, struct tcp_in *c, const uint8_t *f,
			  size_t len)
{
	struct tcp_auth_in *ai = &c->auth;
	uint8_t nonce_c[TCP_NONCE_SIZE], mac[TCP_MAC_SIZE];
	uint8_t ch[TCP_CHALLENGE_FRAME];
	char why[160];
	sr_hello h;

	if (ai->wait_proof || tcp_auth_decode_hello(f, len, &h, nonce_c)) {
		in_malformed(t, c, "malformed handshake");
		return;
	}
	if (tcp_hello_check(t, c, &h))
		return; /* refused, as a plain hello would be */
	if (nonce_replayed(&t->auth, nonce_c)) {
		snprintf(why, sizeof(why),
			 "refused: replayed handshake from node %llu (its "
			 "nonce was seen before)",
			 (unsigned long long)h.from);
		in_refuse(t, c, &t->auth.st.replayed, why);
		return;
	}
	if (fresh_nonce(ai->nonce)) {
		tcp_in_close(t, c, SR_LOG_ERROR,
			     "getrandom failed: cannot authenticate");
		return;
	}
	memcpy(ai->hello, f + SR_FRAME_HDR_SIZE, TCP_AUTH_HELLO_PAYLOAD);
	ai->features = h.features;
	tcp_auth_mac(t->auth.key, t->auth.key_len, TCP_PROVER_ACCEPTOR,
		     ai->hello, ai->nonce, mac);
	tcp_auth_encode_challenge(ai->nonce, mac, ch);
	if (write_small(c->fd, ch, sizeof(ch))) {
		tcp_in_close(t, c, SR_LOG_WARN, "cannot write the challenge");
		return;
	}
	t->st.bytes_sent += sizeof(ch);
	ai->wait_proof = 1;
}

/* Refuse the sender of hello h, counted in *what: "refused: node <id>
 * <how>"; a frame that did not decode (rc != 0) is malformed instead. */
static void in_refuse_node(sr_tcp *t, struct tcp_in *c, int rc,
			   const sr_hello *h, uint64_t *what, const char *how)
{
	char why[200];

	if (rc) {
		in_malformed(t, c, "malformed handshake");
		return;
	}
	snprintf(why, sizeof(why), "refused: node %llu %s",
		 (unsigned long long)h->from, how);
	in_refuse(t, c, what, why);
}

/* The connector's proof: check it; 1 with the hello in *out when it
 * holds (the caller binds the connection), else the connection is
 * closed and 0. */
static int in_proof(sr_tcp *t, struct tcp_in *c, const uint8_t *f, size_t len,
		    sr_hello *out)
{
	struct tcp_auth_in *ai = &c->auth;
	uint8_t mac[TCP_MAC_SIZE];
	sr_hello h;

	if (!ai->wait_proof || tcp_auth_decode_proof(f, len, mac)) {
		const char *why_bad = "malformed handshake (a proof without "
				      "a challenge)";
		in_malformed(t, c,
			     ai->wait_proof ? "malformed handshake" : why_bad);
		return 0;
	}
	/* The hello was checked when it came; re-read it from our copy. */
	if (frame_get_hello(ai->hello, &h)) {
		in_malformed(t, c, "malformed handshake");
		return 0;
	}
	h.features = ai->features;
	if (!mac_ok(t, TCP_PROVER_CONNECTOR, ai->hello, ai->nonce, mac)) {
		in_refuse_node(t, c, 0, &h, &t->auth.st.bad_proof,
			       "failed authentication (wrong secret, or a "
			       "replayed handshake)");
		return 0;
	}
	ai->wait_proof = 0;
	t->auth.st.ok++;
	*out = h;
	return 1;
}

int tcp_auth_in_frame(sr_tcp *t, struct tcp_in *c, const uint8_t *f, size_t len,
		      uint32_t type, sr_hello *out)
{
	uint8_t nonce[TCP_NONCE_SIZE];
	char why[200];
	sr_hello h;

	if (type == SR_FRAME_HELLO && !c->auth.wait_proof) {
		/* only called for a plain hello when we have a secret */
		in_refuse_node(t, c, sr_codec_decode_hello(f, len, &h), &h,
			       &t->auth.st.no_auth,
			       "sent no authentication (this node requires the "
			       "cluster secret; is it set there?)");
	} else if (type == TCP_FRAME_AUTH_HELLO && !t->auth.key) {
		in_refuse_node(t, c, tcp_auth_decode_hello(f, len, &h, nonce),
			       &h, &t->auth.st.unexpected,
			       "authenticates with a secret, but this node has "
			       "none (set the same secret on every node)");
	} else if (type == TCP_FRAME_AUTH_HELLO) {
		in_auth_hello(t, c, f, len);
	} else if (type == TCP_FRAME_PROOF && t->auth.key) {
		return in_proof(t, c, f, len, out);
	} else if (c->auth.wait_proof) {
		snprintf(why, sizeof(why),
			 "malformed handshake (frame type %u where the "
			 "proof belongs)",
			 type);
		in_malformed(t, c, why);
	} else {
		in_malformed(t, c, "malformed handshake");
	}
	return 0;
}

void tcp_auth_in_hangup(sr_tcp *t, struct tcp_in *c, int err)
{
	char why[200];

	t->auth.st.abandoned++;
	snprintf(why, sizeof(why),
		 "node %llu %s after our challenge: it did not accept our "
		 "proof (a different secret there?)",
		 (unsigned long long)frame_get_le(c->auth.hello + 8, 8),
		 err ? strerror(err) : "hung up");
	tcp_in_close(t, c, SR_LOG_WARN, why);
}

/* ------------------------------------------------------------------ */
/* Connector                                                          */
/* ------------------------------------------------------------------ */

int tcp_auth_out_start(sr_tcp *t, struct tcp_peer *p)
{
	struct tcp_auth_out *ao = &p->auth;
	uint8_t f[TCP_AUTH_HELLO_FRAME];
	sr_hello h = {
		t->cfg.cluster_id, t->cfg.id, p->id, { 0 }, tcp_features(t)
	};

	memcpy(h.addr, t->advertise, SR_ADDR_MAX);
	if (fresh_nonce(ao->nonce)) {
		tcp_peer_close(t, p, SR_LOG_ERROR,
			       "getrandom failed: cannot authenticate");
		return SR_EIO;
	}
	if (tcp_auth_encode_hello(&h, ao->nonce, f)) {
		tcp_peer_close(t, p, SR_LOG_ERROR,
			       "advertised address does not fit a hello");
		return SR_EINVAL;
	}
	memcpy(ao->hello, f + SR_FRAME_HDR_SIZE, TCP_AUTH_HELLO_PAYLOAD);
	if (write_small(p->fd, f, sizeof(f))) {
		tcp_peer_close(t, p, SR_LOG_INFO, "cannot write the handshake");
		return SR_EIO;
	}
	t->st.bytes_sent += sizeof(f);
	ao->wait_challenge = 1;
	ao->rx_len = 0;
	return 0;
}

/* Refuse the acceptor: WARN on every refusal (peer_close alone would log
 * repeated failures at DEBUG), and back off as for any failed connect. */
static void out_refuse(sr_tcp *t, struct tcp_peer *p, uint64_t *what,
		       const char *why)
{
	auth_fail(t, what);
	if (p->attempts)
		tcp_log(t, SR_LOG_WARN, "peer %llu (%s): %s",
			(unsigned long long)p->id, p->addr, why);
	tcp_peer_close(t, p, SR_LOG_WARN, p->attempts ? NULL : why);
}

/* The acceptor's challenge is complete in ao->rx: check it, then put our
 * proof in the slot at the front of the queue. */
static int out_challenge(sr_tcp *t, struct tcp_peer *p)
{
	struct tcp_auth_out *ao = &p->auth;
	uint8_t nonce_a[TCP_NONCE_SIZE], mac[TCP_MAC_SIZE];
	char why[200];

	if (tcp_auth_decode_challenge(ao->rx, ao->rx_len, nonce_a, mac)) {
		out_refuse(t, p, &t->auth.st.malformed,
			   "refused: malformed challenge");
		return SR_EPROTO;
	}
	if (!mac_ok(t, TCP_PROVER_ACCEPTOR, ao->hello, nonce_a, mac)) {
		snprintf(why, sizeof(why),
			 "refused: node %llu failed authentication (wrong "
			 "secret, or not the node we meant to reach)",
			 (unsigned long long)p->id);
		out_refuse(t, p, &t->auth.st.bad_proof, why);
		return SR_EPROTO;
	}
	tcp_auth_mac(t->auth.key, t->auth.key_len, TCP_PROVER_CONNECTOR,
		     ao->hello, nonce_a, mac);
	/* queue_hello reserved the proof's slot; nothing was written yet */
	tcp_auth_encode_proof(mac, p->q);
	secure_wipe(mac, sizeof(mac));
	ao->wait_challenge = 0;
	t->auth.st.ok++;
	return 1;
}

int tcp_auth_out_read(sr_tcp *t, struct tcp_peer *p)
{
	struct tcp_auth_out *ao = &p->auth;
	char why[160];

	/* Read exactly the challenge: the acceptor sends nothing more. */
	ssize_t n = recv(p->fd, ao->rx + ao->rx_len,
			 TCP_CHALLENGE_FRAME - ao->rx_len, 0);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n <= 0) {
		snprintf(why, sizeof(why),
			 "%s while authenticating (does it have the same "
			 "secret?)",
			 n == 0 ? "closed by the peer" : strerror(errno));
		tcp_peer_close(t, p, SR_LOG_INFO, why);
		return SR_EIO;
	}
	t->st.bytes_recv += (uint64_t)n;
	if (ao->rx_len < SR_FRAME_HDR_SIZE &&
	    ao->rx_len + (size_t)n >= SR_FRAME_HDR_SIZE) {
		sr_frame_hdr h;
		if (tcp_auth_decode_header(ao->rx, ao->rx_len + (size_t)n, 1,
					   &h)) {
			out_refuse(t, p, &t->auth.st.malformed,
				   "refused: malformed challenge");
			return SR_EPROTO;
		}
	}
	ao->rx_len += (size_t)n;
	if (ao->rx_len < TCP_CHALLENGE_FRAME)
		return 0;
	return out_challenge(t, p);
}
