/*
 * fuzz_wal.c — libFuzzer target for the WAL's record decoder and the
 * recovery path (`make fuzz`).
 *
 * Each input becomes the segment files of a WAL directory (with a valid
 * meta file), which is then opened with sr_wal_open():
 *
 *   byte 0   flags: 1 = recompute record CRCs (so the fuzzer gets past
 *            the checksum to the replay rules), 2 = repair option,
 *            4 = split into two segments, 8 = keep the input's own
 *            segment header instead of a valid one, 16 = the rest is a
 *            recipe (below) rather than raw bytes, 32 (with 2) = the
 *            repair is SR_WAL_REPAIR_PEERS rather than _TRUNCATE,
 *            64 = groups: meta files for groups 1 and 2 exist, and a
 *            recipe spreads its records over groups 0..3 (group 3 has
 *            no meta file: a drop a crash interrupted) with RESET,
 *            HARDSTATE and DROP records among them
 *   byte 1   where to split (in 1/256ths of the rest)
 *   rest     segment contents after the 64-byte header, or a recipe:
 *            5 bytes per record (kind, index step, length, batch step,
 *            damage), encoded with valid CRCs, then damaged as told
 *
 * The directory lives on /dev/shm when there is one (fsync is free).
 *
 * Properties checked (a violation aborts, which libFuzzer reports):
 *   - no crash, no leak, no sanitizer report, whatever the bytes;
 *   - without repair, open gives 0 or SR_ECORRUPT; with repair it opens
 *     (but protocol-aware repair refuses, saying why, to cut damage
 *     that may hide a group's term or vote);
 *   - the hard state of every group is the same after a reopen;
 *   - a lost range (SR_WAL_REPAIR_PEERS) is reported only with that
 *     mode, starts at min(last + 1, lost_last), and is reported again
 *     after a reopen unless the new append went past it;
 *   - an opened log reads back whole, takes new appends, and after a
 *     close reopens without repair to exactly the same log plus the
 *     appends (recovery leaves the directory consistent);
 *   - with groups, all of this for every group the WAL lists, and it
 *     lists exactly the groups with a meta file.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <seshat/wal.h>

#include "../../backends/wal/wal_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void clear_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

static void remove_dir(void)
{
	clear_dir();
	rmdir(dir);
}

static void put(const char *name, const void *a, size_t alen, const void *b,
		size_t blen)
{
	char p[128];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0)
		abort();
	if (write(fd, a, alen) != (ssize_t)alen ||
	    (blen && write(fd, b, blen) != (ssize_t)blen))
		abort();
	close(fd);
}

/* Recompute the CRC of every record the parser would delimit. */
static void fix_crcs(unsigned char *body, size_t n)
{
	size_t off = 0;

	while (off + WAL_REC_HDR <= n) {
		uint32_t len = wal_get32(body + off + 4);
		uint64_t rs = wal_rec_size(len);

		if (len > n || rs > n - off)
			break;
		wal_put32(body + off,
			  sr_crc32c(0, body + off + 4, (size_t)rs - 4));
		off += (size_t)rs;
	}
}

/*
 * Build well-formed records from a recipe, then damage some: the fuzzer
 * explores index gaps, truncate/compact rules, batch numbering and the
 * torn-or-corrupt decision without having to forge CRCs itself.
 */
static size_t synth(const unsigned char *in, size_t n, unsigned char *out,
		    size_t cap, int groups)
{
	static unsigned char pattern[256];
	uint64_t off = WAL_SEG_HDR, nexts[4] = { 1, 1, 1, 1 }, batch = 1,
		 boff = WAL_SEG_HDR;
	size_t o = 0;

	for (size_t k = 0; k < sizeof(pattern); k++)
		pattern[k] = (unsigned char)(k * 37 + 11);
	for (size_t i = 0; i + 5 <= n; i += 5) {
		struct wal_rec r = { 0 };
		uint64_t rs, *next_of;
		uint64_t next;

		r.kind = 1 + in[i] % (groups ? 6u : 3u);
		r.group = groups ? (in[i] >> 3) % 4u : 0;
		if (r.kind >= WAL_REC_HARDSTATE && !r.group)
			r.group = 1; /* group 0's hard state is its meta file */
		next_of = &nexts[r.group];
		next = *next_of;
		r.len = r.kind == WAL_REC_ENTRY ? in[i + 2] : 0;
		if (r.kind == WAL_REC_HARDSTATE)
			r.len = WAL_HARDSTATE_LEN;
		r.index = next + (uint64_t)(in[i + 1] % 5u) - 2u;
		if (r.kind != WAL_REC_ENTRY)
			r.index = next > 1 ? next - 1 - in[i + 1] % 4u : 1;
		if (r.index == 0)
			r.index = 1;
		if (r.kind >= WAL_REC_RESET)
			r.index = 0;
		r.term = r.kind == WAL_REC_ENTRY ? 1 + in[i + 3] % 2u : 0;
		if (r.kind == WAL_REC_HARDSTATE)
			r.term = in[i + 2] % 8u;
		r.etype = r.kind == WAL_REC_ENTRY ? 1 : 0;
		if (in[i + 3] & 6) { /* a new batch */
			batch += (in[i + 3] >> 1) % 3u;
			boff = off;
		}
		r.batch = batch;
		r.batch_off = boff;
		r.data = pattern;
		rs = wal_rec_size(r.len);
		if (o + rs > cap)
			break;
		wal_fmt_rec_encode(out + o, &r);
		if (in[i + 4] & 1) /* damage */
			out[o + in[i + 4] % rs] ^= (unsigned char)(in[i + 4] |
								   1);
		if (r.kind == WAL_REC_ENTRY)
			*next_of = r.index + 1;
		else if (r.kind == WAL_REC_TRUNCATE)
			*next_of = r.index;
		else if (r.kind == WAL_REC_RESET || r.kind == WAL_REC_DROP)
			*next_of = 1;
		o += rs;
		off += rs;
	}
	if (n % 5) /* a torn tail: part of one more record */
		memset(out + o, 0x5a, n % 5 * 7 < cap - o ? n % 5 * 7 : 0),
			o += n % 5 * 7 < cap - o ? n % 5 * 7 : 0;
	return o;
}

