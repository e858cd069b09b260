/*
 * tcp_conn.c — the sockets of the TCP transport: the listener, outgoing
 * connections (connect, handshake, writes) and accepted connections
 * (handshake check, frame parsing, delivery).
 *
 * Outgoing connection of a peer:
 *
 *   DOWN --connect()--> CONNECTING --writable, SO_ERROR 0--> UP
 *     ^                    |  timeout, error                  | error, EOF,
 *     +---- backoff <------+----------------------------------+ any data
 *
 * The hello frame is the first thing in the send queue of a new
 * connection, so it is written before any message.  With a secret,
 * tcp_auth.c runs the challenge-response instead while the connection is
 * still CONNECTING, and the queue starts with the slot for its proof.
 * After that the acceptor never writes, so an outgoing socket that
 * becomes readable has either closed (EOF, reset: the acceptor refused us
 * or went away) or broken the protocol; both close it.  Write interest is set only while a partial
 * write waits for room.
 *
 * Accepted connection: the first frame must be a hello, or with a secret
 * the auth hello and then the proof (tcp_auth.c; the payload limit until
 * then is the auth hello's, so an unauthenticated connection holds at
 * most 204 bytes); then message frames up to max_frame_bytes.  Frames are
 * parsed in place in the receive buffer and delivered to on_message with
 * pointers into it.  Any bad frame closes the connection with a logged
 * reason and nothing else.  Because on_message may close connections
 * (remove_peer, partition), a connection is marked busy while its read
 * callback runs and is freed only when the callback unwinds.
 */
#include "internal/rand.h"
#include "tcp_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Addresses                                                          */
/* ------------------------------------------------------------------ */

/* Split "host:port" or "[v6]:port" into host and port strings. */
static int addr_split(const char *addr, char *host, size_t hcap, char *port,
		      size_t pcap)
{
	const char *colon, *h = addr;
	size_t hlen;

	if (!addr || !*addr)
		return SR_EINVAL;
	if (*addr == '[') {
		const char *end = strchr(addr, ']');
		if (!end || end[1] != ':')
			return SR_EINVAL;
		h = addr + 1;
		hlen = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return SR_EINVAL;
		hlen = (size_t)(colon - addr);
	}
	size_t plen = strlen(colon + 1);
	if (hlen >= hcap || !plen || plen >= pcap)
		return SR_EINVAL;
	for (size_t i = 0; i < plen; i++)
		if (colon[1 + i] < '0' || colon[1 + i] > '9')
			return SR_EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = 0;
	memcpy(port, colon + 1, plen + 1);
	if (atoi(port) > 65535)
		return SR_EINVAL;
	return 0;
}

int tcp_addr_check(const char *addr)
{
	char host[SR_ADDR_MAX], port[8];
	return addr_split(addr, host, sizeof(host), port, sizeof(port));
}

/* Resolve addr (blocking for names; numeric hosts do not block). */
static int addr_resolve(const char *addr, int passive, struct addrinfo **out)
{
	char host[SR_ADDR_MAX], port[8];
	struct addrinfo hints;

	if (addr_split(addr, host, sizeof(host), port, sizeof(port)))
		return SR_EINVAL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	const char *node = host;
	if (passive && (!*host || !strcmp(host, "*")))
		node = NULL;
	return getaddrinfo(node, port, &hints, out) ? SR_EINVAL : 0;
}

static void addr_name(const struct sockaddr_storage *sa, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	if (sa->ss_family == AF_INET6)
		snprintf(buf, cap, "[%s]:%d", ip, port);
	else
		snprintf(buf, cap, "%s:%d", ip, port);
}

/* ------------------------------------------------------------------ */
/* Outgoing connections                                               */
/* ------------------------------------------------------------------ */

static void out_event(sr_loop *loop, int fd, int events, void *ctx);

/* Capped exponential backoff with "equal jitter": [d/2, d]. */
static uint64_t backoff_delay(sr_tcp *t, struct tcp_peer *p)
{
	uint64_t d = t->cfg.reconnect_min_ms;
	for (uint32_t i = 0; i < p->attempts && d < t->cfg.reconnect_max_ms;
	     i++)
		d *= 2;
	if (d > t->cfg.reconnect_max_ms)
		d = t->cfg.reconnect_max_ms;
	uint64_t r = rand_xorshift(&t->rng);
	return d / 2 + r % (d - d / 2 + 1);
}

