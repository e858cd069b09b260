/*
 * main.c — kvnode's command line, start-up and shutdown.
 *
 * Start-up: parse and check every option before touching anything; raise
 * the open-file limit (one descriptor per client); create the data
 * directory and lock it (one process per directory); open the store, the
 * transport and the engine (raft.c); listen for clients (server.c); then
 * run the event loop until SIGTERM or SIGINT.
 *
 * Shutdown is orderly but not required for safety: the WAL makes an entry
 * durable before the engine may count it, and a client hears "OK" only
 * after its write was applied, i.e. committed on a majority of durable
 * logs.  So SIGKILL at any moment loses nothing that was acknowledged;
 * SIGTERM only spares clients their broken connections.  Shutdown closes
 * clients (their in-flight requests are abandoned: the client sees the
 * connection close, and a write may or may not have happened), stops the
 * transport, destroys the engine and closes the WAL, and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvnode.h"

static const char usage_text[] =
	"usage: kvnode --id N --data DIR --client HOST:PORT --raft HOST:PORT\n"
	"              [--peers 1=RAFTHOST:PORT/CLIENTHOST:PORT,2=...] "
	"[--storage wal|mem]\n"
	"              [options]\n"
	"\n"
	"A replicated key-value server speaking the Redis protocol (RESP2), "
	"on\n"
	"libseshatraft.  Any node accepts connections; writes, reads and\n"
	"membership changes are served by the leader, others redirect with\n"
	"-MOVED 0 LEADERHOST:PORT (use redis-cli -c).  See docs/kvnode.md.\n"
	"\n"
	"Required:\n"
	"  --id N              this node's id, an integer >= 1, unique "
	"forever\n"
	"  --data DIR          directory for the log, snapshots and metadata;\n"
	"                      created if missing; one process per directory\n"
	"  --client HOST:PORT  where Redis clients connect\n"
	"  --raft HOST:PORT    where the other nodes connect (Raft traffic)\n"
	"\n"
	"Cluster:\n"
	"  --peers LIST        the initial voters, identical on every initial\n"
	"                      member: ID=RAFTHOST:PORT/CLIENTHOST:PORT,...\n"
	"                      Used only when DIR holds no state yet; ignored "
	"on\n"
	"                      restart.  A node whose --id is not in LIST (or\n"
	"                      with no --peers at all) joins an existing "
	"cluster:\n"
	"                      it waits until the leader adds it with\n"
	"                      CLUSTER ADD ID RAFTHOST:PORT CLIENTHOST:PORT.\n"
	"                      The members it hears from become its peers at\n"
	"                      the address their handshake advertises.\n"
	"  --cluster-id N      cluster identity checked when peers connect "
	"(1)\n"
	"  --cluster-secret-file PATH\n"
	"                      the secret every node must prove it knows "
	"before\n"
	"                      Raft traffic flows (HMAC challenge-response);\n"
	"                      line 1: the secret (16..1024 bytes), optional\n"
	"                      line 2: the previous secret, still accepted\n"
	"                      during a rotation.  The file must not be\n"
	"                      accessible by others (chmod 600 or 640).\n"
	"                      Without it peers are not authenticated: for\n"
	"                      loopback demos only (docs/operations.md)\n"
	"\n"
	"Storage:\n"
	"  --storage wal|mem   wal (default): durable; a write is "
	"acknowledged\n"
	"                      after a majority made it durable with "
	"fdatasync.\n"
	"                      mem: the log lives in memory (lost on exit).\n"
	"  --snapshot-entries N  snapshot after N applied entries (1048576)\n"
	"  --snapshot-bytes N  or once the entries applied since the last\n"
	"                      snapshot hold N bytes (67108864; 0: by count)\n"
	"  --snapshot-trailing N entries kept behind a snapshot (4096)\n"
	"  --snapshot-fork yes|no  yes (default): a forked child serializes\n"
	"                      snapshots while the node runs; no: the node\n"
	"                      stops while it serializes them\n"
	"  --snapshot-test-delay-ms N  for tests: a snapshot's child waits N "
	"ms\n"
	"                      before it writes (0)\n"
	"  --wal-segment-bytes N size of the WAL's preallocated segment files\n"
	"                      (67108864; 65536..1073741824)\n"
	"  --wal-direct-io yes|no  yes (default): each batch is one O_DIRECT\n"
	"                      | O_DSYNC write (if the filesystem takes it);\n"
	"                      no: pwrite + fdatasync\n"
	"  --wal-repair MODE   a damaged WAL at start: peers (default) cuts\n"
	"                      it and re-fetches what it lost from the leader\n"
	"                      (no vote until then); none refuses to start;\n"
	"                      truncate cuts it and forgets what it lost,\n"
	"                      which MAY LOSE acknowledged writes: only to\n"
	"                      unblock a group (docs/operations.md)\n"
	"\n"
	"Timing:\n"
	"  --election-ms N     election timeout T in ms; nodes wait a random\n"
	"                      time in [T, 2T) before campaigning (1000)\n"
	"  --heartbeat-ms N    leader heartbeat interval (T/10)\n"
	"  --timeout-ms N      answer a request still waiting after N ms with\n"
	"                      -TIMEOUT (a write's outcome is then unknown) "
	"(5000)\n"
	"  --write-batches N   write batches a leader keeps in flight per\n"
	"                      group; writes arriving meanwhile wait and go\n"
	"                      together when one is done (1; 0: no limit)\n"
	"\n"
	"Limits:\n"
	"  --max-bulk BYTES    largest bulk string accepted (536870912); a "
	"write\n"
	"                      larger than the engine's entry limit (16 MiB) "
	"is\n"
	"                      refused with an error\n"
	"  --requirepass PASS  clients must AUTH with PASS (or HELLO ... "
	"AUTH)\n"
	"                      before any other command\n"
	"  --user NAME:PASS    also accept AUTH NAME PASS (one named user "
	"besides\n"
	"                      default)\n"
	"  --cluster-mode yes|no  yes (default): Redis Cluster rules, keys of "
	"one\n"
	"                      command or transaction must share a slot "
	"(CROSSSLOT);\n"
	"                      no: plain Redis, any keys together (of one\n"
	"                      group)\n"
	"  --groups N          split the 16384 slots into N Raft groups, one\n"
	"                      contiguous range each, all hosted by every\n"
	"                      node; each node serves the ranges whose group\n"
	"                      it leads (1; 1..64).  Same N on every node.\n"
	"                      One raft port and one WAL carry them all.\n"
	"  --max-clients N     client connections (10000; also bounded by the\n"
	"                      open-file limit, which kvnode raises to its "
	"hard\n"
	"                      limit); more are answered\n"
	"                      -ERR max number of clients reached\n"
	"  --client-output-buffer-limit 'HARD SOFT SECONDS'\n"
	"                      disconnect a client whose unsent replies reach\n"
	"                      HARD bytes, or stay above SOFT for more than\n"
	"                      SECONDS; 0 turns a limit off; sizes take k, "
	"kb,\n"
	"                      m, mb, g, gb as in redis.conf "
	"('256mb 4mb 60')\n"
	"  --idle-timeout S    close a client idle for S seconds (0: never; "
	"0)\n"
	"\n"
	"Other:\n"
	"  --log-level L       debug, info (default), warn or error; to "
	"stderr\n"
	"  --help              this text\n"
	"  --version           the version\n"
	"\n"
	"Signals: SIGTERM and SIGINT stop the node cleanly (exit status 0).\n"
	"Exit status: 0 after a clean stop, 1 on a start-up error or when the\n"
	"storage failed (EIO, ENOSPC: fix it and restart), 2 on a bad command\n"
	"line, 71 if memory ran out while applying an entry.\n";

static struct kv_server server;

uint64_t kv_now_ms(const struct kv_server *s)
{
	struct timespec ts;

	if (s->loop)
		return sr_loop_now_ms(s->loop);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *level_name(int level)
{
	static const char *names[] = { "DEBUG", "INFO", "WARN", "ERROR" };
	return level >= 0 && level <= 3 ? names[level] : "?";
}

void kv_log_hook(void *ctx, int level, const char *line)
{
	struct kv_server *s = ctx;
	struct timespec ts;
	struct tm tm;
	char when[32];

	if (level < s->opt.log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld node %llu %s: %s\n", when,
		ts.tv_nsec / 1000000, (unsigned long long)s->opt.id,
		level_name(level), line);
}

void kv_log(struct kv_server *s, int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	kv_log_hook(s, level, line);
}

/* ------------------------------------------------------------------ */
/* Command line                                                       */
/* ------------------------------------------------------------------ */

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

