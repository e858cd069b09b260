/*
 * bench/repl_floor.c — "floor3": the ideal synchronously replicated,
 * durable SET server on this machine, with no Raft logic at all.
 *
 *   repl_floor --role follower --dir D --port PORT
 *   repl_floor --role leader --dir D --port CLIENT_PORT
 *              --follower HOST:PORT --follower HOST:PORT [--window N]
 *
 * Three processes: a leader that speaks enough of the Redis protocol for
 * redis-benchmark, and two followers.  A write is answered +OK only once
 * it is on the leader's disk (fdatasync) and on the disk of at least one
 * follower (majority = leader + 1 follower), the durability a 3-member
 * Raft gives with fsync before ack.  Everything Raft adds on top — terms,
 * indexes, log matching, a commit index, elections, snapshots, an apply
 * step, a state machine, checksums — is missing, so no 3-member Raft
 * whose leader has this shape can be faster on the same machine with the
 * same disk: its throughput is an upper bound for them (docs/benchmarks.md,
 * "The replicated floor", which also measures the pipelined --window).
 *
 * The leader is one thread with epoll, shaped like Redis with appendfsync
 * always.  Each loop iteration reads every ready client, parses every
 * complete RESP command, appends the iteration's SETs to one batch, sends
 * the batch to both followers (one write each), pwrites it into its own
 * file and fdatasyncs, waits until one follower has acknowledged that
 * batch as durable, then queues +OK for every SET of the batch and writes
 * the replies out.  Nothing is pipelined: the next batch starts once the
 * previous one is answered.  The values are not kept (there is no GET):
 * the leader stores nothing but the log.
 *
 * --window N (1..64) is the pipelined variant: the leader's pwrite +
 * fdatasync move to a sync thread, the loop never waits, and a batch is
 * closed and sent whenever fewer than N are in flight; a client's SETs are
 * answered once their batch is synced here and acked by one follower, and
 * a client's other commands wait behind its unanswered SETs.  On the
 * 2-core development VM it was slower than the serial loop at 1, 4 and 16
 * (docs/benchmarks.md), so bench_kv.py's floor3 is the serial one.
 *
 * A follower reads frames, pwrites every complete frame it has into its
 * own file, fdatasyncs once, and answers with the last frame's sequence
 * number and its count of fdatasyncs; whatever arrived during the sync
 * goes into the next one.
 *
 * Files: DIR/floor3.log, fallocate'd to 64 MiB like a WAL segment
 * (backends/wal/wal_io.c), written from offset 0 and wrapped to 0 when a
 * frame would not fit (one `make bench-kv` writes less than that).
 *
 * Client input: RESP arrays of bulk strings (what redis-benchmark sends).
 * SET key value is a write; PING answers +PONG, CONFIG an empty array (so
 * redis-benchmark's start-up CONFIG GET passes), INFO a bulk string with
 * the counters below, anything else an error.  Malformed input or a
 * command larger than the input buffer closes that connection.  Memory is
 * bounded: a client's buffers are fixed, a batch holds at most BATCH_MAX
 * bytes (a full batch leaves the rest in the clients' buffers for the
 * next iteration), a client whose replies are not read stops being read.
 *
 * Counters (INFO, and one line on stderr at exit): writes, batches, the
 * leader's fdatasyncs, and each follower's fdatasyncs as of its last ack.
 * SIGTERM or SIGINT ends either role cleanly.  Leader-follower frames are
 * in host byte order: the three processes share one machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define FILE_SIZE   ((uint64_t)64 << 20)
#define FRAME_MAGIC 0x33666c72u	       /* "rlf3" */
#define BATCH_MAX   ((size_t)1 << 20)  /* payload bytes in one batch */
#define IN_CAP	    ((size_t)32 << 10) /* a client's unparsed input */
#define OUT_CAP	    ((size_t)16 << 10) /* a client's unsent replies */
#define REPLY_MAX   512		       /* the longest non-OK reply */
#define MAX_ARGS    16
#define ARG_MAX	    ((long)IN_CAP)
#define MAX_CLIENTS 4096
#define FOLLOW_CAP  ((size_t)4 << 20) /* a follower's receive buffer */
#define QUEUE_CAP   ((size_t)4 << 20) /* frames waiting for the sync thread */
#define WINDOW_MAX  64		      /* --window: batches in flight */
#define RING	    8 /* a client's batches with unanswered SETs (--window) */