static void segment(uint64_t seq, const unsigned char *body, size_t n, int raw,
		    uint64_t start, uint64_t batch)
{
	unsigned char hdr[WAL_SEG_HDR];
	struct wal_seg_hdr h = { seq, 1, start, batch };
	char name[32];

	if (raw && n >= WAL_SEG_HDR) {
		memcpy(hdr, body, WAL_SEG_HDR);
		body += WAL_SEG_HDR;
		n -= WAL_SEG_HDR;
	} else {
		wal_fmt_seg_hdr_encode(hdr, &h);
	}
	snprintf(name, sizeof(name), "%016llx.wal", (unsigned long long)seq);
	put(name, hdr, sizeof(hdr), body, n);
}

/* FUZZ_WAL_VERBOSE=1 prints the WAL's log (to replay a finding). */
static int hs_refused; /* the open refused to cut hard-state records */

static void log_fn(void *ctx, int level, const char *line)
{
	(void)ctx;
	if (strstr(line, "cannot be repaired"))
		hs_refused = 1;
	if (getenv("FUZZ_WAL_VERBOSE"))
		fprintf(stderr, "[wal %d] %s\n", level, line);
}

static sr_wal *ctx_wal; /* the WAL open now */

static int open_wal(int mode, sr_wal **w)
{
	sr_wal_options o;
	int rv;

	sr_wal_options_init(&o, dir);
	o.log = log_fn;
	o.log_level = getenv("FUZZ_WAL_VERBOSE") ? SR_LOG_DEBUG : SR_LOG_ERROR;
	hs_refused = 0;
	o.segment_size = 64 << 10;
	o.repair = mode;
	rv = sr_wal_open(&o, w);
	ctx_wal = rv ? NULL : *w;
	return rv;
}

/* Read entries lo..hi; return a checksum of their terms and bytes. */
static uint32_t read_all(void *w, sr_index lo, sr_index hi)
{
	const sr_storage_ops *ops = sr_wal_group_storage_ops();
	static sr_entry out[256];
	uint32_t crc = 0;

	while (lo <= hi) {
		size_t n = 0;

		if (ops->read(w, lo, 256, 1 << 20, out, &n) || !n)
			abort(); /* recovery accepted what it cannot read */
		for (size_t k = 0; k < n && lo <= hi; k++, lo++) {
			if (out[k].index != lo)
				abort();
			crc = sr_crc32c(crc, &out[k].term, sizeof(out[k].term));
			if (out[k].len)
				crc = sr_crc32c(crc, out[k].data, out[k].len);
		}
	}
	return crc;
}

/* One group just opened: its lost range fits, its log reads back whole
 * (*crc), and it takes one more entry, durably. */
static void check_one(void *ctx, int repair, sr_durable *d, uint32_t *crc)
{
	static const char payload[] = "fuzz";
	const sr_storage_ops *ops = sr_wal_group_storage_ops();
	sr_entry e = { 1, 0, SR_ENTRY_NORMAL, 4, payload };

	ops->load(ctx, d);
	if (d->lost_last &&
	    (repair != SR_WAL_REPAIR_PEERS || d->lost_last < d->last_index ||
	     d->lost_first != (d->last_index < d->lost_last ? d->last_index + 1
							    : d->lost_last)))
		abort(); /* a lost range that does not fit the log */
	*crc = read_all(ctx, d->first_index, d->last_index);
	e.index = d->last_index + 1;
	if (ops->append(ctx, 1, &e, 1) || sr_wal_sync(ctx_wal))
		abort();
}