enum {
	OPT_ID = 1000,
	OPT_DATA,
	OPT_CLIENT,
	OPT_RAFT,
	OPT_PEERS,
	OPT_STORAGE,
	OPT_ELECTION,
	OPT_HEARTBEAT,
	OPT_SNAP_ENTRIES,
	OPT_SNAP_TRAILING,
	OPT_SNAP_BYTES,
	OPT_SNAP_FORK,
	OPT_SNAP_TEST_DELAY,
	OPT_WAL_SEGMENT,
	OPT_WAL_DIRECT,
	OPT_WAL_REPAIR,
	OPT_MAX_BULK,
	OPT_TIMEOUT,
	OPT_WRITE_BATCHES,
	OPT_CLUSTER_ID,
	OPT_MAX_CLIENTS,
	OPT_OBUF_LIMIT,
	OPT_IDLE_TIMEOUT,
	OPT_LOG_LEVEL,
	OPT_REQUIREPASS,
	OPT_USER,
	OPT_CLUSTER_MODE,
	OPT_SECRET_FILE,
	OPT_GROUPS,
	OPT_HELP,
	OPT_VERSION
};

static const struct option long_opts[] = {
	{ "id", required_argument, NULL, OPT_ID },
	{ "data", required_argument, NULL, OPT_DATA },
	{ "client", required_argument, NULL, OPT_CLIENT },
	{ "raft", required_argument, NULL, OPT_RAFT },
	{ "peers", required_argument, NULL, OPT_PEERS },
	{ "storage", required_argument, NULL, OPT_STORAGE },
	{ "election-ms", required_argument, NULL, OPT_ELECTION },
	{ "heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT },
	{ "snapshot-entries", required_argument, NULL, OPT_SNAP_ENTRIES },
	{ "snapshot-trailing", required_argument, NULL, OPT_SNAP_TRAILING },
	{ "snapshot-bytes", required_argument, NULL, OPT_SNAP_BYTES },
	{ "snapshot-fork", required_argument, NULL, OPT_SNAP_FORK },
	{ "snapshot-test-delay-ms", required_argument, NULL,
	  OPT_SNAP_TEST_DELAY },
	{ "wal-segment-bytes", required_argument, NULL, OPT_WAL_SEGMENT },
	{ "wal-direct-io", required_argument, NULL, OPT_WAL_DIRECT },
	{ "wal-repair", required_argument, NULL, OPT_WAL_REPAIR },
	{ "max-bulk", required_argument, NULL, OPT_MAX_BULK },
	{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
	{ "write-batches", required_argument, NULL, OPT_WRITE_BATCHES },
	{ "cluster-id", required_argument, NULL, OPT_CLUSTER_ID },
	{ "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
	{ "client-output-buffer-limit", required_argument, NULL,
	  OPT_OBUF_LIMIT },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "requirepass", required_argument, NULL, OPT_REQUIREPASS },
	{ "user", required_argument, NULL, OPT_USER },
	{ "cluster-mode", required_argument, NULL, OPT_CLUSTER_MODE },
	{ "cluster-secret-file", required_argument, NULL, OPT_SECRET_FILE },
	{ "groups", required_argument, NULL, OPT_GROUPS },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 }
};

static int bad(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "kvnode: bad value '%s' for --%s (%s)\n",
		val ? val : "", opt, want);
	return -1;
}

