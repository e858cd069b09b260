/*
 * bench_tcp.c — throughput of the TCP transport on loopback (`make bench`).
 *
 *   bench_tcp [seconds-per-run [runs]]      (default 1.0 s, 5 runs)
 *
 * Two processes, one transport each: the sender (node 1, this process)
 * and the receiver (node 2, a forked child).  The receiver acknowledges
 * with an append response carrying the highest seq it has seen, every 64
 * messages and whenever its input goes quiet, and the sender keeps at
 * most a window of unacknowledged messages in flight, like the engine's
 * flow control.  A run counts acknowledged messages over a fixed time;
 * each scenario prints the median of its runs:
 *
 *   small    heartbeat-sized appends (no entries, 80-byte frames)
 *   64k      appends carrying one 64 KiB entry
 *   each scenario batched (the default: one write per loop iteration,
 *   the messages of a write in batch frames of up to 64 KiB), batched with
 *   one frame per message (batch_max_bytes 0, as to a peer that does not
 *   take batch frames) and write-through (one write per message)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "seshat/codec.h"
#include "seshat/tcp.h"

#define CLUSTER	  99
#define ACK_EVERY 64

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- receiver (child) ------------------------------------------- */

struct rx {
	sr_tcp *tcp;
	uint64_t high, acked;
	uint64_t count; /* appends received: must equal high at the end */
	int stop;
};

static void rx_ack(struct rx *r)
{
	sr_msg ack;
	memset(&ack, 0, sizeof(ack));
	ack.type = SR_MSG_APPEND_RESP;
	ack.from = 2;
	ack.to = 1;
	ack.u.append_resp.success = 1;
	ack.u.append_resp.seq = r->high;
	if (sr_tcp_send(r->tcp, &ack) == 0)
		r->acked = r->high;
}

static void rx_message(void *ctx, const sr_msg *m)
{
	struct rx *r = ctx;
	if (m->type == SR_MSG_TIMEOUT_NOW) {
		r->stop = 1;
		return;
	}
	r->count++;
	if (m->u.append.seq > r->high)
		r->high = m->u.append.seq;
	if (r->high - r->acked >= ACK_EVERY)
		rx_ack(r);
}

static int receiver(int to_parent, int from_parent)
{
	struct rx r = { 0 };
	sr_tcp_config cfg;
	sr_tcp_config_init(&cfg, 2, CLUSTER);
	cfg.listen_addr = "127.0.0.1:0";
	cfg.on_message = rx_message;
	cfg.ctx = &r;
	if (sr_tcp_create(&cfg, &r.tcp))
		return 1;
	int port = sr_tcp_port(r.tcp), aport;
	if (write(to_parent, &port, sizeof(port)) != sizeof(port) ||
	    read(from_parent, &aport, sizeof(aport)) != sizeof(aport))
		return 1;
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", aport);
	sr_tcp_set_peer(r.tcp, 1, addr);
	sr_loop *l = sr_tcp_loop(r.tcp);
	while (!r.stop) {
		sr_loop_run_once(l, 2);
		if (r.high != r.acked)
			rx_ack(&r); /* input went quiet: ack the tail */
	}
	sr_tcp_destroy(r.tcp);
	if (r.count != r.high) {
		fprintf(stderr, "receiver: %llu messages, highest seq %llu\n",
			(unsigned long long)r.count,
			(unsigned long long)r.high);
		return 3;
	}
	return 0;
}

/* ---- sender (parent) -------------------------------------------- */

struct tx {
	sr_tcp *tcp;
	uint64_t acked;
};

static void tx_message(void *ctx, const sr_msg *m)
{
	struct tx *t = ctx;
	if (m->type == SR_MSG_APPEND_RESP && m->u.append_resp.seq > t->acked)
		t->acked = m->u.append_resp.seq;
}

static int sender_open(struct tx *t, int port, int write_through,
		       int no_batch_frames, int peer)
{
	sr_tcp_config cfg;
	char listen[64], addr[64];
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	sr_tcp_config_init(&cfg, 1, CLUSTER);
	cfg.listen_addr = listen;
	cfg.on_message = tx_message;
	cfg.ctx = t;
	cfg.write_through = write_through;
	if (no_batch_frames)
		cfg.batch_max_bytes = 0;
	t->acked = 0;
	if (sr_tcp_create(&cfg, &t->tcp))
		return -1;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", peer);
	return sr_tcp_set_peer(t->tcp, 2, addr);
}

struct scenario {
	const char *name;
	uint32_t entry_len;
	uint32_t window;
	int write_through;
	int no_batch_frames;
};

