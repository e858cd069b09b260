/*
 * groups_idle.c — what idle groups cost a server (`make groups-idle`).
 *
 * Three sr_servers in this process, on one loop, over loopback TCP, each
 * carrying the same N groups (memory storage), all idle once every group
 * has a leader.  For each N given (default 1 256 4096) it measures, over a
 * window, per server: CPU (the process's user+sys over three), loop
 * iterations and the CPU each costs, messages sent on the wire (a
 * coalesced message counts as one) and the messages the groups' engines
 * sent (each heartbeat and answer), frames and write(2) calls,
 * deadline-timer firings and the group ticks they ran, and the memory
 * each group takes (resident set growth while creating them).
 *
 *   groups_idle [N...]        env: HB_MS (heartbeat, default 100),
 *                             WINDOW_MS (default 3000), WAL_DIR (a
 *                             directory: the servers use the shared WAL
 *                             there, and a restart is timed),
 *                             COALESCE=0 (heartbeat coalescing off:
 *                             every heartbeat and answer a message),
 *                             LEAD_MAX_MS (give up waiting for leaders
 *                             after this long, default 300000)
 *
 * With heartbeat waves the frames and the timer firings stay flat in N;
 * with coalescing the wire messages do too, while the engines' messages
 * (a heartbeat per group per follower, and its answer) grow with N.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "server_testlib.h"
#include "seshat/server.h"

#define NS 3

static sr_loop *L;
static sr_server *S[NS];
static char addr[NS][64];
static sr_group **GR[NS];
static uint64_t iterations;
static const char *wal_dir;
static uint32_t hb_ms;
static uint64_t lead_max_ms = 300000;
static int coalesce_off;

static int apply_nothing(void *ctx, const sr_entry *e, void **result)
{
	(void)ctx;
	(void)e;
	*result = NULL;
	return 0;
}

static const sr_fsm_ops fsm = { .apply = apply_nothing };

static void log_problems(void *ctx, int level, const char *line)
{
	(void)ctx;
	if (level >= SR_LOG_WARN)
		fprintf(stderr, "%s\n", line);
}

static double cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 +
	       ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
}

static long rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * 4;
}

static void run_for(uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		sr_loop_run_once(L, 10);
		iterations++;
	}
}

static uint32_t count_led(uint32_t n)
{
	uint32_t led = 0;

	for (uint32_t k = 0; k < n; k++) {
		for (int i = 0; i < NS; i++) {
			sr_status st;
			sr_group_status(GR[i][k], &st);
			if (st.role == SR_LEADER) {
				led++;
				break;
			}
		}
	}
	return led;
}

struct sample {
	double cpu;
	uint64_t iters, msgs, wire, frames, writes, fires, ticks;
};

static void sample(struct sample *s)
{
	memset(s, 0, sizeof(*s));
	s->cpu = cpu_ms();
	s->iters = iterations;
	for (int i = 0; i < NS; i++) {
		sr_server_stats st;
		sr_tcp_stats ts;
		sr_server_stats_get(S[i], &st);
		sr_tcp_stats_get(sr_server_tcp(S[i]), &ts);
		s->msgs += ts.msgs_sent;
		/* a coalesced message is one on the wire */
		s->wire += ts.msgs_sent - ts.coalesced_msgs + ts.coalesced_sent;
		s->frames += ts.frames_sent;
		s->writes += ts.writes;
		s->fires += st.timer_fires;
		s->ticks += st.groups_due;
	}
}

/* Create server i and its n groups (reopen: the groups on disk). */
static int open_server(int i, uint32_t n, int reopen)
{
	char dir[512];
	sr_server_config c;
	uint32_t *ids = calloc(n ? n : 1, sizeof(*ids));
	size_t on_disk = n;

	sr_server_config_init(&c, (sr_id)i + 1);
	c.listen_addr = addr[i];
	c.storage = SR_SERVER_MEM;
	if (wal_dir) {
		snprintf(dir, sizeof(dir), "%s/s%d", wal_dir, i + 1);
		c.storage = SR_SERVER_WAL;
		c.data_dir = dir;
	}
	c.no_default_group = 1;
	c.log = log_problems;
	c.loop = L;
	c.raft.heartbeat_ms = hb_ms;
	c.raft.election_timeout_ms = hb_ms * 10;
	if (coalesce_off)
		c.tcp.coalesce_max_bytes = 0;
	if (!ids || sr_server_create(&c, &S[i]) || sr_server_start(S[i]))
		return 1;
	for (uint32_t k = 0; k < n; k++)
		ids[k] = k + 1;
	if (reopen &&
	    (sr_server_groups_on_disk(S[i], ids, n, &on_disk) || on_disk != n))
		return 1;
	if (!GR[i])
		GR[i] = calloc(n, sizeof(*GR[i]));
	for (uint32_t k = 0; k < n; k++) {
		sr_group_config gc;
		sr_group_config_init(&gc, ids[k]);
		for (int j = 0; j < NS; j++)
			sr_membership_add(&gc.peers, (sr_id)j + 1,
					  SR_ROLE_VOTER, addr[j]);
		gc.fsm = &fsm;
		if (sr_server_group_create(S[i], &gc, &GR[i][k]))
			return 1;
	}
	free(ids);
	return 0;
}