static int parse_level(const char *v, int *out)
{
	static const char *names[] = { "debug", "info", "warn", "error" };

	for (int i = 0; i < 4; i++)
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
	return -1;
}

/* A size as redis.conf writes it: 1k = 1000, 1kb = 1024, and so on for m
 * and g (case-insensitive).  *pp advances past it; -1 on a bad size. */
static int parse_size(const char **pp, uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = { { "kb", 1024ull },
		      { "k", 1000ull },
		      { "mb", 1024ull * 1024 },
		      { "m", 1000ull * 1000 },
		      { "gb", 1024ull * 1024 * 1024 },
		      { "g", 1000ull * 1000 * 1000 },
		      { "b", 1 } };
	const char *p = *pp;
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t n = strlen(units[i].unit);
		if (strncasecmp(end, units[i].unit, n) == 0 &&
		    (end[n] == 0 || end[n] == ' ' || end[n] == ',')) {
			mul = units[i].mul;
			end += n;
			break;
		}
	}
	if (*end && *end != ' ' && *end != ',')
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	*pp = end;
	return 0;
}

/* "HARD SOFT SECONDS", separated by spaces or commas. */
static int parse_obuf_limit(struct kv_opts *o, const char *v)
{
	uint64_t hard, soft, secs;
	const char *p = v;
	char *end;

	while (*p == ' ')
		p++;
	if (parse_size(&p, &hard))
		return -1;
	while (*p == ' ' || *p == ',')
		p++;
	if (parse_size(&p, &soft))
		return -1;
	while (*p == ' ' || *p == ',')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	secs = strtoull(p, &end, 10);
	while (*end == ' ')
		end++;
	if (errno || *end || secs > 31536000)
		return -1;
	o->obuf_hard = hard;
	o->obuf_soft = soft;
	o->obuf_soft_secs = (uint32_t)secs;
	return 0;
}

