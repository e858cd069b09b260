/*
 * bench_wal_groups.c — what many Raft groups on one WAL cost at restart
 * (`make bench`; docs/benchmarks.md, "WAL groups").
 *
 * For each scenario (groups x entries per group, 128-byte entries): make
 * the groups (each writes its meta file), set a term and vote, append the
 * entries (every group's appends of a round in one batch), sync, close.
 * Then restart it: sr_wal_open (recovery reads and checks everything),
 * sr_wal_groups, sr_wal_group_open and load() of every group, and one
 * read of each group's last entry.  Timed twice: with the files in the
 * page cache ("warm"), and after evicting this directory's files from it
 * with posix_fadvise(DONTNEED) ("cold": the files are read from the disk;
 * the rest of the machine's cache is left alone).  A single group holding
 * the same number of entries is the reference.  Memory is what the WAL
 * holds through its allocation hooks after the restart, per group.
 *
 * Then group commit across groups: G groups each keep one append of one
 * 128-byte entry in flight (the next is made from the completion of the
 * previous) for 2 s; appends/s against fdatasyncs/s shows how many groups
 * one fdatasync serves.
 *
 *   bench_wal_groups [scenario ...]   scenarios as GROUPSxENTRIES
 *                                     (default 4096x4 256x1000 1x256000,
 *                                     then commit with 1, 16, 256 groups)
 *
 * The directory is under $TMPDIR (default /var/tmp: a real disk).
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <seshat/wal.h>

#define ENTRY_LEN 128
#define CHUNK	  250 /* entries per append call */

static size_t live_bytes;

/* Counting hooks: a size word before each block. */
static void *c_malloc(void *ctx, size_t n)
{
	size_t *p = malloc(n + sizeof(size_t));

	(void)ctx;
	if (!p)
		return NULL;
	*p = n;
	live_bytes += n;
	return p + 1;
}

static void c_free(void *ctx, void *ptr)
{
	size_t *p = ptr;

	(void)ctx;
	if (!p)
		return;
	live_bytes -= p[-1];
	free(p - 1);
}

static void *c_realloc(void *ctx, void *ptr, size_t n)
{
	size_t *p = ptr, old = p ? p[-1] : 0;
	size_t *q = realloc(p ? p - 1 : NULL, n + sizeof(size_t));

	(void)ctx;
	if (!q)
		return NULL;
	*q = n;
	live_bytes += n;
	live_bytes -= old;
	return q + 1;
}

static const sr_alloc hooks = { c_malloc, c_realloc, c_free, NULL };

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what, int rv)
{
	fprintf(stderr, "bench_wal_groups: %s: %s\n", what, sr_strerror(rv));
	exit(1);
}

static void rmrf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	rmdir(path);
}

/* Drop this directory's files from the page cache (they are clean). */
static void evict(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		int fd;

		if (de->d_name[0] == '.')
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY);
		if (fd >= 0) {
			(void)fdatasync(fd);
			(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		}
	}
	closedir(d);
}

static void *ctx_of(sr_wal *w, sr_wal_group **h, uint32_t g)
{
	return h ? (void *)h[g] : (void *)w;
}

static sr_wal *open_wal(const char *dir)
{
	sr_wal_options o;
	sr_wal *w;
	int rv;

	sr_wal_options_init(&o, dir);
	o.alloc = &hooks;
	if ((rv = sr_wal_open(&o, &w)))
		die("sr_wal_open", rv);
	return w;
}