/* One timed run; returns acknowledged messages per second. */
static double run_once(struct tx *t, const struct scenario *s, uint64_t *seq,
		       const uint8_t *data, double secs, size_t *frame)
{
	sr_entry e = { .term = 1,
		       .index = 1,
		       .type = SR_ENTRY_NORMAL,
		       .len = s->entry_len,
		       .data = data };
	sr_loop *l = sr_tcp_loop(t->tcp);
	sr_msg m;
	memset(&m, 0, sizeof(m));
	m.type = SR_MSG_APPEND;
	m.from = 1;
	m.to = 2;
	m.term = 1;
	if (s->entry_len) {
		m.u.append.entries = &e;
		m.u.append.n_entries = 1;
	}
	*frame = sr_codec_size(&m);
	uint64_t start_acked = t->acked, t0 = now_us();
	uint64_t end = t0 + (uint64_t)(secs * 1e6);
	while (now_us() < end) {
		/* fill the window, as one engine step would */
		while (*seq - t->acked < s->window) {
			m.u.append.seq = ++*seq;
			if (sr_tcp_send(t->tcp, &m)) {
				--*seq;
				break;
			}
		}
		sr_loop_run_once(l, 1);
	}
	double rate = (double)(t->acked - start_acked) /
		      ((double)(now_us() - t0) / 1e6);
	/* drain before the next run */
	uint64_t t1 = now_us();
	while (t->acked < *seq && now_us() - t1 < 2000000)
		sr_loop_run_once(l, 1);
	return rate;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	int up[2], down[2];
	if (secs <= 0 || runs < 1 || runs > 50 || pipe(up) || pipe(down))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	pid_t pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0)
		_exit(receiver(up[1], down[0]));

	int rport, aport;
	struct tx t;
	if (read(up[0], &rport, sizeof(rport)) != sizeof(rport))
		return 2;
	if (sender_open(&t, 0, 0, 0, rport))
		return 2;
	aport = sr_tcp_port(t.tcp);
	if (write(down[1], &aport, sizeof(aport)) != sizeof(aport))
		return 2;

	static const struct scenario sc[] = {
		{ "small, batched", 0, 4096, 0, 0 },
		{ "small, frame per message", 0, 4096, 0, 1 },
		{ "small, write per message", 0, 4096, 1, 0 },
		{ "64 KiB, batched", 65536, 64, 0, 0 },
		{ "64 KiB, write per message", 65536, 64, 1, 0 },
	};
	uint8_t *data = calloc(1, 65536);
	double rates[50];
	printf("tcp transport, loopback, 2 processes; median of %d runs x "
	       "%.1f s\n",
	       runs, secs);
	uint64_t seq = 0; /* never reset: the receiver's acks only grow */
	for (size_t i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
		size_t frame = 0;
		sr_tcp_destroy(t.tcp);
		if (sender_open(&t, aport, sc[i].write_through,
				sc[i].no_batch_frames, rport))
			return 2;
		t.acked = seq; /* everything earlier was acknowledged */
		run_once(&t, &sc[i], &seq, data, 0.2, &frame); /* warm up */
		uint64_t writes0, msgs0, frames0;
		sr_tcp_stats st;
		sr_tcp_stats_get(t.tcp, &st);
		writes0 = st.writes;
		msgs0 = st.msgs_sent;
		frames0 = st.frames_sent;
		for (int r = 0; r < runs; r++)
			rates[r] = run_once(&t, &sc[i], &seq, data, secs,
					    &frame);
		sr_tcp_stats_get(t.tcp, &st);
		qsort(rates, (size_t)runs, sizeof(rates[0]), cmp_double);
		double med = rates[runs / 2];
		uint64_t dw = st.writes - writes0,
			 df = st.frames_sent - frames0;
		printf("  %-28s %10.0f msg/s %8.1f MB/s  %6.1f msgs/write  "
		       "%6.1f msgs/frame  (frame %zu B, min %.0f, max %.0f)\n",
		       sc[i].name, med, med * (double)frame / 1e6,
		       (double)(st.msgs_sent - msgs0) / (double)(dw ? dw : 1),
		       (double)(st.msgs_sent - msgs0) / (double)(df ? df : 1),
		       frame, rates[0], rates[runs - 1]);
		fflush(stdout);
	}
	sr_msg stop;
	memset(&stop, 0, sizeof(stop));
	stop.type = SR_MSG_TIMEOUT_NOW;
	stop.from = 1;
	stop.to = 2;
	sr_tcp_send(t.tcp, &stop);
	for (int i = 0; i < 100; i++)
		sr_loop_run_once(sr_tcp_loop(t.tcp), 5);
	int status = 0;
	waitpid(pid, &status, 0);
	sr_tcp_destroy(t.tcp);
	free(data);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