/* One option; -1 on a bad value. */
static int parse_opt(struct kv_opts *o, int c, const char *v)
{
	uint64_t n;

	switch (c) {
	case OPT_ID:
		if (parse_u64(v, 1, UINT64_MAX, &n))
			return bad("id", v, "an integer >= 1");
		o->id = n;
		return 0;
	case OPT_DATA:
		o->data_dir = v;
		return *v ? 0 : bad("data", v, "a directory");
	case OPT_CLIENT:
		o->client_addr = v;
		return strchr(v, ':') ? 0 : bad("client", v, "HOST:PORT");
	case OPT_RAFT:
		o->raft_addr = v;
		return strchr(v, ':') ? 0 : bad("raft", v, "HOST:PORT");
	case OPT_PEERS:
		o->peers = v;
		return 0;
	case OPT_STORAGE:
		if (strcmp(v, "wal") && strcmp(v, "mem"))
			return bad("storage", v, "wal or mem");
		o->storage_wal = strcmp(v, "wal") == 0;
		return 0;
	case OPT_ELECTION:
		if (parse_u64(v, 10, 600000, &n))
			return bad("election-ms", v, "10..600000");
		o->election_ms = (uint32_t)n;
		return 0;
	case OPT_HEARTBEAT:
		if (parse_u64(v, 1, 60000, &n))
			return bad("heartbeat-ms", v, "1..60000");
		o->heartbeat_ms = (uint32_t)n;
		return 0;
	case OPT_SNAP_ENTRIES:
		if (parse_u64(v, 0, UINT64_MAX - 1, &n))
			return bad("snapshot-entries", v, "an integer >= 0");
		o->snapshot_threshold = n;
		return 0;
	case OPT_SNAP_TRAILING:
		if (parse_u64(v, 0, UINT64_MAX - 1, &n))
			return bad("snapshot-trailing", v, "an integer >= 0");
		o->snapshot_trailing = n;
		return 0;
	case OPT_SNAP_BYTES:
		if (parse_u64(v, 0, UINT64_MAX - 1, &n))
			return bad("snapshot-bytes", v, "an integer >= 0");
		o->snapshot_bytes = n;
		return 0;
	case OPT_SNAP_FORK:
		if (strcmp(v, "yes") && strcmp(v, "no"))
			return bad("snapshot-fork", v, "yes or no");
		o->snapshot_fork = strcmp(v, "yes") == 0;
		return 0;
	case OPT_SNAP_TEST_DELAY:
		if (parse_u64(v, 0, 600000, &n))
			return bad("snapshot-test-delay-ms", v, "0..600000");
		o->snapshot_test_delay_ms = (uint32_t)n;
		return 0;
	case OPT_WAL_DIRECT:
		if (strcmp(v, "yes") && strcmp(v, "no"))
			return bad("wal-direct-io", v, "yes or no");
		o->wal_direct = strcmp(v, "yes") == 0;
		return 0;
	case OPT_WAL_SEGMENT:
		if (parse_u64(v, 65536, 1u << 30, &n))
			return bad("wal-segment-bytes", v, "65536..1073741824");
		o->wal_segment = n;
		return 0;
	case OPT_WAL_REPAIR:
		if (!strcmp(v, "peers"))
			o->wal_repair = SR_WAL_REPAIR_PEERS;
		else if (!strcmp(v, "truncate"))
			o->wal_repair = SR_WAL_REPAIR_TRUNCATE;
		else if (!strcmp(v, "none"))
			o->wal_repair = SR_WAL_REPAIR_NONE;
		else
			return bad("wal-repair", v, "peers, truncate or none");
		return 0;
	case OPT_MAX_BULK:
		if (parse_u64(v, 1, (uint64_t)1 << 32, &n))
			return bad("max-bulk", v, "1..4294967296");
		o->max_bulk = n;
		return 0;
	case OPT_TIMEOUT:
		if (parse_u64(v, 10, 3600000, &n))
			return bad("timeout-ms", v, "10..3600000");
		o->timeout_ms = (uint32_t)n;
		return 0;
	case OPT_WRITE_BATCHES:
		if (parse_u64(v, 0, 1024, &n))
			return bad("write-batches", v, "0..1024");
		o->write_batches = (uint32_t)n;
		return 0;
	case OPT_CLUSTER_ID:
		if (parse_u64(v, 0, UINT64_MAX, &n))
			return bad("cluster-id", v, "an integer");
		o->cluster_id = n;
		return 0;
	case OPT_MAX_CLIENTS:
		if (parse_u64(v, 1, 10000000, &n))
			return bad("max-clients", v, "1..10000000");
		o->max_clients = (uint32_t)n;
		return 0;
	case OPT_OBUF_LIMIT:
		if (parse_obuf_limit(o, v))
			return bad("client-output-buffer-limit", v,
				   "'HARD SOFT SECONDS', e.g. '256mb 4mb 60'");
		return 0;
	case OPT_IDLE_TIMEOUT:
		if (parse_u64(v, 0, 31536000, &n))
			return bad("idle-timeout", v, "0..31536000 seconds");
		o->idle_timeout_s = (uint32_t)n;
		return 0;
	case OPT_LOG_LEVEL:
		if (parse_level(v, &o->log_level))
			return bad("log-level", v,
				   "debug, info, warn or error");
		return 0;
	case OPT_REQUIREPASS: /* clients must AUTH first (auth.c) */
		if (!*v || strlen(v) > 512)
			return bad("requirepass", v, "1..512 bytes");
		o->requirepass = v;
		return 0;
	case OPT_USER: { /* NAME:PASS, an ACL-style user (auth.c) */
		const char *colon = strchr(v, ':');
		if (!colon || colon == v || !colon[1] || colon - v > 64 ||
		    strlen(colon + 1) > 512 ||
		    (colon - v == 7 && !strncmp(v, "default", 7)))
			return bad("user", v,
				   "NAME:PASS, a name other than default");
		o->user = v;
		return 0;
	}
	case OPT_CLUSTER_MODE:
		if (strcmp(v, "yes") && strcmp(v, "no"))
			return bad("cluster-mode", v, "yes or no");
		o->plain = strcmp(v, "no") == 0;
		return 0;
	case OPT_SECRET_FILE:
		o->secret_file = v;
		return *v ? 0 : bad("cluster-secret-file", v, "a file");
	case OPT_GROUPS:
		if (parse_u64(v, 1, KV_MAX_GROUPS, &n))
			return bad("groups", v, "1..64");
		o->groups = (unsigned)n;
		return 0;
	default:
		return -1;
	}
}