/* Destroy the servers and open them again from the WAL: the time to
 * reopen every group, and until every group has a leader again. */
static int time_restart(uint32_t n)
{
	uint64_t t0, opened, end;

	for (int i = 0; i < NS; i++)
		sr_server_destroy(S[i]);
	t0 = now_ms();
	for (int i = 0; i < NS; i++)
		if (open_server(i, n, 1))
			return 1;
	opened = now_ms();
	end = opened + lead_max_ms;
	while (count_led(n) < n && now_ms() < end)
		run_for(50);
	if (count_led(n) < n) {
		printf("        restart: %u groups x 3 servers reopened from "
		       "the WAL in %llu ms, only %u led after %llu ms\n",
		       n, (unsigned long long)(opened - t0), count_led(n),
		       (unsigned long long)(now_ms() - t0));
		return 1;
	}
	printf("        restart: %u groups x 3 servers reopened from the "
	       "WAL in %llu ms, all led after %llu ms\n",
	       n, (unsigned long long)(opened - t0),
	       (unsigned long long)(now_ms() - t0));
	return 0;
}

static int measure(uint32_t n, uint32_t hb, uint64_t window)
{
	struct sample a, b;
	long rss0;
	uint64_t end, t0, created;
	double sec = window / 1000.0, per;

	if (sr_loop_create(NULL, &L))
		return 1;
	for (int i = 0; i < NS; i++)
		snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", free_port());
	rss0 = rss_kib();
	t0 = now_ms();
	for (int i = 0; i < NS; i++)
		if (open_server(i, n, 0))
			return 1;
	created = now_ms();
	per = (double)(rss_kib() - rss0) / (NS * (double)n);
	end = now_ms() + lead_max_ms;
	while (count_led(n) < n && now_ms() < end)
		run_for(200);
	if (wal_dir)
		printf("        create: %u groups x 3 servers in %llu ms "
		       "(%.2f ms per group), %u led after %llu ms\n",
		       n, (unsigned long long)(created - t0),
		       (double)(created - t0) / (NS * (double)n), count_led(n),
		       (unsigned long long)(now_ms() - t0));
	if (count_led(n) < n) {
		fprintf(stderr, "%u groups: only %u led\n", n, count_led(n));
		return 1;
	}
	run_for(2 * hb * 10); /* settle: stragglers' first heartbeats */
	sample(&a);
	run_for(window);
	sample(&b);
	printf("%6u %8.1f %9.0f %8.1f %10.0f %10.0f %9.0f %9.0f %8.0f %10.0f "
	       "%8.1f\n",
	       n, (b.cpu - a.cpu) / sec / NS / 10.0,
	       (double)(b.iters - a.iters) / sec,
	       (b.cpu - a.cpu) * 1000.0 / (double)(b.iters - a.iters),
	       (double)(b.wire - a.wire) / sec / NS,
	       (double)(b.msgs - a.msgs) / sec / NS,
	       (double)(b.frames - a.frames) / sec / NS,
	       (double)(b.writes - a.writes) / sec / NS,
	       (double)(b.fires - a.fires) / sec / NS,
	       (double)(b.ticks - a.ticks) / sec / NS, per);
	fflush(stdout);
	if (wal_dir && time_restart(n))
		return 1;
	for (int i = 0; i < NS; i++) {
		sr_server_destroy(S[i]);
		free(GR[i]);
		GR[i] = NULL;
	}
	sr_loop_destroy(L);
	return 0;
}

int main(int argc, char **argv)
{
	static const uint32_t dflt[] = { 1, 256, 4096 };
	uint32_t hb = getenv("HB_MS") ? (uint32_t)atoi(getenv("HB_MS")) : 100;
	char dir[512];
	uint64_t window = getenv("WINDOW_MS") ? (uint64_t)atoll(getenv("WINDOW_"
								       "MS"))
					      : 3000;

	hb_ms = hb;
	if (getenv("LEAD_MAX_MS"))
		lead_max_ms = (uint64_t)atoll(getenv("LEAD_MAX_MS"));
	wal_dir = getenv("WAL_DIR");
	coalesce_off = getenv("COALESCE") && !strcmp(getenv("COALESCE"), "0");
	printf("3 servers in one process, one loop, loopback, %s; heartbeat "
	       "%u ms; coalescing %s; per server over %llu ms idle\n",
	       wal_dir ? "shared WAL" : "memory storage", hb,
	       coalesce_off ? "off" : "on", (unsigned long long)window);
	printf("groups  cpu%%/srv  iters/s  us/iter     msgs/s  engine m/s  "
	       "frames/s  writes/s  fires/s  ticks/s  KiB/grp\n");
	for (int i = 1; i < argc || (argc == 1 && i <= 3); i++) {
		uint32_t n = argc > 1 ? (uint32_t)atoi(argv[i]) : dflt[i - 1];
		if (wal_dir) { /* a fresh directory per N */
			snprintf(dir, sizeof(dir), "%s/n%u", getenv("WAL_DIR"),
				 n);
			wal_dir = dir;
			mkdir(dir, 0755);
		}
		if (n == 0 || measure(n, hb, window))
			return 1;
		wal_dir = getenv("WAL_DIR");
	}
	return 0;
}