void tcp_peer_close(sr_tcp *t, struct tcp_peer *p, int level,
		    const char *reason)
{
	uint64_t now = sr_loop_now_ms(t->loop);

	if (p->fd >= 0) {
		sr_loop_unwatch(t->loop, p->fd);
		close(p->fd);
		p->fd = -1;
	}
	if (p->state == SR_TCP_UP && now - p->up_since >= TCP_UP_RESET_MS)
		p->attempts = 0;
	if (reason)
		tcp_log(t, p->attempts ? SR_LOG_DEBUG : level,
			"peer %llu (%s): %s", (unsigned long long)p->id,
			p->addr, reason);
	p->state = SR_TCP_DOWN;
	tcp_auth_out_reset(p);
	tcp_queue_reset(t, p);
	p->retry_at = now + backoff_delay(t, p);
	p->attempts++;
	tcp_timer_arm(t);
}

static void set_sockopts(sr_tcp *t, int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (t->cfg.sndbuf_bytes) {
		int sb = (int)t->cfg.sndbuf_bytes;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	}
	if (t->cfg.user_timeout_ms) {
		unsigned ut = t->cfg.user_timeout_ms;
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
	}
}

/* Put the hello at the front of the (empty) queue. */
static int queue_hello(sr_tcp *t, struct tcp_peer *p)
{
	if (p->q_cap < TCP_QUEUE_HELLO) {
		void *q = tcp_realloc(t, p->q, p->q_cap, TCP_QUEUE_HELLO);
		if (!q)
			return SR_ENOMEM;
		p->q = q;
		p->q_cap = TCP_QUEUE_HELLO;
	}
	p->q_head = p->q_scan = 0;
	if (t->auth.key) {
		/* tcp_auth.c sends its hello itself and fills in this slot
		 * for the proof once the acceptor has proved itself */
		memset(p->q, 0, TCP_PROOF_FRAME);
		p->q_tail = TCP_PROOF_FRAME;
		t->st.queued_bytes += TCP_PROOF_FRAME;
		return 0;
	}
	sr_hello h = {
		t->cfg.cluster_id, t->cfg.id, p->id, { 0 }, tcp_features(t)
	};
	memcpy(h.addr, t->advertise, SR_ADDR_MAX);
	sr_codec_encode_hello(&h, p->q, p->q_cap);
	p->q_tail = SR_HELLO_FRAME_SIZE;
	t->st.queued_bytes += SR_HELLO_FRAME_SIZE;
	return 0;
}

static void out_established(sr_tcp *t, struct tcp_peer *p)
{
	p->state = SR_TCP_UP;
	p->up_since = sr_loop_now_ms(t->loop);
	t->st.connects++;
	tcp_log(t, p->attempts ? SR_LOG_DEBUG : SR_LOG_INFO,
		"peer %llu (%s): connected", (unsigned long long)p->id,
		p->addr);
	tcp_timer_arm(t);
	tcp_out_write(t, p);
}

/* The socket is connected: authenticate first if we have a secret. */
static void out_connected(sr_tcp *t, struct tcp_peer *p)
{
	if (!t->auth.key) {
		out_established(t, p);
		return;
	}
	if (tcp_auth_out_start(t, p))
		return; /* closed */
	if (sr_loop_watch(t->loop, p->fd, SR_LOOP_READ, out_event, p))
		tcp_peer_close(t, p, SR_LOG_WARN, "cannot watch the socket");
}

void tcp_out_connect(sr_tcp *t, struct tcp_peer *p)
{
	struct addrinfo *ai = NULL;
	char why[128];
	int fd = -1;

	if (p->state != SR_TCP_DOWN || p->cut)
		return;
	if (addr_resolve(p->addr, 0, &ai)) {
		tcp_peer_close(t, p, SR_LOG_WARN, "cannot resolve address");
		return;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		snprintf(why, sizeof(why), "socket: %s", strerror(errno));
		goto fail;
	}
	set_sockopts(t, fd);
	if (queue_hello(t, p)) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	if (rc < 0 && errno != EINPROGRESS) {
		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		goto fail;
	}
	if (sr_loop_watch(t->loop, fd, SR_LOOP_READ | SR_LOOP_WRITE, out_event,
			  p)) {
		snprintf(why, sizeof(why), "cannot watch the socket");
		goto fail;
	}
	freeaddrinfo(ai);
	p->fd = fd;
	p->state = SR_TCP_CONNECTING;
	p->connect_deadline = sr_loop_now_ms(t->loop) +
			      t->cfg.handshake_timeout_ms;
	if (rc == 0)
		out_connected(t, p);
	else
		tcp_timer_arm(t);
	return;
fail:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	tcp_peer_close(t, p, SR_LOG_INFO, why);
}

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
	       ((uint32_t)b[3] << 24);
}