/*
 * --cluster-secret-file: refuse to start, naming the problem, if the file
 * cannot be read, is not a regular file, can be read or written by
 * others (a secret anyone on the host can read protects nothing), or
 * does not hold one secret line of 16..1024 bytes, optionally followed
 * by the previous secret.  Trailing spaces, tabs and CRs of a line are
 * not part of the secret.
 */
static int load_secret(struct kv_opts *o)
{
	const char *path = o->secret_file;
	char buf[2 * 1025 + 64];
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ELOOP)
		fd = open(path, O_RDONLY | O_CLOEXEC); /* a symlink: follow */
	if (fd < 0) {
		fprintf(stderr,
			"kvnode: cannot read --cluster-secret-file %s: "
			"%s\n",
			path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		fprintf(stderr,
			"kvnode: --cluster-secret-file %s is not a "
			"regular file\n",
			path);
		close(fd);
		return -1;
	}
	if (st.st_mode & 0007) {
		fprintf(stderr,
			"kvnode: --cluster-secret-file %s is accessible by "
			"others (mode %04o): chmod 600 (or 640) it\n",
			path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0 || (size_t)n == sizeof(buf) - 1) {
		fprintf(stderr, "kvnode: --cluster-secret-file %s: %s\n", path,
			n < 0 ? strerror(errno) : "too large for two secrets");
		return -1;
	}
	if (memchr(buf, 0, (size_t)n)) {
		fprintf(stderr,
			"kvnode: --cluster-secret-file %s holds a NUL byte\n",
			path);
		return -1;
	}
	buf[n] = 0;
	char *line = buf, *slot[2] = { o->secret, o->secret_prev };
	size_t *len[2] = { &o->secret_len, &o->secret_prev_len };
	int k = 0;
	while (*line) {
		char *end = strchr(line, '\n');
		char *next = end ? end + 1 : line + strlen(line);
		if (!end)
			end = line + strlen(line);
		while (end > line &&
		       (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			end--;
		size_t l = (size_t)(end - line);
		if (l) {
			if (k == 2 || l < 16 || l > 1024) {
				fprintf(stderr,
					"kvnode: --cluster-secret-file %s: "
					"%s\n",
					path,
					k == 2 ? "more than two secrets"
					       : "a secret must be 16..1024 "
						 "bytes on one line");
				return -1;
			}
			memcpy(slot[k], line, l);
			*len[k] = l;
			k++;
		} else if (k == 0) {
			break; /* the first line is the secret */
		}
		line = next;
	}
	if (!o->secret_len) {
		fprintf(stderr,
			"kvnode: --cluster-secret-file %s holds no secret on "
			"its first line\n",
			path);
		return -1;
	}
	for (volatile char *v = buf; v < buf + sizeof(buf); v++)
		*v = 0; /* no copy of the secret left on the stack */
	return 0;
}

/* 0: run; 1: exit 0 (help, version); -1: exit 2. */
static int parse_args(int argc, char **argv, struct kv_opts *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->storage_wal = 1;
	o->wal_repair = SR_WAL_REPAIR_PEERS;
	o->election_ms = 1000;
	/* By volume (a snapshot costs in proportion to the state; its WAL is
	 * freed a 64 MiB segment at a time), with a count for tiny entries. */
	o->snapshot_threshold = 1048576;
	o->snapshot_bytes = 64ull << 20;
	o->snapshot_trailing = UINT64_MAX;
	o->snapshot_fork = 1;
	o->wal_direct = 1;
	o->max_bulk = 512ull * 1024 * 1024;
	o->timeout_ms = 5000;
	o->write_batches = 1;
	o->cluster_id = 1;
	o->groups = 1;
	o->max_clients = 10000;
	o->obuf_hard = 256ull * 1024 * 1024;
	o->obuf_soft = 4ull * 1024 * 1024;
	o->obuf_soft_secs = 60;
	o->log_level = SR_LOG_INFO;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			fputs(usage_text, stdout);
			return 1;
		}
		if (c == OPT_VERSION) {
			printf("kvnode %d.%d.%d (libseshatraft)\n",
			       SR_VERSION_MAJOR, SR_VERSION_MINOR,
			       SR_VERSION_PATCH);
			return 1;
		}
		if (c == '?' || c == ':') {
			fprintf(stderr,
				"kvnode: unknown option or missing value: %s\n",
				argv[optind - 1]);
			return -1;
		}
		if (parse_opt(o, c, optarg))
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "kvnode: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	if (!o->id || !o->data_dir || !o->client_addr || !o->raft_addr) {
		fprintf(stderr, "kvnode: --id, --data, --client and --raft are "
				"required (see --help)\n");
		return -1;
	}
	if (!o->heartbeat_ms)
		o->heartbeat_ms = o->election_ms / 10 ? o->election_ms / 10 : 1;
	if (o->heartbeat_ms >= o->election_ms) {
		fprintf(stderr, "kvnode: --heartbeat-ms must be below "
				"--election-ms\n");
		return -1;
	}
	if (o->secret_file && load_secret(o))
		return -1;
	if (o->peers) {
		sr_membership m;
		char err[256];
		if (kv_peers_parse(o->peers, &m, err, sizeof(err))) {
			fprintf(stderr, "kvnode: %s\n", err);
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Process set-up                                                     */
/* ------------------------------------------------------------------ */

/* mkdir -p */
static int make_dirs(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		char save = buf[i];
		buf[i] = 0;
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -1;
		buf[i] = save;
	}
	return 0;
}

static int lock_dir(struct kv_server *s)
{
	char path[4200];

	if (make_dirs(s->opt.data_dir)) {
		kv_log(s, SR_LOG_ERROR, "cannot create %s: %s", s->opt.data_dir,
		       strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/kvnode.lock", s->opt.data_dir);
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		kv_log(s, SR_LOG_ERROR, "cannot open %s: %s", path,
		       strerror(errno));
		return -1;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB)) {
		kv_log(s, SR_LOG_ERROR, "%s is used by another kvnode process",
		       s->opt.data_dir);
		return -1;
	}
	return 0;
}

/* One descriptor per client: take every descriptor we are allowed (the
 * hard limit; root could go further, but the operator set that limit),
 * and say what we got. */
static void raise_nofile(struct kv_server *s)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	was = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < s->opt.max_clients + 64u) {
		uint32_t n = rl.rlim_cur > 128 ? (uint32_t)rl.rlim_cur - 64
					       : 64;
		kv_log(s, SR_LOG_WARN,
		       "open-file limit %llu (was %llu, hard limit %llu): "
		       "serving at most %u clients",
		       (unsigned long long)rl.rlim_cur, (unsigned long long)was,
		       (unsigned long long)rl.rlim_max, n);
		s->opt.max_clients = n;
		return;
	}
	kv_log(s, SR_LOG_INFO,
	       "open-file limit %llu (was %llu): max clients %u",
	       (unsigned long long)rl.rlim_cur, (unsigned long long)was,
	       s->opt.max_clients);
}

static void on_signal(sr_loop *loop, int fd, int events, void *ctx)
{
	struct kv_server *s = ctx;
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		kv_log(s, SR_LOG_INFO, "signal %u: stopping", si.ssi_signo);
		sr_loop_stop(loop);
	}
}

