/*
 * bench_wal_snap.c — what a snapshot costs the host's thread, and the
 * log beside it (`make bench`).
 *
 * A snapshot of SIZE MiB is written in 1 MiB chunks, each followed by
 * APPENDS log appends of one 4 KiB entry, each waited for (sr_wal_sync),
 * as a host's loop would interleave them; then snapshot_finish(1).  Two
 * modes, alternated run by run:
 *
 *   read-back  a chunk rewrites earlier bytes (the first MiB again), so
 *              finish reads the data back for its CRC: what every
 *              snapshot cost before the CRC was kept as chunks arrive
 *   crc        chunks in order: the CRC kept as they arrive; no
 *              writeback started early (sync_file_range shimmed out)
 *   crc+wb     the same with the WAL's sync_file_range after each chunk
 *
 * The WAL's fsync calls go through a -Wl,--wrap shim here that times
 * them.  Printed, as medians over RUNS runs: finish() in all, the
 * snapshot file's fsync inside it, the directory's fsync(s) after the
 * rename, the time the chunks' writes took, and the log appends' latency
 * during the snapshot (median and 99th percentile of each run, medians
 * of those).  The rest of finish is the rename and the unlink of the
 * previous snapshot (whose blocks a thread of the WAL frees).
 *
 * SR_WAL_BENCH_DIR picks the directory (default $TMPDIR or /tmp);
 * SR_WAL_BENCH_SNAP="16 32" the sizes in MiB, SR_WAL_BENCH_APPENDS the
 * appends per chunk (default 2), SR_WAL_BENCH_RUNS the runs (default 7).
 */
#include "walt.h" /* t_rmrf */

#define OPS	 sr_wal_storage_ops()
#define CHUNK	 (1u << 20)
#define MAX_RUNS 31
#define MAX_LAT	 65536

enum { MODE_READBACK, MODE_CRC, MODE_CRC_WB, N_MODES };
static const char *mode_name[N_MODES] = { "read-back", "crc", "crc+wb" };

static unsigned char chunk[CHUNK];
static unsigned char payload[4096];

/* the shim's state, on the host's thread only (the WAL calls fsync there
 * for snapshots; its writer thread calls fdatasync) */
static int in_finish, wb_on;
static double fin_fsync, fin_dirsync;

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __real_sync_file_range(int fd, off_t off, off_t len, unsigned flags);
int __wrap_sync_file_range(int fd, off_t off, off_t len, unsigned flags);

/* crc+wb only: the other modes measure the WAL without it */
int __wrap_sync_file_range(int fd, off_t off, off_t len, unsigned flags)
{
	return wb_on ? __real_sync_file_range(fd, off, len, flags) : 0;
}

int __wrap_fsync(int fd)
{
	double t = now();
	int rv = __real_fsync(fd);

	/* the first fsync in finish is the snapshot file's (then the
	 * directory's) */
	if (in_finish && fin_fsync == 0)
		fin_fsync = now() - t;
	else if (in_finish)
		fin_dirsync += now() - t;
	return rv;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	if (!n)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[(int)(p * (n - 1))];
}

static void die(const char *what, int rv)
{
	fprintf(stderr, "bench_wal_snap: %s: %s\n", what,
		rv ? sr_strerror(rv) : strerror(errno));
	exit(1);
}

struct result {
	double finish, fsync, dirsync, writes, lat50, lat99;
};

static sr_index next_index = 1, snap_index;

/* One log append of 4 KiB, waited for; its latency in seconds. */
static double append_one(sr_wal *w)
{
	sr_entry e = { .term = 1,
		       .index = next_index,
		       .type = SR_ENTRY_NORMAL,
		       .len = sizeof(payload),
		       .data = payload };
	double t = now();
	int rv = OPS->append(w, next_index, &e, 1);

	if (rv || (rv = sr_wal_sync(w)))
		die("append", rv);
	next_index++;
	return now() - t;
}

static struct result run_one(sr_wal *w, int mode, unsigned mib, int appends)
{
	static double lat[MAX_LAT];
	struct result r = { 0 };
	int n_lat = 0, rv;
	double t;