/* Messages in the (sealed, our own) batch of plen payload bytes at f. */
static uint32_t batch_count(const uint8_t *f, uint32_t plen)
{
	uint32_t n = 0;
	for (size_t off = 0; off + SR_BATCH_ITEM_HDR_SIZE <= plen; n++)
		off += SR_BATCH_ITEM_HDR_SIZE +
		       le32(f + SR_FRAME_HDR_SIZE + off + 6);
	return n;
}

/* Advance q_scan over completely written frames, counting messages. */
static void queue_written(struct tcp_peer *p)
{
	while (p->q_scan + SR_FRAME_HDR_SIZE <= p->q_head) {
		const uint8_t *h = p->q + p->q_scan;
		uint32_t type = (uint32_t)h[6] | ((uint32_t)h[7] << 8);
		uint32_t len = le32(h + 12);
		size_t end = p->q_scan + SR_FRAME_HDR_SIZE + len;
		if (end > p->q_head)
			break;
		if (type == SR_FRAME_BATCH)
			p->q_msgs -= batch_count(h, len);
		else if (type == SR_FRAME_HEARTBEATS ||
			 type == SR_FRAME_APPEND_RESPS) /* sealed: its count */
			p->q_msgs -= le32(h + SR_FRAME_HDR_SIZE + 16);
		else if (type < SR_FRAME_HELLO) /* not a handshake frame */
			p->q_msgs--;
		p->q_scan = end;
	}
}

/*
 * Write as much of the queue as the socket takes.  Returns 0 (all
 * written, or waiting for room) or SR_EIO (the connection was closed).
 */
int tcp_out_write(sr_tcp *t, struct tcp_peer *p)
{
	if (p->state != SR_TCP_UP)
		return 0;
	if (t->corked) { /* every write passes here: uncorking flushes */
		p->dirty = 1;
		return 0;
	}
	tcp_queue_seal(p);
	while (p->q_head < p->q_tail) {
		size_t want = p->q_tail - p->q_head;
		ssize_t n = send(p->fd, p->q + p->q_head, want, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			char why[128];
			snprintf(why, sizeof(why), "write: %s",
				 strerror(errno));
			tcp_peer_close(t, p, SR_LOG_INFO, why);
			return SR_EIO;
		}
		t->st.writes++;
		t->st.bytes_sent += (uint64_t)n;
		t->st.queued_bytes -= (uint64_t)n;
		p->q_head += (size_t)n;
		queue_written(p);
		if ((size_t)n < want)
			break; /* the socket buffer is full */
	}
	int want_write = p->q_head < p->q_tail;
	if (!want_write) {
		p->q_head = p->q_tail = p->q_scan = 0;
		if (p->q_cap > TCP_QUEUE_KEEP) {
			tcp_free(t, p->q, p->q_cap);
			p->q = NULL;
			p->q_cap = 0;
		}
	}
	int interest = SR_LOOP_READ | (want_write ? SR_LOOP_WRITE : 0);
	if (sr_loop_interest(t->loop, p->fd) != interest &&
	    sr_loop_watch(t->loop, p->fd, interest, out_event, p)) {
		tcp_peer_close(t, p, SR_LOG_WARN, "cannot watch the socket");
		return SR_EIO;
	}
	return 0;
}

/* The acceptor never writes: readable means closed or misbehaving. */
static void out_readable(sr_tcp *t, struct tcp_peer *p)
{
	uint8_t junk[64];
	ssize_t n = recv(p->fd, junk, sizeof(junk), 0);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n == 0) {
		tcp_peer_close(t, p, SR_LOG_INFO, "closed by the peer");
	} else if (n < 0) {
		char why[128];
		snprintf(why, sizeof(why), "%s", strerror(errno));
		tcp_peer_close(t, p, SR_LOG_INFO, why);
	} else {
		tcp_peer_close(t, p, SR_LOG_WARN,
			       "unexpected data on an outgoing connection");
	}
}