static int signals_setup(struct kv_server *s)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -1;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	return sr_loop_watch(s->loop, fd, SR_LOOP_READ, on_signal, s) ? -1 : fd;
}

static void shutdown_all(struct kv_server *s)
{
	s->stopping = 1;
	if (s->sweep_timer)
		sr_loop_timer_cancel(s->loop, s->sweep_timer);
	kv_server_close_all(s);
	kv_raft_close(s); /* pending writes are done(SR_EUNKNOWN): freed */
	kv_server_free_reqs(s);
	kv_wait_free(s);
	kv_balance_stop(s);
	kv_groups_free(s);
	if (s->loop)
		sr_loop_destroy(s->loop);
	s->loop = NULL;
	if (s->lock_fd >= 0)
		close(s->lock_fd);
}

int main(int argc, char **argv)
{
	struct kv_server *s = &server;
	int rc, sfd = -1;

	rc = parse_args(argc, argv, &s->opt);
	if (rc)
		return rc > 0 ? 0 : 2;
	s->lock_fd = s->listen_fd = -1;
	raise_nofile(s);
	if (lock_dir(s) || sr_loop_create(NULL, &s->loop) ||
	    kv_groups_init(s) || kv_groups_check_dir(s) ||
	    (sfd = signals_setup(s)) < 0) {
		if (s->loop && sfd < 0)
			kv_log(s, SR_LOG_ERROR, "start-up failed");
		shutdown_all(s);
		return 1;
	}
	s->started_ms = kv_now_ms(s);
	if (kv_raft_open(s) || kv_server_listen(s) || kv_balance_start(s)) {
		shutdown_all(s);
		close(sfd);
		return 1;
	}
	kv_log(s, SR_LOG_INFO,
	       "kvnode %llu ready: clients on %s, peers on %s, "
	       "%s storage in %s",
	       (unsigned long long)s->opt.id, s->opt.client_addr,
	       s->opt.raft_addr, s->opt.storage_wal ? "wal" : "mem",
	       s->opt.data_dir);
	rc = sr_loop_run(s->loop);
	if (rc)
		kv_log(s, SR_LOG_ERROR, "event loop: %s", sr_strerror(rc));
	sr_loop_unwatch(s->loop, sfd);
	shutdown_all(s);
	close(sfd);
	kv_log(s, SR_LOG_INFO, "stopped");
	return rc || s->fatal ? 1 : 0;
}
