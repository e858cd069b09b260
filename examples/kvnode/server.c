/*
 * server.c — client connections of kvnode.
 *
 * Each connection reads requests into its input buffer, parses as many
 * commands as are complete (resp.c) and runs them (cmds.c).  Replies must
 * leave in the order the commands came (clients pipeline), but commands
 * finish at different times: PING at once, a write when its entry is
 * applied, a GET when its ReadIndex is confirmed.  So a connection keeps a
 * FIFO of requests (struct kv_req); a reply is written out only when every
 * request before it has its reply.  While the FIFO is empty, synchronous
 * replies go straight to the output buffer.
 *
 * A read (GET, MGET, EXISTS, DBSIZE, STRLEN) is evaluated when it reaches
 * the head of the FIFO after its read_done: any state between the read
 * index and the reply is a linearizable answer, and waiting for the head
 * means a pipelined GET sees the writes that came before it on the same
 * connection.
 *
 * Requests waiting for the engine (batching, completions, timeouts) are
 * requests.c's business; this file owns the sockets and the FIFOs.
 *
 * Memory bounds per connection: the input buffer never exceeds the query
 * limit (max_bulk plus 1 MiB of headers); reading stops while a
 * connection has too many requests in flight or too much output unsent
 * (a client that pipelines without reading), and resumes when it drains.
 * Reads waiting in the FIFO are evaluated only while the output is below
 * that mark, so pipelined GETs of a large value cost their arguments, not
 * their replies.  What can still overshoot (one huge reply, ready replies
 * queued behind a slow one) is bounded by the output limits, as Redis's
 * client-output-buffer-limit: a connection whose unsent replies reach the
 * hard limit, or stay above the soft limit for longer than its seconds,
 * is disconnected with a WARN line and counted in INFO.  An idle connection holds no input buffer: the one being read
 * borrows the server's spare and gives it back once it has parsed
 * everything, so 10,000 idle clients cost their struct and their socket.
 *
 * When a connection must go (limits, idle timeout) is limits.c's call.
 * Per loop iteration the work is O(ready connections): epoll reports
 * only those, flushing walks the dirty list, and limits.c's periodic
 * check looks only at the connections it has to act on.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"

#define KV_READ_CHUNK (16 * 1024)
#define KV_OUT_KEEP   (16 * 1024) /* a flushed output buffer kept at most */

/* ------------------------------------------------------------------ */
/* Output                                                             */
/* ------------------------------------------------------------------ */

static void conn_close(struct kv_conn *c);
static void conn_event(sr_loop *loop, int fd, int events, void *ctx);
static void conn_process(struct kv_conn *c);

static void conn_set_interest(struct kv_conn *c)
{
	int want = 0;

	if (!c->paused && !c->eof && !c->closing)
		want |= SR_LOOP_READ;
	if (c->out.len > c->out_off)
		want |= SR_LOOP_WRITE;
	if (want == c->interest)
		return;
	if (want == 0)
		sr_loop_unwatch(c->s->loop, c->fd);
	else if (sr_loop_watch(c->s->loop, c->fd, want, conn_event, c))
		want = 0;
	c->interest = want;
}

