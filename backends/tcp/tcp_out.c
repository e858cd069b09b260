/*
 * tcp_out.c — outgoing connections, one per peer: connect, the hello (or
 * tcp_auth.c's challenge-response), writing the send queue, and adding a
 * peer to the table.  The transport only ever writes on these; it reads
 * on the connections tcp_in.c accepts.
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
 * or went away) or broken the protocol; both close it (tcp_link.c, which
 * also schedules the reconnect).  Write interest is set only while a
 * partial write waits for room.
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

static void out_event(sr_loop *loop, int fd, int events, void *ctx);

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
	if (tcp_addr_resolve(p->addr, 0, &ai)) {
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
		tcp_queue_written(p);
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
/* The peer table                                                     */
/* ------------------------------------------------------------------ */

/* A fresh start: forget the backoff and connect now. */
void tcp_out_restart(sr_tcp *t, struct tcp_peer *p, const char *why)
{
	if (p->state != SR_TCP_DOWN)
		tcp_peer_close(t, p, SR_LOG_INFO, why);
	p->attempts = 0;
	p->retry_at = 0;
	tcp_out_connect(t, p);
	tcp_timer_arm(t);
}

int tcp_out_set_peer(sr_tcp *t, sr_id id, const char *addr)
{
	if (!id || id == t->cfg.id || !addr || strlen(addr) >= SR_ADDR_MAX ||
	    tcp_addr_check(addr))
		return SR_EINVAL;
	struct tcp_peer *p = tcp_peer_find(t, id);
	if (p) {
		if (!strcmp(p->addr, addr))
			return 0;
		strcpy(p->addr, addr);
		tcp_out_restart(t, p, "address changed");
		return 0;
	}
	if (t->n_peers == t->cap_peers) {
		size_t cap = t->cap_peers ? t->cap_peers * 2 : 8;
		void *n = tcp_realloc(t, t->peers,
				      t->cap_peers * sizeof(*t->peers),
				      cap * sizeof(*t->peers));
		if (!n)
			return SR_ENOMEM;
		t->peers = n;
		t->cap_peers = cap;
	}
	p = tcp_realloc(t, NULL, 0, sizeof(*p));
	if (!p)
		return SR_ENOMEM;
	memset(p, 0, sizeof(*p));
	p->tcp = t;
	p->id = id;
	p->fd = -1;
	p->state = SR_TCP_DOWN;
	strcpy(p->addr, addr);
	t->peers[t->n_peers++] = p;
	tcp_out_restart(t, p, NULL);
	return 0;
}