static void out_event(sr_loop *loop, int fd, int events, void *ctx)
{
	struct tcp_peer *p = ctx;
	sr_tcp *t = p->tcp;
	(void)loop;
	(void)fd;

	if (p->state == SR_TCP_CONNECTING && p->auth.wait_challenge) {
		if (tcp_auth_out_read(t, p) == 1)
			out_established(t, p);
		return;
	}
	if (p->state == SR_TCP_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			char why[128];
			snprintf(why, sizeof(why), "connect: %s",
				 strerror(err));
			tcp_peer_close(t, p, SR_LOG_INFO, why);
			return;
		}
		if (!(events & SR_LOOP_WRITE))
			return;
		out_connected(t, p);
		return;
	}
	if (events & SR_LOOP_READ) {
		out_readable(t, p);
		if (p->state != SR_TCP_UP)
			return;
	}
	if (events & SR_LOOP_WRITE)
		tcp_out_write(t, p);
}

/* ------------------------------------------------------------------ */
/* Accepted connections                                               */
/* ------------------------------------------------------------------ */

static void in_event(sr_loop *loop, int fd, int events, void *ctx);

static void in_free(sr_tcp *t, struct tcp_in *c)
{
	tcp_free(t, c->buf, c->cap);
	tcp_free(t, c, sizeof(*c));
}