/* Write what we can.  Returns -1 if the connection was closed. */
static int conn_flush(struct kv_conn *c)
{
	if (c->killed) {
		conn_close(c);
		return -1;
	}
	while (c->out.len > c->out_off) {
		ssize_t n = write(c->fd, c->out.p + c->out_off,
				  c->out.len - c->out_off);
		if (n > 0) {
			c->out_off += (size_t)n;
			kv_conn_touch(c);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_close(c); /* EPIPE, ECONNRESET: the client is gone */
		return -1;
	}
	if (c->out_off == c->out.len) {
		c->out.len = c->out_off = 0;
		if (c->out.cap > KV_OUT_KEEP)
			kv_buf_free(&c->out);
	} else if (c->out_off > 1024 * 1024) {
		kv_buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
	kv_conn_out_drained(c);
	c->share = 0;
	if (c->head && c->head->ready && kv_conn_unsent(c) < KV_OUT_HIGH)
		kv_conn_pump(c); /* reads held back: the next share */
	if ((c->closing || c->eof) && !c->head && c->out.len == 0) {
		conn_close(c);
		return -1;
	}
	if (c->paused && !c->closing && !c->s->stopping &&
	    c->npending < KV_MAX_PENDING / 2 &&
	    kv_conn_unsent(c) < KV_OUT_HIGH / 2) {
		c->paused = 0;
		conn_set_interest(c);
		conn_process(c); /* commands may wait in the buffer */
		return 0;
	}
	conn_set_interest(c);
	return 0;
}

/* Flush the connections dirty so far.  One marked dirty meanwhile (its
 * pump has more to evaluate) waits for the next turn of the loop, after
 * the timers: heartbeats go out between two shares of a long output. */
static void flush_dirty(sr_loop *loop, void *ctx)
{
	struct kv_server *s = ctx;

	(void)loop;
	s->flush_scheduled = 0;
	s->flushing = s->dirty;
	s->dirty = NULL;
	while (s->flushing) {
		struct kv_conn *c = s->flushing;
		s->flushing = c->dnext;
		c->dirty = 0;
		c->dnext = NULL;
		conn_flush(c);
	}
}

void kv_conn_mark_dirty(struct kv_conn *c)
{
	struct kv_server *s = c->s;

	if (!c->dirty) {
		c->dirty = 1;
		c->dnext = s->dirty;
		s->dirty = c;
	}
	if (!s->flush_scheduled && sr_loop_defer(s->loop, flush_dirty, s) == 0)
		s->flush_scheduled = 1;
}

/* Move every answered request at the head of the FIFO to the output.
 * Reads are evaluated only while the output is below KV_OUT_HIGH, and at
 * most KV_PUMP_SHARE bytes of them between two flushes: the rest wait,
 * holding their arguments rather than their replies, for conn_flush to
 * call again on a later turn of the loop.  So 1,024 pipelined GETs of a
 * large value by a client that does not read cost 4 MiB, not 1,024
 * values, and ten such clients do not hold the loop (and the heartbeats)
 * for one long turn. */
void kv_conn_pump(struct kv_conn *c)
{
	struct kv_req *r;
	int moved = 0;

	while (!c->killed && (r = c->head) != NULL && r->ready) {
		size_t before = c->out.len;
		if (r->eval && !r->silent &&
		    (kv_conn_unsent(c) >= KV_OUT_HIGH ||
		     c->share >= KV_PUMP_SHARE))
			break;
		if (r->queued)
			c->queued -= r->buf.len;
		if (r->silent)
			; /* CLIENT REPLY OFF/SKIP */
		else if (r->eval) {
			kv_cmd_eval_read(r->g, r->kind, r->buf.p, r->buf.len,
					 &c->out);
			c->share += c->out.len - before;
		} else
			kv_buf_put(&c->out, r->buf.p, r->buf.len);
		if (r->resp3)
			kv_resp3_fix(&c->out, before);
		c->head = r->next;
		if (!c->head)
			c->tail = NULL;
		c->npending--;
		kv_req_orphan(c->s, r);
		moved = 1;
		if (kv_conn_out_check(c))
			return; /* killed: marked dirty to be closed */
	}
	if (moved)
		kv_conn_mark_dirty(c);
}

struct kv_req *kv_req_new(struct kv_conn *c, int kind)
{
	struct kv_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->conn = c;
	r->kind = kind;
	r->resp3 = c->resp3;
	if (c->tail)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	c->npending++;
	return r;
}

/* ------------------------------------------------------------------ */
/* Input                                                              */
/* ------------------------------------------------------------------ */

static void conn_protocol_error(struct kv_conn *c, const char *err)
{
	struct kv_buf tmp = { 0 };

	c->s->n_proto_errors++;
	kv_log(c->s, SR_LOG_DEBUG, "client %llu: %s; closing",
	       (unsigned long long)c->id, err);
	kv_reply_errorf(&tmp, "ERR %s", err);
	/* After the replies already owed, then close. */
	if (c->head) {
		struct kv_req *r = kv_req_new(c, 0);
		if (r) {
			r->buf = tmp;
			r->ready = 1;
			r->queued = 1;
			c->queued += tmp.len;
			tmp.p = NULL;
		}
	} else {
		kv_buf_put(&c->out, tmp.p, tmp.len);
	}
	kv_buf_free(&tmp);
	c->closing = 1;
	c->paused = 1;
	kv_conn_mark_dirty(c);
}

static int conn_overloaded(const struct kv_conn *c)
{
	return c->npending >= KV_MAX_PENDING ||
	       kv_conn_unsent(c) >= KV_OUT_HIGH;
}

/* Run one parsed command. */
static void conn_run(struct kv_conn *c)
{
	struct kv_parser *p = &c->parser;
	const char *argv[64];
	size_t lens[64];
	const char **av = argv;
	size_t *lv = lens;
	struct kv_buf scratch = { 0 };
	struct kv_cmdctx ctx = { .s = c->s, .c = c, .argc = p->argc };
	struct kv_req *tail = c->tail;
	size_t out_before;
	int mode;

	if (p->argc > 64) {
		av = malloc(p->argc * sizeof(*av));
		lv = malloc(p->argc * sizeof(*lv));
		if (!av || !lv) {
			free(av);
			free(lv);
			conn_protocol_error(c, "out of memory");
			return;
		}
	}
	for (size_t i = 0; i < p->argc; i++) {
		av[i] = c->in.p + p->args[i].off;
		lv[i] = p->args[i].len;
	}
	ctx.argv = av;
	ctx.lens = lv;
	/* With replies owed, a synchronous reply waits its turn. */
	ctx.out = c->head ? &scratch : &c->out;
	c->s->n_commands++;
	mode = c->reply_mode;
	out_before = c->out.len;
	kv_cmd_exec(&ctx);
	if (c->resp3) /* HELLO 3 (the reply to HELLO itself included) */
		kv_resp3_fix(ctx.out, ctx.out == &c->out ? out_before : 0);
	if (mode == KV_REPLY_SKIP ||
	    (mode == KV_REPLY_OFF && c->reply_mode != KV_REPLY_ON)) {
		/* CLIENT REPLY OFF or SKIP: this command's reply is dropped,
		 * whether it was written now or will be when it finishes. */
		if (ctx.out == &c->out)
			c->out.len = out_before;
		scratch.len = 0;
		for (struct kv_req *r = tail ? tail->next : c->head; r;
		     r = r->next)
			r->silent = 1;
		if (mode == KV_REPLY_SKIP && c->reply_mode == KV_REPLY_SKIP)
			c->reply_mode = KV_REPLY_ON;
	}
	if (ctx.out == &scratch && c->tail == tail && scratch.len) {
		struct kv_req *r = kv_req_new(c, 0);
		if (r) {
			r->resp3 = 0; /* already in the connection's form */
			r->buf = scratch;
			r->ready = 1;
			r->queued = 1;
			c->queued += scratch.len;
			scratch.p = NULL;
		}
	}
	kv_buf_free(&scratch);
	if (av != argv) {
		free(av);
		free(lv);
	}
	if (c->out.len > c->out_off)
		kv_conn_mark_dirty(c);
	kv_conn_out_check(c);
}

/* Parse and run what the buffer holds, then drop the consumed bytes. */
static void conn_process(struct kv_conn *c)
{
	const char *err;
	size_t done;

	while (!c->closing) {
		if (conn_overloaded(c)) {
			c->paused = 1;
			conn_set_interest(c);
			break;
		}
		int rc = kv_parse(&c->parser, c->in.p, c->in.len, &err);
		if (rc == KV_PARSE_MORE)
			break;
		if (rc == KV_PARSE_ERR) {
			conn_protocol_error(c, err);
			break;
		}
		conn_run(c);
	}
	done = kv_parser_done_bytes(&c->parser);
	if (done) {
		kv_buf_consume(&c->in, done);
		kv_parser_shift(&c->parser, done);
	}
	if (c->in.len == 0 && c->in.cap > 1024 * 1024)
		kv_buf_free(&c->in);
}

static size_t query_limit(const struct kv_server *s)
{
	return (size_t)s->opt.max_bulk + 1024 * 1024;
}

/* Read and run what arrived.  Returns -1 if c was closed. */
static int conn_read_some(struct kv_conn *c)
{
	for (int round = 0; round < 16 && !c->paused && !c->closing; round++) {
		ssize_t n;
		if (kv_buf_reserve(&c->in, KV_READ_CHUNK)) {
			conn_protocol_error(c, "out of memory");
			return 0;
		}
		n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			/* EOF or reset: answer what is owed if we can. */
			c->eof = 1;
			conn_set_interest(c);
			if (n < 0 || (!c->head && c->out.len == c->out_off)) {
				conn_close(c);
				return -1;
			}
			return 0;
		}
		c->in.len += (size_t)n;
		kv_conn_touch(c);
		if (c->in.len - kv_parser_done_bytes(&c->parser) >
		    query_limit(c->s)) {
			c->s->n_qbuf_disconnects++;
			kv_log(c->s, SR_LOG_WARN,
			       "client %llu: request over the query buffer "
			       "limit (%zu bytes: --max-bulk + 1 MiB): "
			       "disconnecting",
			       (unsigned long long)c->id, query_limit(c->s));
			conn_protocol_error(c, "Protocol error: query buffer "
					       "limit exceeded");
			return 0;
		}
		conn_process(c); /* never closes c: errors set c->closing */
		if ((size_t)n < KV_READ_CHUNK)
			return 0;
	}
	return 0;
}

/* A connection with nothing buffered reads into the server's spare input
 * buffer and gives it back if it parsed everything: idle connections hold
 * no input buffer. */
static void conn_read(struct kv_conn *c)
{
	struct kv_server *s = c->s;

	if (c->in.cap == 0 && s->spare_in.cap) {
		c->in = s->spare_in;
		memset(&s->spare_in, 0, sizeof(s->spare_in));
	}
	if (conn_read_some(c))
		return;
	if (c->in.len == 0 && c->in.cap) {
		if (s->spare_in.cap == 0 && c->in.cap <= 4 * KV_READ_CHUNK)
			s->spare_in = c->in;
		else
			kv_buf_free(&c->in);
		memset(&c->in, 0, sizeof(c->in));
	}
}

static void conn_event(sr_loop *loop, int fd, int events, void *ctx)
{
	struct kv_conn *c = ctx;

	(void)loop;
	(void)fd;
	if (events & SR_LOOP_WRITE) {
		if (conn_flush(c))
			return;
	}
	if ((events & SR_LOOP_READ) && !c->paused && !c->eof)
		conn_read(c);
}

static void conn_close(struct kv_conn *c)
{
	struct kv_server *s = c->s;
	struct kv_req *r, *next;

	if (c->fd < 0)
		return;
	sr_loop_unwatch(s->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	kv_conn_forget(c);
	for (r = c->head; r; r = next) {
		next = r->next;
		kv_req_orphan(s, r);
	}
	c->head = c->tail = NULL;
	if (c->dirty) {
		struct kv_conn **pp = &s->dirty;
		while (*pp && *pp != c)
			pp = &(*pp)->dnext;
		if (!*pp) /* being flushed: on the detached list */
			for (pp = &s->flushing; *pp && *pp != c;)
				pp = &(*pp)->dnext;
		if (*pp)
			*pp = c->dnext;
		c->dirty = 0;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	kv_buf_free(&c->in);
	kv_buf_free(&c->out);
	kv_parser_free(&c->parser);
	kv_multi_free(c->txn);
	free(c);
}

void kv_server_close_after_reply(struct kv_conn *c)
{
	c->closing = 1;
	c->paused = 1;
	kv_conn_mark_dirty(c);
}

uint64_t kv_server_conn_id(const struct kv_conn *c)
{
	return c->id;
}

void kv_server_reply_mode(struct kv_conn *c, int mode)
{
	c->reply_mode = (uint8_t)mode;
}

int kv_server_conn_authed(const struct kv_conn *c)
{
	return c->authed;
}

void kv_server_set_conn_authed(struct kv_conn *c)
{
	c->authed = 1;
}

int kv_server_conn_resp3(const struct kv_conn *c)
{
	return c && c->resp3;
}

void kv_server_set_conn_resp3(struct kv_conn *c, int on)
{
	c->resp3 = (uint8_t)(on != 0);
}

struct kv_txn **kv_server_conn_txn(struct kv_conn *c)
{
	return &c->txn;
}

const char *kv_server_conn_name(const struct kv_conn *c)
{
	return c->name;
}

void kv_server_set_conn_name(struct kv_conn *c, const char *name, size_t len)
{
	if (len >= sizeof(c->name))
		len = sizeof(c->name) - 1;
	memcpy(c->name, name, len);
	c->name[len] = 0;
}

void kv_sock_name(int fd, int peer, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[NI_MAXHOST], port[NI_MAXSERV];
	int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
		      : getsockname(fd, (struct sockaddr *)&ss, &sl);

	if (rc ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(out, cap, "?:0");
		return;
	}
	snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
		 port);
}

void kv_server_client_list(struct kv_server *s, const struct kv_conn *only,
			   struct kv_buf *out)
{
	uint64_t now = kv_now_ms(s);

	for (const struct kv_conn *c = s->conns; c; c = c->next) {
		char addr[NI_MAXHOST + NI_MAXSERV + 4], laddr[sizeof(addr)];
		if (only && c != only)
			continue;
		kv_sock_name(c->fd, 1, addr, sizeof(addr));
		kv_sock_name(c->fd, 0, laddr, sizeof(laddr));
		kv_buf_printf(out,
			      "id=%llu addr=%s laddr=%s fd=%d name=%s age=%llu "
			      "idle=%llu flags=N db=0 multi=-1 qbuf=%zu "
			      "obl=%zu "
			      "oll=%u omem=%zu user=default resp=2\n",
			      (unsigned long long)c->id, addr, laddr, c->fd,
			      c->name,
			      (unsigned long long)(now - c->created_ms) / 1000,
			      (unsigned long long)(now - c->active_ms) / 1000,
			      c->in.len, c->out.len - c->out_off, c->npending,
			      kv_conn_output(c));
	}
}

/* ------------------------------------------------------------------ */
/* Listening                                                          */
/* ------------------------------------------------------------------ */

static void accept_resume(sr_loop *loop, uint64_t id, void *ctx);
static void on_accept(sr_loop *loop, int fd, int events, void *ctx);

static void conn_open(struct kv_server *s, int fd)
{
	struct kv_conn *c;
	int one = 1;

	if (s->n_conns >= s->opt.max_clients) {
		static const char msg[] = "-ERR max number of clients "
					  "reached\r\n";
		s->n_rejected_conns++;
		kv_log(s, SR_LOG_DEBUG,
		       "max number of clients (%u) reached: "
		       "refusing a connection",
		       s->opt.max_clients);
		if (write(fd, msg, sizeof(msg) - 1) < 0) {
			/* it is being closed anyway */
		}
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->s = s;
	c->fd = fd;
	c->id = ++s->next_conn_id;
	c->created_ms = kv_now_ms(s);
	kv_parser_init(&c->parser, s->opt.max_bulk);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	s->n_accepted++;
	kv_conn_touch(c);
	conn_set_interest(c);
	if (c->interest == 0)
		conn_close(c);
}

static void on_accept(sr_loop *loop, int fd, int events, void *ctx)
{
	struct kv_server *s = ctx;

	(void)events;
	for (int i = 0; i < 128; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd >= 0) {
			conn_open(s, cfd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Out of descriptors: stop accepting for a moment
			 * instead of spinning on a readable listener. */
			kv_log(s, SR_LOG_WARN, "accept: %s; pausing 100 ms",
			       strerror(errno));
			sr_loop_unwatch(loop, fd);
			s->accept_paused = 1;
			sr_loop_timer_add(loop, 100, accept_resume, s, NULL);
		}
		return;
	}
}

static void accept_resume(sr_loop *loop, uint64_t id, void *ctx)
{
	struct kv_server *s = ctx;

	(void)id;
	if (s->stopping || s->listen_fd < 0)
		return;
	s->accept_paused = 0;
	sr_loop_watch(loop, s->listen_fd, SR_LOOP_READ, on_accept, s);
}

/* Split "host:port" or "[v6]:port". */
static int addr_parse(const char *addr, char *host, size_t hcap, char *port,
		      size_t pcap)
{
	const char *colon = strrchr(addr, ':');
	const char *h = addr;
	size_t hl;

	if (!colon || !colon[1] || strlen(colon + 1) >= pcap)
		return -1;
	hl = (size_t)(colon - addr);
	if (hl >= 2 && addr[0] == '[' && colon[-1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hcap)
		return -1;
	memcpy(host, h, hl);
	host[hl] = 0;
	strcpy(port, colon + 1);
	return 0;
}

int kv_server_listen(struct kv_server *s)
{
	char host[256], port[16];
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	int fd = -1, one = 1, rc;

	if (addr_parse(s->opt.client_addr, host, sizeof(host), port,
		       sizeof(port))) {
		kv_log(s, SR_LOG_ERROR, "bad --client address '%s'",
		       s->opt.client_addr);
		return -1;
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		kv_log(s, SR_LOG_ERROR, "--client %s: %s", s->opt.client_addr,
		       gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 4096) == 0)
			break;
		close(fd);
		fd = -1;
	}
	rc = errno;
	freeaddrinfo(res);
	if (fd < 0) {
		kv_log(s, SR_LOG_ERROR, "cannot listen on %s: %s",
		       s->opt.client_addr, strerror(rc));
		return -1;
	}
	s->listen_fd = fd;
	if (sr_loop_watch(s->loop, fd, SR_LOOP_READ, on_accept, s) ||
	    kv_req_sweep_start(s) || kv_limits_start(s))
		return -1;
	return 0;
}

/* Shutdown: close every client (their held requests become orphans). */
void kv_server_close_all(struct kv_server *s)
{
	if (s->listen_fd >= 0) {
		sr_loop_unwatch(s->loop, s->listen_fd);
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	kv_limits_stop(s);
	while (s->conns) {
		struct kv_conn *c = s->conns;
		conn_flush(c); /* best effort: replies already owed */
		if (s->conns == c)
			conn_close(c);
	}
	kv_buf_free(&s->spare_in);
	kv_buf_free(&s->enc_scratch);
	kv_buf_free(&s->timed_scratch);
}