	sync(); /* every run starts with nothing dirty */
	fin_fsync = fin_dirsync = 0;
	wb_on = mode == MODE_CRC_WB;
	snap_index = next_index - 1;
	if ((rv = OPS->snapshot_begin(w, snap_index, 1, NULL)))
		die("snapshot_begin", rv);
	for (unsigned c = 0; c < mib; c++) {
		memcpy(chunk, &c, sizeof(c)); /* every chunk differs */
		t = now();
		if ((rv = OPS->snapshot_write(w, (uint64_t)c * CHUNK, chunk,
					      CHUNK)))
			die("snapshot_write", rv);
		if (mode == MODE_READBACK && c == 1 &&
		    (rv = OPS->snapshot_write(w, 0, chunk, CHUNK)))
			die("snapshot_write", rv);
		r.writes += now() - t;
		for (int a = 0; a < appends && n_lat < MAX_LAT; a++)
			lat[n_lat++] = append_one(w);
	}
	in_finish = 1;
	t = now();
	if ((rv = OPS->snapshot_finish(w, 1)))
		die("snapshot_finish", rv);
	r.finish = now() - t;
	in_finish = 0;
	r.fsync = fin_fsync;
	r.dirsync = fin_dirsync;
	r.lat50 = pct(lat, n_lat, 0.5);
	r.lat99 = pct(lat, n_lat, 0.99);
	return r;
}

static double med(double *v, int n)
{
	return pct(v, n, 0.5);
}

int main(void)
{
	const char *env = getenv("SR_WAL_BENCH_DIR");
	const char *sizes = getenv("SR_WAL_BENCH_SNAP");
	int appends = getenv("SR_WAL_BENCH_APPENDS") ? atoi(getenv("SR_WAL_"
								   "BENCH_"
								   "APPENDS"))
						     : 2;
	int runs = getenv("SR_WAL_BENCH_RUNS") ? atoi(getenv("SR_WAL_BENCH_"
							     "RUNS"))
					       : 7;
	char path[300];
	sr_wal_options o;
	sr_wal *w;
	int rv;

	if (runs < 1 || runs > MAX_RUNS)
		runs = 7;
	if (!env)
		env = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(path, sizeof(path), "%s/bench-wal-snap-XXXXXX", env);
	if (!mkdtemp(path))
		die("mkdtemp", 0);
	srand(7);
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (unsigned char)rand();
	memset(payload, 0x5a, sizeof(payload));
	sr_wal_options_init(&o, path);
	if ((rv = sr_wal_open(&o, &w)))
		die("sr_wal_open", rv);
	append_one(w); /* a snapshot needs an index */
	printf("snapshot in 1 MiB chunks, %d log append(s) of 4 KiB after "
	       "each, medians of %d runs (ms)\n",
	       appends, runs);
	printf("%6s %-10s %8s %8s %8s %8s %10s %10s\n", "MiB", "mode", "finish",
	       "fsync", "dir", "writes", "append p50", "append p99");
	for (const char *s = sizes ? sizes : "16 32"; *s;) {
		unsigned mib = (unsigned)strtoul(s, (char **)&s, 10);
		static double v[N_MODES][6][MAX_RUNS];

		while (*s == ' ')
			s++;
		if (!mib)
			break;
		for (int k = 0; k < runs; k++)
			for (int m = 0; m < N_MODES; m++) {
				struct result r = run_one(w, m, mib, appends);

				v[m][0][k] = r.finish;
				v[m][1][k] = r.fsync;
				v[m][2][k] = r.dirsync;
				v[m][3][k] = r.writes;
				v[m][4][k] = r.lat50;
				v[m][5][k] = r.lat99;
			}
		for (int m = 0; m < N_MODES; m++) {
			printf("%6u %-10s", mib, mode_name[m]);
			for (int f = 0; f < 6; f++)
				printf(f < 4 ? " %8.2f" : " %10.3f",
				       1e3 * med(v[m][f], runs));
			printf("\n");
		}
		/* the log would otherwise grow run after run */
		if ((rv = OPS->compact(w, snap_index)))
			die("compact", rv);
	}
	sr_wal_close(w);
	t_rmrf(path);
	return 0;
}