struct frame_hdr {
	uint32_t magic;
	uint32_t len; /* payload bytes after this header */
	uint64_t seq;
};

struct ack {
	uint64_t seq;	/* every frame up to this one is durable */
	uint64_t syncs; /* the follower's fdatasyncs so far */
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "repl_floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ------------------------------------------------------------ the file */

struct logfile {
	int fd;
	uint64_t off;
	uint64_t syncs;
};

static void logfile_open(struct logfile *f, const char *dir)
{
	char path[4096];

	if (snprintf(path, sizeof(path), "%s/floor3.log", dir) >=
	    (int)sizeof(path)) {
		fprintf(stderr, "repl_floor: --dir is too long\n");
		exit(2);
	}
	f->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (f->fd < 0)
		die(path);
	if (fallocate(f->fd, 0, 0, (off_t)FILE_SIZE) || fsync(f->fd))
		die("fallocate");
	f->off = 0;
	f->syncs = 0;
}

/* Appends p[0..n) (n <= FILE_SIZE) and makes it durable. */
static void logfile_append_sync(struct logfile *f, const char *p, size_t n)
{
	size_t done = 0;

	if (f->off + n > FILE_SIZE)
		f->off = 0;
	while (done < n) {
		ssize_t r = pwrite(f->fd, p + done, n - done,
				   (off_t)(f->off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("pwrite");
		done += (size_t)r;
	}
	f->off += n;
	while (fdatasync(f->fd))
		if (errno != EINTR)
			die("fdatasync");
	f->syncs++;
}

/* -------------------------------------------------------------- sockets */

static void sock_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int listen_on(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 512))
		die("bind/listen");
	return fd;
}

/* Connects to HOST:PORT, retrying for ~10 s while the follower starts. */
static int connect_to(const char *hostport)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM },
			*ai;
	size_t hl = colon ? (size_t)(colon - hostport) : 0;

	if (!colon || hl == 0 || hl >= sizeof(host)) {
		fprintf(stderr, "repl_floor: --follower wants HOST:PORT\n");
		exit(2);
	}
	memcpy(host, hostport, hl);
	host[hl] = 0;
	if (getaddrinfo(host, colon + 1, &hints, &ai)) {
		fprintf(stderr, "repl_floor: cannot resolve %s\n", hostport);
		exit(2);
	}
	for (int tries = 0; tries < 200 && !stopping; tries++) {
		int fd = socket(ai->ai_family, SOCK_STREAM, 0);
		if (fd < 0)
			die("socket");
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			freeaddrinfo(ai);
			sock_nodelay(fd);
			return fd;
		}
		close(fd);
		usleep(50000);
	}
	fprintf(stderr, "repl_floor: cannot connect to follower %s\n",
		hostport);
	exit(1);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t r = write(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* ------------------------------------------------------------ follower */

static int follower_main(const char *dir, int port)
{
	struct logfile f;
	char *buf = malloc(FOLLOW_CAP);
	size_t have = 0;
	uint64_t last_seq = 0, batches = 0;
	int ls, fd;

	if (!buf)
		die("malloc");
	logfile_open(&f, dir);
	ls = listen_on(port);
	fd = accept(ls, NULL, NULL);
	if (fd < 0) {
		if (errno == EINTR && stopping)
			goto out;
		die("accept");
	}
	sock_nodelay(fd);
	while (!stopping) {
		ssize_t r = read(fd, buf + have, FOLLOW_CAP - have);
		size_t off = 0;
		struct frame_hdr h;
		struct ack a;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("read from leader");
		if (r == 0)
			break; /* the leader went away */
		have += (size_t)r;
		while (have - off >= sizeof(h)) {
			memcpy(&h, buf + off, sizeof(h));
			if (h.magic != FRAME_MAGIC || h.len > BATCH_MAX ||
			    h.seq != last_seq + 1) {
				fprintf(stderr, "repl_floor: follower: bad "
						"frame from the leader\n");
				exit(1);
			}
			if (have - off < sizeof(h) + h.len)
				break;
			off += sizeof(h) + h.len;
			last_seq = h.seq;
			batches++;
		}
		if (off == 0)
			continue;
		logfile_append_sync(&f, buf, off);
		a.seq = last_seq;
		a.syncs = f.syncs;
		if (write_all(fd, (const char *)&a, sizeof(a)))
			break; /* the leader went away */
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	close(fd);
out:
	fprintf(stderr,
		"repl_floor follower: frames=%llu fdatasyncs=%llu "
		"(%.3f per frame)\n",
		(unsigned long long)batches, (unsigned long long)f.syncs,
		batches ? (double)f.syncs / (double)batches : 0.0);
	close(ls);
	close(f.fd);
	free(buf);
	return 0;
}

/* ------------------------------------------------------------- clients */

struct client {
	int fd;
	bool dead;
	uint32_t events;       /* what epoll watches now */
	unsigned pend;	       /* SETs in the open batch, answered at commit */
	unsigned owed;	       /* every unanswered SET: pend + the ring's */
	unsigned nwait, whead; /* --window: closed batches awaiting commit */
	uint64_t wseq[RING];
	unsigned wcnt[RING];
	size_t inlen, outlen, outoff;
	char in[IN_CAP];
	char out[OUT_CAP];
};

struct follower {
	int fd;
	bool alive;
	uint64_t acked, syncs;
	size_t acklen;
	char ackbuf[sizeof(struct ack)];
};

struct leader {
	int ep, ls;
	struct logfile file;
	struct follower fl[2];
	struct client *cl[MAX_CLIENTS];
	int ncl;
	char *batch; /* frame header, then BATCH_MAX payload bytes */
	size_t blen; /* payload bytes in the open batch */
	uint64_t seq, writes, batches;
	/* --window N > 0: a sync thread writes the log, N batches fly */
	int window, efd; /* efd: the sync thread finished a sync */
	uint64_t done;	 /* batches durable here and on one follower */
	pthread_t syncer;
	pthread_mutex_t mu; /* guards the fields below */
	pthread_cond_t cv;
	char *queue; /* frames for the sync thread */
	size_t qlen;
	uint64_t queued_seq, synced_seq, synced_count;
	bool sync_quit;
};

struct cmd {
	int argc;
	const char *argv[MAX_ARGS];
	size_t argl[MAX_ARGS];
};

/*
 * One "<tag><decimal>\r\n" line at p[*off..n).  1 and *v set, *off past
 * it; 0 if incomplete; -1 if malformed (wrong tag, no digits, a number
 * above 10^9, anything but CRLF after the digits).
 */
static int resp_num(const char *p, size_t n, size_t *off, char tag, long *v)
{
	size_t i = *off;
	long x = 0;
	int digits = 0;

	if (i >= n)
		return 0;
	if (p[i] != tag)
		return -1;
	for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
		if (++digits > 9)
			return -1;
		x = x * 10 + (p[i] - '0');
	}
	if (i >= n)
		return 0;
	if (digits == 0 || p[i] != '\r')
		return -1;
	if (i + 1 >= n)
		return 0;
	if (p[i + 1] != '\n')
		return -1;
	*off = i + 2;
	*v = x;
	return 1;
}

/*
 * One RESP array of bulk strings at p[0..n): the bytes it takes (> 0)
 * with c filled (pointing into p), 0 if incomplete, -1 if malformed.
 */
static long resp_parse(const char *p, size_t n, struct cmd *c)
{
	size_t off = 0;
	long v;
	int r = resp_num(p, n, &off, '*', &v);

	if (r <= 0)
		return r;
	if (v < 1 || v > MAX_ARGS)
		return -1;
	c->argc = (int)v;
	for (int i = 0; i < c->argc; i++) {
		r = resp_num(p, n, &off, '$', &v);
		if (r <= 0)
			return r;
		if (v > ARG_MAX)
			return -1;
		if (n - off < (size_t)v + 2)
			return 0;
		if (p[off + (size_t)v] != '\r' ||
		    p[off + (size_t)v + 1] != '\n')
			return -1;
		c->argv[i] = p + off;
		c->argl[i] = (size_t)v;
		off += (size_t)v + 2;
	}
	return (long)off;
}

static bool word_is(const struct cmd *c, int i, const char *w)
{
	size_t n = strlen(w);
	return c->argl[i] == n && strncasecmp(c->argv[i], w, n) == 0;
}

static void out_add(struct client *c, const char *s, size_t n)
{
	/* callers keep REPLY_MAX + 5 * pend free before each command */
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
}

static void leader_drain_acks(struct leader *L, int wait_ms);

/* INFO: the counters, as one bulk string. */
static void reply_info(struct leader *L, struct client *c)
{
	char body[REPLY_MAX - 32], head[32];
	int bn, hn;

	uint64_t syncs = L->file.syncs;

	if (L->window) {
		pthread_mutex_lock(&L->mu);
		syncs = L->synced_count;
		pthread_mutex_unlock(&L->mu);
	}
	leader_drain_acks(L, 0);
	bn = snprintf(body, sizeof(body),
		      "role:leader\r\nwrites:%llu\r\nbatches:%llu\r\n"
		      "fdatasyncs:%llu\r\nfollower_fdatasyncs:%llu,%llu\r\n",
		      (unsigned long long)L->writes,
		      (unsigned long long)L->batches, (unsigned long long)syncs,
		      (unsigned long long)L->fl[0].syncs,
		      (unsigned long long)L->fl[1].syncs);
	if (bn < 0 || bn >= (int)sizeof(body))
		bn = 0;
	hn = snprintf(head, sizeof(head), "$%d\r\n", bn);
	out_add(c, head, (size_t)hn);
	out_add(c, body, (size_t)bn);
	out_add(c, "\r\n", 2);
}

/*
 * Parses c's complete commands into the open batch.  Returns true if it
 * stopped with a complete command left over that this iteration's commit
 * lets through (batch full, reply buffer full or a non-SET behind this
 * batch's SETs, whose reply must follow theirs); false if it waits for
 * input or (--window) for an earlier batch's commit.
 */
static bool client_parse(struct leader *L, struct client *c)
{
	size_t off = 0;
	bool more = false, partial = false;

	while (!c->dead && off < c->inlen) {
		struct cmd cmd;
		long n;

		if (c->outlen + 5 * ((size_t)c->owed + 1) + REPLY_MAX >
		    OUT_CAP) {
			more = c->pend > 0; /* the commit frees room */
			break;
		}
		n = resp_parse(c->in + off, c->inlen - off, &cmd);
		if (n < 0) {
			c->dead = true;
			break;
		}
		if (n == 0) {
			partial = true;
			break;
		}
		if (cmd.argc == 3 && word_is(&cmd, 0, "SET")) {
			size_t need = 8 + cmd.argl[1] + cmd.argl[2];
			uint32_t kl = (uint32_t)cmd.argl[1];
			uint32_t vl = (uint32_t)cmd.argl[2];
			char *p = L->batch + sizeof(struct frame_hdr) + L->blen;

			if (L->blen + need > BATCH_MAX) {
				more = true;
				break;
			}
			if (c->pend == 0 && c->nwait == RING)
				break; /* wait for a commit */
			memcpy(p, &kl, 4);
			memcpy(p + 4, &vl, 4);
			memcpy(p + 8, cmd.argv[1], kl);
			memcpy(p + 8 + kl, cmd.argv[2], vl);
			L->blen += need;
			c->pend++;
			c->owed++;
		} else if (c->owed > 0) {
			more = c->pend > 0;
			break;
		} else if (word_is(&cmd, 0, "PING")) {
			out_add(c, "+PONG\r\n", 7);
		} else if (word_is(&cmd, 0, "CONFIG")) {
			out_add(c, "*0\r\n", 4);
		} else if (word_is(&cmd, 0, "INFO")) {
			reply_info(L, c);
		} else {
			static const char e[] = "-ERR floor3 knows only SET "
						"key value, PING, CONFIG, "
						"INFO\r\n";
			out_add(c, e, sizeof(e) - 1);
		}
		off += (size_t)n;
	}
	if (partial && off == 0 && c->inlen == IN_CAP)
		c->dead = true; /* a command larger than the buffer */
	if (off) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
	return more;
}

static void client_read(struct client *c)
{
	ssize_t r;

	if (c->inlen == IN_CAP)
		return;
	r = read(c->fd, c->in + c->inlen, IN_CAP - c->inlen);
	if (r > 0)
		c->inlen += (size_t)r;
	else if (r == 0 || (errno != EAGAIN && errno != EINTR))
		c->dead = true;
}

static void client_flush(struct client *c)
{
	while (!c->dead && c->outoff < c->outlen) {
		ssize_t r = write(c->fd, c->out + c->outoff,
				  c->outlen - c->outoff);
		if (r > 0)
			c->outoff += (size_t)r;
		else if (r < 0 && errno == EINTR)
			continue;
		else if (r < 0 && errno == EAGAIN)
			break;
		else
			c->dead = true;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
}

/* Watch for input while there is room for it, for output while some
 * is left unsent. */
static void client_watch(struct leader *L, struct client *c)
{
	uint32_t want = 0;
	struct epoll_event ev;

	if (c->inlen < IN_CAP)
		want |= EPOLLIN;
	if (c->outlen)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	ev.events = want;
	ev.data.ptr = c;
	if (epoll_ctl(L->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = want;
	else
		c->dead = true;
}

static void leader_accept(struct leader *L)
{
	for (;;) {
		int fd = accept4(L->ls, NULL, NULL, SOCK_NONBLOCK);
		struct client *c;
		struct epoll_event ev = { .events = EPOLLIN };

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				fprintf(stderr, "repl_floor: accept: %s\n",
					strerror(errno));
			return;
		}
		c = L->ncl < MAX_CLIENTS ? malloc(sizeof(*c)) : NULL;
		if (!c) {
			close(fd); /* too many clients, or no memory */
			continue;
		}
		memset(c, 0, offsetof(struct client, in));
		c->fd = fd;
		c->events = EPOLLIN;
		ev.data.ptr = c;
		sock_nodelay(fd);
		if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
			continue;
		}
		L->cl[L->ncl++] = c;
	}
}

/* ------------------------------------------------------------- commits */

/* Reads whatever acks have arrived, waiting up to wait_ms for one. */
static void leader_drain_acks(struct leader *L, int wait_ms)
{
	struct pollfd pf[2];
	int n = 0, idx[2];

	for (int i = 0; i < 2; i++)
		if (L->fl[i].alive) {
			pf[n].fd = L->fl[i].fd;
			pf[n].events = POLLIN;
			idx[n++] = i;
		}
	if (n == 0 || poll(pf, (nfds_t)n, wait_ms) <= 0)
		return;
	for (int k = 0; k < n; k++) {
		struct follower *f = &L->fl[idx[k]];
		char buf[64 * sizeof(struct ack)];
		ssize_t r;

		if (!pf[k].revents)
			continue;
		r = recv(f->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0) {
			if (!stopping)
				fprintf(stderr,
					"repl_floor: follower %d is gone\n",
					idx[k] + 1);
			f->alive = false;
			continue;
		}
		for (ssize_t i = 0; i < r; i++) {
			f->ackbuf[f->acklen++] = buf[i];
			if (f->acklen == sizeof(struct ack)) {
				struct ack a;
				memcpy(&a, f->ackbuf, sizeof(a));
				f->acked = a.seq;
				f->syncs = a.syncs;
				f->acklen = 0;
			}
		}
	}
}

/* Frames the open batch as the next sequence number and sends it to
 * both followers (one write each); returns the frame's length. */
static size_t leader_send_batch(struct leader *L)
{
	struct frame_hdr h = { FRAME_MAGIC, (uint32_t)L->blen, ++L->seq };
	size_t n = sizeof(h) + L->blen;

	memcpy(L->batch, &h, sizeof(h));
	for (int i = 0; i < 2; i++)
		if (L->fl[i].alive && write_all(L->fl[i].fd, L->batch, n)) {
			fprintf(stderr, "repl_floor: follower %d is gone\n",
				i + 1);
			L->fl[i].alive = false;
		}
	return n;
}

/*
 * The open batch becomes durable on a majority: sent to both followers,
 * written and synced here, then acknowledged by at least one follower.
 * Returns 0, or -1 if stopping or no follower is left.
 */
static int leader_commit(struct leader *L)
{
	size_t n = leader_send_batch(L);

	logfile_append_sync(&L->file, L->batch, n);
	while (L->fl[0].acked < L->seq && L->fl[1].acked < L->seq) {
		if (stopping)
			return -1;
		if (!L->fl[0].alive && !L->fl[1].alive) {
			fprintf(stderr, "repl_floor: no follower left: a "
					"write cannot reach a majority\n");
			return -1;
		}
		leader_drain_acks(L, 100);
	}
	L->batches++;
	L->blen = 0;
	return 0;
}

/* Closes dead clients and compacts the table. */
static void leader_sweep(struct leader *L)
{
	int k = 0;

	for (int i = 0; i < L->ncl; i++) {
		struct client *c = L->cl[i];
		if (c->dead) {
			close(c->fd); /* also leaves the epoll set */
			free(c);
		} else {
			L->cl[k++] = c;
		}
	}
	L->ncl = k;
}

/* ------------------------------------------------- --window: pipelined */

/*
 * With --window N the leader's own pwrite + fdatasync run on this thread,
 * so that the loop keeps reading clients, closing batches and sending
 * them to the followers while the disk works; up to N batches are in
 * flight.  The thread syncs every frame queued since its last sync in
 * one go (as the followers do), then tells the loop through an eventfd.
 */
static void *sync_main(void *arg)
{
	struct leader *L = arg;
	char *buf = malloc(QUEUE_CAP);
	uint64_t one = 1;

	if (!buf)
		die("malloc");
	pthread_mutex_lock(&L->mu);
	for (;;) {
		char *tmp;
		size_t n;
		uint64_t seq;

		while (!L->qlen && !L->sync_quit)
			pthread_cond_wait(&L->cv, &L->mu);
		if (L->sync_quit)
			break;
		tmp = L->queue; /* swap: the loop queues into the other */
		L->queue = buf;
		buf = tmp;
		n = L->qlen;
		seq = L->queued_seq;
		L->qlen = 0;
		pthread_mutex_unlock(&L->mu);
		logfile_append_sync(&L->file, buf, n);
		pthread_mutex_lock(&L->mu);
		L->synced_seq = seq;
		L->synced_count = L->file.syncs;
		if (write(L->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			die("eventfd");
	}
	pthread_mutex_unlock(&L->mu);
	free(buf);
	return NULL;
}

/* Sends the open batch to the followers and queues it for the sync
 * thread, unless the window is full or the queue has no room. */
static void leader_close_batch(struct leader *L)
{
	size_t n = sizeof(struct frame_hdr) + L->blen;
	bool room;

	if (L->seq - L->done >= (uint64_t)L->window)
		return;
	pthread_mutex_lock(&L->mu);
	room = L->qlen + n <= QUEUE_CAP;
	pthread_mutex_unlock(&L->mu);
	if (!room)
		return;
	leader_send_batch(L);
	pthread_mutex_lock(&L->mu);
	memcpy(L->queue + L->qlen, L->batch, n);
	L->qlen += n;
	L->queued_seq = L->seq;
	pthread_cond_signal(&L->cv);
	pthread_mutex_unlock(&L->mu);
	for (int i = 0; i < L->ncl; i++) {
		struct client *c = L->cl[i];
		if (c->pend) { /* client_parse left a ring slot free */
			unsigned k = (c->whead + c->nwait++) % RING;
			c->wseq[k] = L->seq;
			c->wcnt[k] = c->pend;
			c->pend = 0;
		}
	}
	L->batches++;
	L->blen = 0;
}

/* L->done = the last batch durable here and on one follower. */
static void leader_progress(struct leader *L)
{
	uint64_t synced, acked = L->fl[0].acked > L->fl[1].acked
					 ? L->fl[0].acked
					 : L->fl[1].acked;

	pthread_mutex_lock(&L->mu);
	synced = L->synced_seq;
	pthread_mutex_unlock(&L->mu);
	L->done = synced < acked ? synced : acked;
}

/* Queues +OK for c's SETs: with --window those of committed batches,
 * without it those of the batch just committed. */
static unsigned client_answer(struct leader *L, struct client *c)
{
	unsigned n = 0;

	if (!L->window) {
		n = c->pend;
		c->pend = 0;
	}
	while (c->nwait && c->wseq[c->whead] <= L->done) {
		n += c->wcnt[c->whead];
		c->whead = (c->whead + 1) % RING;
		c->nwait--;
	}
	L->writes += n;
	c->owed -= n;
	for (unsigned i = 0; i < n; i++)
		out_add(c, "+OK\r\n", 5);
	return n;
}

/* epoll tags of the non-client descriptors */
static char tag_listen, tag_follower, tag_synced;

static int leader_loop(struct leader *L)
{
	struct epoll_event evs[256];
	bool more = false;

	while (!stopping) {
		int n = epoll_wait(L->ep, evs, 256, more ? 0 : -1);

		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct client *c = evs[i].data.ptr;
			uint64_t v;

			if (evs[i].data.ptr == &tag_listen) {
				leader_accept(L);
			} else if (evs[i].data.ptr == &tag_follower) {
				leader_drain_acks(L, 0);
			} else if (evs[i].data.ptr == &tag_synced) {
				if (read(L->efd, &v, sizeof(v)) < 0 &&
				    errno != EAGAIN)
					die("eventfd");
			} else {
				if (evs[i].events & EPOLLOUT)
					client_flush(c);
				if (evs[i].events &
				    (EPOLLIN | EPOLLHUP | EPOLLERR))
					client_read(c);
			}
		}
		if (L->window) {
			for (int i = 0; i < 2; i++)
				if (!L->fl[i].alive)
					epoll_ctl(L->ep, EPOLL_CTL_DEL,
						  L->fl[i].fd, NULL);
			if (!L->fl[0].alive && !L->fl[1].alive &&
			    L->done < L->seq) {
				fprintf(stderr, "repl_floor: no follower "
						"left: a write cannot reach "
						"a majority\n");
				return 1;
			}
			leader_progress(L);
		}
		more = false;
		for (int i = 0; i < L->ncl; i++)
			if (!L->cl[i]->dead && L->cl[i]->inlen &&
			    client_parse(L, L->cl[i]))
				more = true;
		if (L->blen && !L->window) {
			if (leader_commit(L))
				return stopping ? 0 : 1;
		} else if (L->blen) {
			leader_close_batch(L);
			if (L->blen)
				more = false; /* the window is full */
		}
		for (int i = 0; i < L->ncl; i++) {
			struct client *c = L->cl[i];
			/* a command held behind these SETs may go now */
			if (client_answer(L, c) && c->inlen)
				more = true;
			client_flush(c);
			if (!c->dead)
				client_watch(L, c);
		}
		leader_sweep(L);
	}
	return 0;
}

static int leader_main(const char *dir, int port, const char *f1,
		       const char *f2, int window)
{
	static struct leader L;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &tag_listen };
	uint64_t syncs;
	int rc;

	L.batch = malloc(sizeof(struct frame_hdr) + BATCH_MAX);
	if (!L.batch)
		die("malloc");
	logfile_open(&L.file, dir);
	L.fl[0].fd = connect_to(f1);
	L.fl[1].fd = connect_to(f2);
	L.fl[0].alive = L.fl[1].alive = true;
	L.ls = listen_on(port);
	fcntl(L.ls, F_SETFL, O_NONBLOCK);
	L.ep = epoll_create1(0);
	if (L.ep < 0 || epoll_ctl(L.ep, EPOLL_CTL_ADD, L.ls, &ev))
		die("epoll");
	L.window = window;
	if (window) {
		L.queue = malloc(QUEUE_CAP);
		L.efd = eventfd(0, EFD_NONBLOCK);
		if (!L.queue || L.efd < 0)
			die("eventfd");
		pthread_mutex_init(&L.mu, NULL);
		pthread_cond_init(&L.cv, NULL);
		ev.data.ptr = &tag_synced;
		if (epoll_ctl(L.ep, EPOLL_CTL_ADD, L.efd, &ev))
			die("epoll");
		ev.data.ptr = &tag_follower;
		for (int i = 0; i < 2; i++)
			if (epoll_ctl(L.ep, EPOLL_CTL_ADD, L.fl[i].fd, &ev))
				die("epoll");
		if (pthread_create(&L.syncer, NULL, sync_main, &L)) {
			fprintf(stderr, "repl_floor: no sync thread\n");
			return 1;
		}
	}
	rc = leader_loop(&L);
	leader_drain_acks(&L, 50);
	syncs = L.file.syncs;
	if (window) {
		pthread_mutex_lock(&L.mu);
		L.sync_quit = true;
		pthread_cond_signal(&L.cv);
		pthread_mutex_unlock(&L.mu);
		pthread_join(L.syncer, NULL);
		syncs = L.file.syncs;
		close(L.efd);
		free(L.queue);
	}
	fprintf(stderr,
		"repl_floor leader: writes=%llu batches=%llu (%.1f writes "
		"per batch) fdatasyncs=%llu (%.3f per write); followers' "
		"fdatasyncs %llu and %llu\n",
		(unsigned long long)L.writes, (unsigned long long)L.batches,
		L.batches ? (double)L.writes / (double)L.batches : 0.0,
		(unsigned long long)syncs,
		L.writes ? (double)syncs / (double)L.writes : 0.0,
		(unsigned long long)L.fl[0].syncs,
		(unsigned long long)L.fl[1].syncs);
	for (int i = 0; i < L.ncl; i++)
		L.cl[i]->dead = true;
	leader_sweep(&L);
	close(L.fl[0].fd);
	close(L.fl[1].fd);
	close(L.ls);
	close(L.ep);
	close(L.file.fd);
	free(L.batch);
	return rc;
}

/* ---------------------------------------------------------------- main */

#ifndef REPL_FLOOR_FUZZ /* bench/fuzz_repl_floor.c brings its own */

static void usage(void)
{
	fprintf(stderr, "usage: repl_floor --role follower --dir D --port "
			"PORT\n"
			"       repl_floor --role leader --dir D --port "
			"CLIENT_PORT "
			"--follower HOST:PORT --follower HOST:PORT [--window "
			"N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *role = NULL, *dir = NULL, *fl[2] = { NULL, NULL };
	int port = 0, nfl = 0, window = 0;
	struct sigaction sa = { .sa_handler = on_signal };

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--role"))
			role = argv[i + 1];
		else if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
		else if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--window"))
			window = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--follower") && nfl < 2)
			fl[nfl++] = argv[i + 1];
		else
			usage();
	}
	if (argc % 2 == 0 || !role || !dir || port <= 0 || port > 65535 ||
	    window < 0 || window > WINDOW_MAX)
		usage();
	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: calls see EINTR */
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(role, "follower") && nfl == 0)
		return follower_main(dir, port);
	if (!strcmp(role, "leader") && nfl == 2)
		return leader_main(dir, port, fl[0], fl[1], window);
	usage();
	return 2;
}
#endif