/* Make the scenario's directory; returns the creation time in ms. */
static double build(const char *dir, uint32_t ngroups, uint32_t entries)
{
	static unsigned char data[ENTRY_LEN];
	static sr_entry es[CHUNK];
	const sr_storage_ops *ops = sr_wal_group_storage_ops();
	sr_wal *w = open_wal(dir);
	sr_wal_group **h = NULL;
	double t0 = now_ms(), created;
	int rv;

	memset(data, 0xab, sizeof(data));
	if (ngroups > 1) {
		h = calloc(ngroups + 1, sizeof(*h));
		for (uint32_t g = 1; g <= ngroups; g++)
			if ((rv = sr_wal_group_open(w, g, &h[g])))
				die("sr_wal_group_open", rv);
	}
	created = now_ms() - t0;
	for (uint32_t g = 1; g <= ngroups; g++)
		if ((rv = ops->set_hard_state(ctx_of(w, h, g), 1, 1)))
			die("set_hard_state", rv);
	for (uint32_t lo = 1; lo <= entries; lo += CHUNK) {
		uint32_t n = entries - lo + 1 < CHUNK ? entries - lo + 1
						      : CHUNK;

		for (uint32_t i = 0; i < n; i++) {
			es[i].index = lo + i;
			es[i].term = 1;
			es[i].type = SR_ENTRY_NORMAL;
			es[i].len = ENTRY_LEN;
			es[i].data = data;
		}
		sr_wal_hold(w); /* every group's round: one batch */
		for (uint32_t g = 1; g <= ngroups; g++)
			if ((rv = ops->append(ctx_of(w, h, g), g, es, n)))
				die("append", rv);
		sr_wal_release(w);
		if ((rv = sr_wal_sync(w)))
			die("sr_wal_sync", rv);
	}
	if (h)
		for (uint32_t g = 1; g <= ngroups; g++)
			sr_wal_group_close(h[g]);
	sr_wal_close(w);
	free(h);
	return created;
}

/* One restart: open, list, open and load every group, read its last
 * entry.  Returns ms; *mem the bytes the WAL holds after it. */
static double restart(const char *dir, uint32_t ngroups, uint32_t entries,
		      size_t *mem)
{
	const sr_storage_ops *ops = sr_wal_group_storage_ops();
	double t0 = now_ms(), t;
	uint32_t *ids = calloc(ngroups + 1, sizeof(*ids));
	sr_wal_group **h = calloc(ngroups + 1, sizeof(*h));
	sr_wal *w;
	size_t n = 0;
	int rv;

	live_bytes = 0;
	w = open_wal(dir);
	if (ngroups > 1 && (rv = sr_wal_groups(w, ids, ngroups, &n)))
		die("sr_wal_groups", rv);
	if (ngroups > 1 && n != ngroups) {
		fprintf(stderr, "bench_wal_groups: %zu groups, want %u\n", n,
			ngroups);
		exit(1);
	}
	for (uint32_t g = 1; g <= ngroups; g++) {
		sr_durable d;
		sr_entry e;
		size_t got;

		if (ngroups > 1 &&
		    (rv = sr_wal_group_open(w, ids[g - 1], &h[g])))
			die("sr_wal_group_open", rv);
		if ((rv = ops->load(ctx_of(w, ngroups > 1 ? h : NULL, g), &d)))
			die("load", rv);
		if (d.last_index != entries || d.term != 1) {
			fprintf(stderr,
				"bench_wal_groups: group %u ends at %llu\n", g,
				(unsigned long long)d.last_index);
			exit(1);
		}
		if ((rv = ops->read(ctx_of(w, ngroups > 1 ? h : NULL, g),
				    entries, 1, 1 << 20, &e, &got)))
			die("read", rv);
	}
	t = now_ms() - t0;
	*mem = live_bytes;
	sr_wal_close(w);
	free(ids);
	free(h);
	return t;
}

static double median3(double a, double b, double c)
{
	return a > b ? (b > c ? b : (a > c ? c : a))
		     : (a > c ? a : (b > c ? c : b));
}