void tcp_in_close(sr_tcp *t, struct tcp_in *c, int level, const char *reason)
{
	if (c->closing)
		return;
	if (reason)
		tcp_log(t, level, "connection from %s (node %llu): %s", c->name,
			(unsigned long long)c->peer, reason);
	c->closing = 1;
	sr_loop_unwatch(t->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	if (c->peer) {
		struct tcp_peer *p = tcp_peer_find(t, c->peer);
		if (p && p->in == c)
			p->in = NULL;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		t->ins = c->next;
	if (c->next)
		c->next->prev = c->prev;
	t->n_in--;
	if (!c->busy)
		in_free(t, c);
}

/* Resize the receive buffer to exactly cap bytes (cap >= c->len). */
static int in_resize(sr_tcp *t, struct tcp_in *c, size_t cap)
{
	void *b = tcp_realloc(t, c->buf, c->cap, cap);
	if (!b)
		return SR_ENOMEM;
	c->buf = b;
	c->cap = cap;
	return 0;
}

int tcp_hello_check(sr_tcp *t, struct tcp_in *c, const sr_hello *h)
{
	char why[160];
	const char *refuse = NULL;

	struct tcp_peer *p = tcp_peer_find(t, h->from);
	if (h->cluster != t->cfg.cluster_id) {
		snprintf(why, sizeof(why),
			 "refused: cluster id %llu, ours is %llu",
			 (unsigned long long)h->cluster,
			 (unsigned long long)t->cfg.cluster_id);
		refuse = why;
	} else if (h->to != t->cfg.id) {
		snprintf(why, sizeof(why), "refused: meant for node %llu",
			 (unsigned long long)h->to);
		refuse = why;
	} else if (!p && !t->cfg.accept_unknown_peers) {
		snprintf(why, sizeof(why), "refused: unknown node %llu",
			 (unsigned long long)h->from);
		refuse = why;
	} else if (p && p->cut) {
		refuse = "refused: partitioned by the test hook";
	}
	if (refuse) {
		t->st.refused++;
		tcp_in_close(t, c, SR_LOG_WARN, refuse);
		return -1;
	}
	return 0;
}

void tcp_hello_bind(sr_tcp *t, struct tcp_in *c, const sr_hello *h)
{
	struct tcp_peer *p = tcp_peer_find(t, h->from);
	if (!p && h->addr[0] && sr_tcp_set_peer(t, h->from, h->addr) == 0) {
		/* accept_unknown_peers: answer it where it says it listens */
		tcp_log(t, SR_LOG_INFO, "node %llu joins as a peer at %s",
			(unsigned long long)h->from, h->addr);
		p = tcp_peer_find(t, h->from);
	}
	if (p && p->in)
		tcp_in_close(t, p->in, SR_LOG_INFO,
			     "replaced by a newer connection");
	if (p)
		p->in = c;
	c->peer = h->from;
	c->features = h->features;
	c->deadline = 0;
	tcp_log(t, SR_LOG_INFO, "connection from %s: node %llu%s", c->name,
		(unsigned long long)h->from,
		t->auth.key ? " (authenticated)" : "");
	if (p && p->state == SR_TCP_DOWN && p->attempts) {
		/* It is back (a restarted node connects at once): our
		 * backoff grew while it was away and could keep us silent
		 * for up to reconnect_max_ms, so start afresh and connect
		 * on the next timer run. */
		tcp_log(t, SR_LOG_INFO, "peer %llu is back: reconnecting now",
			(unsigned long long)p->id);
		p->attempts = 0;
		p->retry_at = sr_loop_now_ms(t->loop);
		tcp_timer_arm(t);
	}
}

/* A frame before the connection is bound: a plain hello without a
 * secret here; the rest is tcp_auth.c's. */
static void in_handshake(sr_tcp *t, struct tcp_in *c, const uint8_t *f,
			 size_t len, uint32_t type)
{
	sr_hello h;

	if (type != SR_FRAME_HELLO || t->auth.key) {
		tcp_auth_in_frame(t, c, f, len, type);
		return;
	}
	if (sr_codec_decode_hello(f, len, &h)) {
		t->st.proto_errors++;
		tcp_in_close(t, c, SR_LOG_WARN, "malformed handshake");
		return;
	}
	if (tcp_hello_check(t, c, &h) == 0)
		tcp_hello_bind(t, c, &h);
}

/* One message frame: decode, check the sender, deliver. */
static void in_deliver(sr_tcp *t, struct tcp_in *c, const uint8_t *f,
		       const sr_frame_hdr *h)
{
	sr_msg m;
	char why[160];

	int rc = sr_codec_decode(&t->dec, f, SR_FRAME_HDR_SIZE + (size_t)h->len,
				 &m, NULL);
	if (rc) {
		snprintf(why, sizeof(why), "%s frame (type %u, %u bytes)",
			 rc == SR_ETOOBIG  ? "oversized"
			 : rc == SR_ENOMEM ? "no memory for a"
					   : "malformed (CRC, lengths or "
					     "fields)",
			 h->type, h->len);
		t->st.proto_errors++;
		tcp_in_close(t, c, SR_LOG_WARN, why);
		return;
	}
	if (m.from != c->peer || m.to != t->cfg.id) {
		snprintf(why, sizeof(why), "message from %llu to %llu",
			 (unsigned long long)m.from, (unsigned long long)m.to);
		t->st.proto_errors++;
		tcp_in_close(t, c, SR_LOG_WARN, why);
		return;
	}
	t->st.frames_recv++;
	t->st.msgs_recv++;
	t->cfg.on_message(t->cfg.ctx, &m);
}

/* Close c for a bad batch: rc from the codec, or 0 for a bad sender. */
static void in_bad_batch(sr_tcp *t, struct tcp_in *c, int rc, const sr_msg *m)
{
	char why[160];
	if (rc == 0)
		snprintf(why, sizeof(why),
			 "message from %llu to %llu in a batch",
			 (unsigned long long)m->from,
			 (unsigned long long)m->to);
	else
		snprintf(why, sizeof(why), "%s batch frame",
			 rc == SR_ETOOBIG  ? "oversized message in a"
			 : rc == SR_ENOMEM ? "no memory for a"
					   : "malformed (CRC, item lengths, "
					     "nesting or fields)");
	t->st.proto_errors++;
	tcp_in_close(t, c, SR_LOG_WARN, why);
}

/*
 * A batch frame: every message in it is checked (decoded, from the peer,
 * to us) before the first is delivered, so a bad batch delivers nothing.
 * Delivery stops if on_message closes the connection.
 */
static void in_deliver_batch(sr_tcp *t, struct tcp_in *c, const uint8_t *f,
			     size_t flen)
{
	sr_batch_iter it, first;
	sr_msg m;
	int rc;

	if (!t->batch_max) {
		t->st.proto_errors++;
		tcp_in_close(t, c, SR_LOG_WARN,
			     "a batch frame, but this node does not "
			     "take batches");
		return;
	}
	rc = sr_codec_batch_open(&t->dec, f, flen, &it, NULL, NULL);
	if (rc) {
		in_bad_batch(t, c, rc, NULL);
		return;
	}
	first = it;
	while ((rc = sr_codec_batch_next(&t->dec, &it, &m)) == 1) {
		if (m.from != c->peer || m.to != t->cfg.id) {
			in_bad_batch(t, c, 0, &m);
			return;
		}
	}
	if (rc < 0) {
		in_bad_batch(t, c, rc, NULL);
		return;
	}
	t->st.frames_recv++;
	t->st.batches_recv++;
	it = first;
	while (!c->closing && sr_codec_batch_next(&t->dec, &it, &m) == 1) {
		t->st.msgs_recv++;
		t->cfg.on_message(t->cfg.ctx, &m);
	}
}

/*
 * Parse every complete frame in the buffer, then keep the partial one
 * and size the buffer for it.  Returns 0, or an error once c is closed.
 */
static int in_parse(sr_tcp *t, struct tcp_in *c)
{
	size_t off = 0, need = SR_FRAME_HDR_SIZE;
	sr_frame_hdr h;

	while (!c->closing) {
		size_t avail = c->len - off;
		if (avail < SR_FRAME_HDR_SIZE)
			break;
		uint32_t max = c->peer ? t->cfg.max_frame_bytes
				       : TCP_HS_MAX_PAYLOAD;
		int rc = c->peer ? sr_codec_header(c->buf + off, avail, max, &h)
				 : tcp_auth_decode_header(c->buf + off, avail,
							  0, &h);
		if (rc) {
			char why[128];
			const uint8_t *b = c->buf + off;
			if (rc == SR_ETOOBIG)
				snprintf(why, sizeof(why),
					 "frame too large: %u bytes, limit %u",
					 (uint32_t)b[12] |
						 (uint32_t)b[13] << 8 |
						 (uint32_t)b[14] << 16 |
						 (uint32_t)b[15] << 24,
					 max);
			else
				snprintf(why, sizeof(why),
					 "bad frame header (magic, version or "
					 "type)");
			t->st.proto_errors++;
			tcp_in_close(t, c, SR_LOG_WARN, why);
			return SR_EPROTO;
		}
		size_t flen = SR_FRAME_HDR_SIZE + (size_t)h.len;
		if (avail < flen) {
			need = flen;
			break;
		}
		if (!c->peer) {
			in_handshake(t, c, c->buf + off, flen, h.type);
		} else if (h.type == SR_FRAME_HELLO) {
			t->st.proto_errors++;
			tcp_in_close(t, c, SR_LOG_WARN, "a second handshake");
		} else if (h.type == SR_FRAME_BATCH)
			in_deliver_batch(t, c, c->buf + off, flen);
		else if (h.type == SR_FRAME_HEARTBEATS ||
			 h.type == SR_FRAME_APPEND_RESPS)
			tcp_coalesce_deliver(t, c, c->buf + off, flen);
		else
			in_deliver(t, c, c->buf + off, &h);
		off += flen;
	}
	if (c->closing)
		return SR_EPROTO;
	if (off) {
		memmove(c->buf, c->buf + off, c->len - off);
		c->len -= off;
	}
	/* Room for the frame in progress; after the handshake at least
	 * TCP_RBUF_INIT so that small frames arrive in batches. */
	size_t want = need;
	if (c->peer && want < TCP_RBUF_INIT)
		want = TCP_RBUF_INIT;
	if (c->cap < want || (c->cap > TCP_RBUF_KEEP && want <= TCP_RBUF_INIT &&
			      c->len <= want)) {
		if (in_resize(t, c, want)) {
			tcp_in_close(t, c, SR_LOG_ERROR,
				     "out of memory for a frame");
			return SR_ENOMEM;
		}
	}
	return 0;
}

static void in_readable(sr_tcp *t, struct tcp_in *c)
{
	for (int i = 0; i < TCP_READS_PER_EVENT && !c->closing; i++) {
		size_t room = c->cap - c->len;
		ssize_t n = recv(c->fd, c->buf + c->len, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0 && c->auth.wait_proof && !c->len) {
			tcp_auth_in_hangup(t, c, n < 0 ? errno : 0);
			return;
		}
		if (n <= 0) {
			char why[128];
			if (n < 0)
				snprintf(why, sizeof(why), "%s",
					 strerror(errno));
			else if (c->len)
				snprintf(why, sizeof(why),
					 "closed in the middle of a frame "
					 "(%zu bytes)",
					 c->len);
			else
				snprintf(why, sizeof(why),
					 "closed by the peer");
			if (n == 0 && c->len)
				t->st.proto_errors++;
			tcp_in_close(t, c, c->len ? SR_LOG_WARN : SR_LOG_INFO,
				     why);
			return;
		}
		c->len += (size_t)n;
		t->st.bytes_recv += (uint64_t)n;
		if (in_parse(t, c))
			return;
		if ((size_t)n < room)
			return; /* drained */
	}
}

static void in_event(sr_loop *loop, int fd, int events, void *ctx)
{
	struct tcp_in *c = ctx;
	sr_tcp *t = c->tcp;
	(void)loop;
	(void)fd;
	(void)events;

	c->busy++;
	in_readable(t, c);
	c->busy--;
	if (c->closing && !c->busy)
		in_free(t, c);
}

static void in_accept_one(sr_tcp *t, int fd, const struct sockaddr_storage *sa)
{
	struct tcp_in *c = tcp_realloc(t, NULL, 0, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->tcp = t;
	c->fd = fd;
	addr_name(sa, c->name, sizeof(c->name));
	c->deadline = sr_loop_now_ms(t->loop) + t->cfg.handshake_timeout_ms;
	if (in_resize(t, c, SR_HELLO_FRAME_SIZE) ||
	    sr_loop_watch(t->loop, fd, SR_LOOP_READ, in_event, c)) {
		tcp_free(t, c->buf, c->cap);
		tcp_free(t, c, sizeof(*c));
		close(fd);
		tcp_log(t, SR_LOG_ERROR, "cannot take a connection");
		return;
	}
	c->next = t->ins;
	if (t->ins)
		t->ins->prev = c;
	t->ins = c;
	t->n_in++;
	t->st.accepts++;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	tcp_timer_arm(t);
}

static void listen_event(sr_loop *loop, int fd, int events, void *ctx);

/*
 * accept() failed for want of a resource (EMFILE, ENFILE, ENOBUFS): the
 * listener stays readable, so stop watching it for a moment instead of
 * spinning, and let the timer resume it.
 */
static void listen_pause(sr_tcp *t)
{
	tcp_log(t, SR_LOG_WARN, "accept: %s; pausing for 100 ms",
		strerror(errno));
	sr_loop_unwatch(t->loop, t->lfd);
	t->accept_resume = sr_loop_now_ms(t->loop) + 100;
	tcp_timer_arm(t);
}

void tcp_listen_resume(sr_tcp *t)
{
	t->accept_resume = 0;
	if (sr_loop_watch(t->loop, t->lfd, SR_LOOP_READ, listen_event, t)) {
		tcp_log(t, SR_LOG_ERROR, "cannot watch the listener");
		t->accept_resume = sr_loop_now_ms(t->loop) + 100;
	}
}

static void listen_event(sr_loop *loop, int fd, int events, void *ctx)
{
	sr_tcp *t = ctx;
	(void)loop;
	(void)events;

	for (int i = 0; i < TCP_ACCEPTS_PER_EVENT; i++) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		int c = accept4(fd, (struct sockaddr *)&sa, &len,
				SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				listen_pause(t);
			return;
		}
		if (t->n_in >= t->cfg.max_inbound) {
			char name[64];
			addr_name(&sa, name, sizeof(name));
			tcp_log(t, SR_LOG_WARN,
				"connection from %s refused: %u "
				"connections "
				"open already",
				name, t->n_in);
			t->st.refused++;
			close(c);
			continue;
		}
		in_accept_one(t, c, &sa);
	}
}

int tcp_listen(sr_tcp *t, const char *addr)
{
	struct addrinfo *ai = NULL;
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	int one = 1, fd;

	if (addr_resolve(addr, 1, &ai)) {
		tcp_log(t, SR_LOG_ERROR, "bad listen address '%s'", addr);
		return SR_EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		goto err;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		goto err;
	if (sr_loop_watch(t->loop, fd, SR_LOOP_READ, listen_event, t)) {
		errno = EINVAL;
		goto err;
	}
	freeaddrinfo(ai);
	t->lfd = fd;
	t->port = ntohs(sa.ss_family == AF_INET6
				? ((struct sockaddr_in6 *)&sa)->sin6_port
				: ((struct sockaddr_in *)&sa)->sin_port);
	return 0;
err:
	tcp_log(t, SR_LOG_ERROR, "cannot listen on %s: %s", addr,
		strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return SR_EIO;
}