/* After the reopen: the same log plus the entry, the lost range kept
 * exactly while the log has not passed it. */
static void recheck_one(void *ctx, const sr_durable *d, uint32_t crc)
{
	sr_durable d2;

	sr_wal_group_storage_ops()->load(ctx, &d2);
	if (d2.term != d->term || d2.vote != d->vote) {
		if (getenv("FUZZ_WAL_VERBOSE"))
			fprintf(stderr,
				"hard state %llu/%llu, then %llu/%llu\n",
				(unsigned long long)d->term,
				(unsigned long long)d->vote,
				(unsigned long long)d2.term,
				(unsigned long long)d2.vote);
		abort(); /* the hard state changed across a reopen */
	}
	if (d2.first_index != d->first_index ||
	    d2.last_index != d->last_index + 1 ||
	    read_all(ctx, d->first_index, d->last_index) != crc)
		abort(); /* the log changed across a reopen */
	if (d2.lost_last !=
	    (d->last_index + 1 > d->lost_last ? 0 : d->lost_last))
		abort(); /* the lost range was forgotten, or kept too long */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char body[1 << 16];
	unsigned char meta[WAL_META_SIZE];
	struct wal_meta m = { 1, 0 };
	int flags, repair, rv;
	size_t n, split, ng, nlisted, n2;
	sr_durable d[3];
	uint32_t c1[3], ids[4];
	sr_wal *w;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "%s/fuzz_wal-XXXXXX",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		if (!mkdtemp(dir))
			abort();
		atexit(remove_dir);
	}
	if (size < 2 || size - 2 > sizeof(body) / 8)
		return 0;
	flags = data[0];
	repair = !(flags & 2) ? SR_WAL_REPAIR_NONE
		 : flags & 32 ? SR_WAL_REPAIR_PEERS
			      : SR_WAL_REPAIR_TRUNCATE;
	if (flags & 16) {
		n = synth(data + 2, size - 2, body, sizeof(body), flags & 64);
	} else {
		n = size - 2;
		memcpy(body, data + 2, n);
	}
	clear_dir();
	wal_fmt_meta_encode(meta, &m);
	put("meta", meta, sizeof(meta), NULL, 0);
	if (flags & 64) {
		put("g00000001.meta", meta, sizeof(meta), NULL, 0);
		put("g00000002.meta", meta, sizeof(meta), NULL, 0);
	}
	split = (flags & 4) ? n * data[1] / 256 : n;
	if (flags & 1) {
		fix_crcs(body, split);
		fix_crcs(body + split, n - split);
	}
	segment(1, body, split, flags & 8, 1, 1);
	if (flags & 4)
		segment(2, body + split, n - split, 0, 1 + data[1] % 4,
			1 + data[1] % 8);

	rv = open_wal(repair, &w);
	if (rv) {
		/* protocol-aware repair refuses to cut what may hold the
		 * term and vote of groups (never repaired) */
		if (rv != SR_ECORRUPT ||
		    (repair && !(repair == SR_WAL_REPAIR_PEERS && hs_refused)))
			abort();
		return 0;
	}
	/* every group the WAL lists (group 3 has no meta file: never) */
	ng = 1;
	ids[0] = 0;
	if (sr_wal_groups(w, ids + 1, 3, &nlisted) || nlisted > 2)
		abort();
	for (size_t k = 0; k < nlisted; k++)
		if (!(flags & 64) || ids[1 + k] < 1 || ids[1 + k] > 2)
			abort();
	ng += nlisted;
	for (size_t k = 0; k < ng; k++) {
		void *ctx = w;

		if (k && sr_wal_group_open(w, ids[k], (sr_wal_group **)&ctx))
			abort();
		check_one(ctx, repair, &d[k], &c1[k]);
	}
	sr_wal_close(w);
	if (open_wal(SR_WAL_REPAIR_NONE, &w))
		abort(); /* recovery left the directory inconsistent */
	if (sr_wal_groups(w, NULL, 0, &n2) != (nlisted ? SR_ETOOBIG : 0) ||
	    n2 != nlisted)
		abort(); /* a group appeared or vanished across a reopen */
	for (size_t k = 0; k < ng; k++) {
		void *ctx = w;

		if (k && sr_wal_group_open(w, ids[k], (sr_wal_group **)&ctx))
			abort();
		if (getenv("FUZZ_WAL_VERBOSE"))
			fprintf(stderr, "group %u\n", ids[k]);
		recheck_one(ctx, &d[k], c1[k]);
	}
	sr_wal_close(w);
	return 0;
}
