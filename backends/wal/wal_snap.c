/*
 * wal_snap.c — snapshot files: writing one in chunks, making it the
 * current snapshot atomically, reading it back, and loading it at open.
 *
 * Writing.  snapshot_begin() creates snap.tmp and leaves room for the
 * header (its size depends only on the membership); snapshot_write()
 * pwrites each chunk at its offset (a chunk may rewrite earlier bytes,
 * as the in-memory store allows); snapshot_finish(1) reads the data back
 * to compute its CRC32C, writes the header, fsyncs the file, waits until
 * every earlier append/truncate/compact is durable (so the durable state
 * stays a prefix of the operations), renames snap.tmp to
 * <index>.snap, fsyncs the directory, and only then deletes the previous
 * snapshot.  A crash at any step leaves the old snapshot or the new one
 * complete; a leftover snap.tmp is deleted at open.
 *
 * Failures before the rename leave everything as it was (the partial
 * snapshot is discarded and the error returned).  A failure of the
 * rename or of the directory fsync after it stops the WAL: the directory
 * may or may not hold the new snapshot, and nothing may be assumed.
 *
 * Loading.  The highest-numbered *.snap file is checked whole (header
 * CRC, file size, data CRC).  A bad one fails the open with SR_ECORRUPT
 * under SR_WAL_REPAIR_NONE; otherwise it is deleted and the next older
 * one is tried (with SR_WAL_REPAIR_PEERS its index joins the lost range,
 * wal_recover.c, so the node waits for the leader to send it again).
 * Older snapshots left by a crash between rename and deletion are
 * deleted once a newer one is known good.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal_int.h"

#define SNAP_HDR_MAX (WAL_SNAP_FIXED + 8 + SR_MAX_MEMBERS * (16 + SR_ADDR_MAX))
#define SNAP_CHUNK   (1u << 20)

static void stop_wal(sr_wal *w, int rv)
{
	pthread_mutex_lock(&w->mu);
	if (!w->failed)
		w->failed = rv;
	pthread_mutex_unlock(&w->mu);
}

static int io_error(sr_wal *w, const char *what, const char *name)
{
	int e = errno;

	sr_walc_logf(w, SR_LOG_ERROR, "wal: snapshot %s of %s/%s failed: %s",
		     what, w->dir, name, strerror(e));
	return sr_walc_errno_code(e);
}

/* CRC32C of len bytes of fd from off on. */
static int crc_file(sr_wal *w, int fd, uint64_t off, uint64_t len,
		    uint32_t *crc)
{
	unsigned char *buf = sr_walc_alloc(w, SNAP_CHUNK);
	int rv = 0;

	*crc = 0;
	if (!buf)
		return SR_ENOMEM;
	while (len) {
		size_t n = len > SNAP_CHUNK ? SNAP_CHUNK : (size_t)len;

		if (sr_walio_pread_all(fd, buf, n, off) != 0) {
			rv = -1;
			break;
		}
		*crc = sr_crc32c(*crc, buf, n);
		off += n;
		len -= n;
	}
	sr_walc_free(w, buf);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Loading at open                                                    */
/* ------------------------------------------------------------------ */

/* 0, SR_ECORRUPT (logged) or an I/O error. */
static int snap_check(sr_wal *w, uint64_t index, struct wal_snap *out)
{
	unsigned char hdr[SNAP_HDR_MAX];
	struct wal_snap_hdr h;
	const char *why = "shorter than a snapshot header";
	char name[32];
	struct stat st;
	uint32_t crc;
	ssize_t n;
	int fd, rv = SR_ECORRUPT;

	sr_walio_snap_name(name, sizeof(name), index);
	fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rv = io_error(w, "open", name);
		goto out;
	}
	do {
		n = pread(fd, hdr, sizeof(hdr), 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		rv = io_error(w, "read", name);
		goto out;
	}
	if (sr_walfmt_snap_hdr_decode(hdr, (size_t)n, &h, &out->conf, &why) !=
	    WALFMT_OK)
		goto bad;
	why = "the header names another index";
	if (h.index != index)
		goto bad;
	why = "the file size does not match the header (truncated?)";
	if ((uint64_t)st.st_size != h.hdr_size + h.data_size)
		goto bad;
	if ((rv = crc_file(w, fd, h.hdr_size, h.data_size, &crc))) {
		if (rv != SR_ENOMEM)
			rv = io_error(w, "read", name);
		goto out;
	}
	rv = SR_ECORRUPT;
	why = "data CRC mismatch";
	if (crc != h.data_crc)
		goto bad;
	out->fd = fd;
	out->index = h.index;
	out->term = h.term;
	out->hdr_size = h.hdr_size;
	out->size = h.data_size;
	return 0;
bad:
	sr_walc_logf(w, SR_LOG_ERROR,
		     "wal: corruption in %s/%s at offset 0: %s", w->dir, name,
		     why);
out:
	if (fd >= 0)
		close(fd);
	return rv;
}

int sr_walsnap_load(sr_wal *w, const uint64_t *idx, size_t n)
{
	char name[32];
	size_t i;
	int rv;

	for (i = n; i-- > 0;) {
		rv = snap_check(w, idx[i], &w->snap);
		if (!rv)
			break;
		if (rv != SR_ECORRUPT)
			return rv;
		if (w->repair == SR_WAL_REPAIR_NONE) {
			sr_walc_logf(w, SR_LOG_ERROR,
				     "wal: refusing to open %s: the newest "
				     "snapshot is damaged",
				     w->dir);
			return rv;
		}
		sr_walio_snap_name(name, sizeof(name), idx[i]);
		sr_walc_logf(w, SR_LOG_WARN,
			     "wal: REPAIR: deleting the damaged snapshot "
			     "%s/%s%s",
			     w->dir, name,
			     w->repair == SR_WAL_REPAIR_PEERS ? " (the leader "
								"sends it "
								"again)"
							      : "");
		if ((rv = sr_walrec_note_lost(w, idx[i])))
			return rv;
		if (unlinkat(w->dirfd, name, 0) != 0 || fsync(w->dirfd) != 0)
			return io_error(w, "delete", name);
	}
	if (i == (size_t)-1) {
		memset(&w->snap, 0, sizeof(w->snap));
		w->snap.fd = -1;
		return 0;
	}
	for (size_t j = 0; j < i; j++) { /* older, superseded */
		sr_walio_snap_name(name, sizeof(name), idx[j]);
		unlinkat(w->dirfd, name, 0);
	}
	if (i && fsync(w->dirfd) != 0)
		return io_error(w, "directory fsync", ".");
	return 0;
}

void sr_walsnap_close(sr_wal *w)
{
	if (w->snap.fd >= 0)
		close(w->snap.fd);
	w->snap.fd = -1;
	if (w->part_active) {
		close(w->part.fd);
		unlinkat(w->dirfd, "snap.tmp", 0);
		w->part_active = 0;
	}
}

/* ------------------------------------------------------------------ */
/* The vtable                                                         */
/* ------------------------------------------------------------------ */

static void part_discard(sr_wal *w)
{
	if (!w->part_active)
		return;
	close(w->part.fd);
	unlinkat(w->dirfd, "snap.tmp", 0);
	w->part.fd = -1;
	w->part_active = 0;
}

static int failed(sr_wal *w)
{
	int rv;

	pthread_mutex_lock(&w->mu);
	rv = w->failed;
	pthread_mutex_unlock(&w->mu);
	return rv;
}

int sr_walsnap_begin(void *ctx, sr_index index, sr_term term,
		     const sr_membership *conf)
{
	sr_wal *w = ctx;
	int fd, rv = failed(w);

	if (rv)
		return rv;
	if (index == 0 || index > WAL_INDEX_MAX ||
	    (conf && conf->n > SR_MAX_MEMBERS))
		return SR_EINVAL;
	part_discard(w);
	fd = openat(w->dirfd, "snap.tmp",
		    O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return io_error(w, "create", "snap.tmp");
	memset(&w->part, 0, sizeof(w->part));
	w->part.fd = fd;
	w->part.index = index;
	w->part.term = term;
	if (conf)
		w->part.conf = *conf;
	w->part.hdr_size = sr_walfmt_snap_hdr_size(conf);
	w->part_active = 1;
	return 0;
}

int sr_walsnap_write(void *ctx, uint64_t offset, const void *data, size_t len)
{
	sr_wal *w = ctx;
	struct wal_snap *p = &w->part;

	if (!w->part_active)
		return SR_ESTATE;
	if (offset > p->size || (len && !data))
		return SR_EINVAL;
	if (len &&
	    sr_walio_pwrite_all(p->fd, data, len, p->hdr_size + offset) != 0)
		return io_error(w, "write", "snap.tmp");
	if (offset + len > p->size)
		p->size = offset + len;
	return 0;
}

/* Header, fsync: everything that can fail without changing anything. */
static int part_seal(sr_wal *w)
{
	unsigned char hdr[SNAP_HDR_MAX];
	struct wal_snap *p = &w->part;
	struct wal_snap_hdr h = { .hdr_size = p->hdr_size,
				  .index = p->index,
				  .term = p->term,
				  .data_size = p->size };
	int rv = crc_file(w, p->fd, p->hdr_size, p->size, &h.data_crc);

	if (rv)
		return rv == SR_ENOMEM ? rv : io_error(w, "read", "snap.tmp");
	sr_walfmt_snap_hdr_encode(hdr, &h, &p->conf);
	if (sr_walio_pwrite_all(p->fd, hdr, p->hdr_size, 0) != 0)
		return io_error(w, "header write", "snap.tmp");
	if (fsync(p->fd) != 0)
		return io_error(w, "fsync", "snap.tmp");
	return 0;
}

int sr_walsnap_finish(void *ctx, int commit)
{
	sr_wal *w = ctx;
	struct wal_snap old = w->snap;
	char name[32], oldname[32];
	int rv;

	if (!w->part_active)
		return SR_ESTATE;
	if (!commit) {
		part_discard(w);
		return 0;
	}
	/* part_seal, then the barrier: earlier log writes durable first */
	if ((rv = failed(w)) || (rv = part_seal(w)) ||
	    (rv = sr_walc_drain(w))) {
		part_discard(w);
		return rv;
	}
	sr_walio_snap_name(name, sizeof(name), w->part.index);
	if (renameat(w->dirfd, "snap.tmp", w->dirfd, name) != 0) {
		rv = io_error(w, "rename", name);
		part_discard(w);
		stop_wal(w, rv);
		return rv;
	}
	w->snap = w->part;
	w->part.fd = -1;
	w->part_active = 0;
	if (fsync(w->dirfd) != 0) {
		rv = io_error(w, "directory fsync", name);
		stop_wal(w, rv);
		return rv;
	}
	if (old.fd >= 0) {
		close(old.fd);
		if (old.index != w->snap.index) {
			sr_walio_snap_name(oldname, sizeof(oldname), old.index);
			unlinkat(w->dirfd, oldname, 0);
			(void)fsync(w->dirfd);
		}
	}
	sr_walc_logf(w, SR_LOG_INFO,
		     "wal: snapshot %llu (term %llu, %llu bytes) is durable",
		     (unsigned long long)w->snap.index,
		     (unsigned long long)w->snap.term,
		     (unsigned long long)w->snap.size);
	return 0;
}

int sr_walsnap_read(void *ctx, uint64_t offset, void *buf, size_t len,
		    size_t *n_out)
{
	sr_wal *w = ctx;
	uint64_t n;
	char name[32];

	*n_out = 0;
	if (w->snap.fd < 0)
		return SR_ENOTFOUND;
	if (offset > w->snap.size)
		return SR_EINVAL;
	n = w->snap.size - offset;
	if (n > len)
		n = len;
	if (n && sr_walio_pread_all(w->snap.fd, buf, (size_t)n,
				    w->snap.hdr_size + offset) != 0) {
		sr_walio_snap_name(name, sizeof(name), w->snap.index);
		return io_error(w, "read", name);
	}
	*n_out = (size_t)n;
	return 0;
}
