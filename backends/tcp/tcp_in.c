/*
 * tcp_in.c — the listener and the connections it accepts: the handshake
 * (a plain hello, or tcp_auth.c's for a node with a secret), then frame
 * parsing and delivery to on_message.
 *
 * Accepted connection: the first frame must be a hello, or with a secret
 * the auth hello and then the proof (tcp_auth.c; the payload limit until
 * then is the auth hello's, so an unauthenticated connection holds at
 * most 204 bytes); then message frames up to max_frame_bytes: plain,
 * batched, or coalesced (tcp_coalesce.c).  Frames are parsed in place in
 * the receive buffer and delivered to on_message with pointers into it.
 * Any bad frame closes the connection with a logged reason and nothing
 * else.  Because on_message may close connections (remove_peer,
 * partition), a connection is marked busy while its read callback runs
 * and is freed only when the callback unwinds.
 *
 * A connection that passes the handshake is bound to its peer (at most
 * one live accepted connection per peer); with accept_unknown_peers a
 * node not in the table is added (tcp_out.c) and answered where its hello
 * says it listens.
 */
#include "tcp_int.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void in_event(sr_loop *loop, int fd, int events, void *ctx);

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

/* Bind c to the sender of hello h, which passed tcp_hello_check(). */
static void hello_bind(sr_tcp *t, struct tcp_in *c, const sr_hello *h)
{
	struct tcp_peer *p = tcp_peer_find(t, h->from);
	if (!p && h->addr[0] && tcp_out_set_peer(t, h->from, h->addr) == 0) {
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
		/* The peer table may have changed while the handshake went
		 * on (removed, cut): check again before binding. */
		if (tcp_auth_in_frame(t, c, f, len, type, &h) == 1 &&
		    tcp_hello_check(t, c, &h) == 0)
			hello_bind(t, c, &h);
		return;
	}
	if (sr_codec_decode_hello(f, len, &h)) {
		t->st.proto_errors++;
		tcp_in_close(t, c, SR_LOG_WARN, "malformed handshake");
		return;
	}
	if (tcp_hello_check(t, c, &h) == 0)
		hello_bind(t, c, &h);
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
		tcp_in_free(t, c);
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
	tcp_addr_name(sa, c->name, sizeof(c->name));
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
			tcp_addr_name(&sa, name, sizeof(name));
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

	if (tcp_addr_resolve(addr, 1, &ai)) {
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