static void scenario(const char *base, uint32_t ngroups, uint32_t entries)
{
	char dir[512];
	double created, warm[3], cold[3];
	size_t mem = 0;

	snprintf(dir, sizeof(dir), "%s/bench-walg-XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	created = build(dir, ngroups, entries);
	for (int i = 0; i < 3; i++) {
		warm[i] = restart(dir, ngroups, entries, &mem);
		evict(dir);
		cold[i] = restart(dir, ngroups, entries, &mem);
	}
	printf("%6u groups x %6u entries: create %8.1f ms (%.2f ms/group); "
	       "restart warm %7.1f ms, cold %7.1f ms (median of 3); "
	       "%zu B held (%.0f B/group)\n",
	       ngroups, entries, created, created / ngroups,
	       median3(warm[0], warm[1], warm[2]),
	       median3(cold[0], cold[1], cold[2]), mem, (double)mem / ngroups);
	fflush(stdout);
	rmrf(dir);
}

/* ---- group commit across groups ---- */

struct cgroup {
	void *ctx;
	sr_index next;
	uint64_t done;
};

static unsigned char cdata[ENTRY_LEN];

static void c_issue(struct cgroup *c)
{
	sr_entry e = { 1, c->next, SR_ENTRY_NORMAL, ENTRY_LEN, cdata };
	int rv = sr_wal_group_storage_ops()->append(c->ctx, 0, &e, 1);

	if (rv)
		die("append", rv);
	c->next++;
}

static void c_done(void *ctx, uint64_t token, int status)
{
	struct cgroup *c = ctx;

	(void)token;
	if (status)
		die("completion", status);
	c->done++;
	c_issue(c);
}

static void commit(const char *base, uint32_t ngroups)
{
	char dir[512];
	struct cgroup *cs = calloc(ngroups, sizeof(*cs));
	sr_wal_stats a, b;
	uint64_t done = 0;
	double t0, el;
	sr_wal *w;
	int rv;

	snprintf(dir, sizeof(dir), "%s/bench-walc-XXXXXX", base);
	if (!cs || !mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	w = open_wal(dir);
	for (uint32_t g = 0; g < ngroups; g++) {
		cs[g].next = 1;
		cs[g].ctx = w;
		if (g &&
		    (rv = sr_wal_group_open(w, g, (sr_wal_group **)&cs[g].ctx)))
			die("sr_wal_group_open", rv);
		if (g)
			sr_wal_group_set_done(cs[g].ctx, c_done, &cs[g]);
		else
			sr_wal_set_done(w, c_done, &cs[0]);
	}
	sr_wal_get_stats(w, &a);
	t0 = now_ms();
	for (uint32_t g = 0; g < ngroups; g++)
		c_issue(&cs[g]);
	while ((el = now_ms() - t0) < 2000) {
		struct pollfd p = { .fd = sr_wal_fd(w), .events = POLLIN };

		poll(&p, 1, 100);
		sr_wal_process(w);
	}
	sr_wal_get_stats(w, &b);
	for (uint32_t g = 0; g < ngroups; g++)
		done += cs[g].done;
	printf("%6u groups, 1 append each in flight: %8.0f appends/s, "
	       "%6.0f fdatasyncs/s, %.1f appends per fdatasync\n",
	       ngroups, done * 1e3 / el,
	       (double)(b.batches - a.batches) * 1e3 / el,
	       (double)done / (double)(b.batches - a.batches));
	fflush(stdout);
	sr_wal_close(w);
	free(cs);
	rmrf(dir);
}

int main(int argc, char **argv)
{
	const char *defaults[] = { "4096x4", "256x1000", "1x256000" };
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	int n = argc > 1 ? argc - 1 : 3;

	for (int i = 0; i < n; i++) {
		const char *s = argc > 1 ? argv[i + 1] : defaults[i];
		unsigned g, e;

		if (sscanf(s, "%ux%u", &g, &e) != 2 || !g || !e) {
			fprintf(stderr, "usage: bench_wal_groups [GxE ...]\n");
			return 2;
		}
		scenario(base, g, e);
	}
	if (argc == 1) {
		commit(base, 1);
		commit(base, 16);
		commit(base, 256);
	}
	return 0;
}
