/*
 * wal_snap.c — snapshot files: writing one in chunks, making it the
 * current snapshot atomically, reading it back, and loading it at open.
 *
 * Each group has its own snapshot: group 0's files are <index>.snap and
 * snap.tmp, group g's g<g>-<index>.snap and g<g>.snap.tmp (8 and 16 hex
 * digits).  Everything below applies per group.
 *
 * Writing.  snapshot_begin() creates snap.tmp and leaves room for the
 * header (its size depends only on the membership); snapshot_write()
 * pwrites each chunk at its offset (a chunk may rewrite earlier bytes,
 * as the in-memory store allows); snapshot_finish(1) writes the header
 * with the data's CRC32C, fsyncs the file, waits until every earlier
 * append/truncate/compact is durable (so the durable state stays a
 * prefix of the operations), renames snap.tmp to <index>.snap, fsyncs
 * the directory, and only then unlinks the previous snapshot (its
 * blocks are freed by wal_io_close_later, off this thread).  A crash
 * at any step leaves the old snapshot or the new one complete; a
 * leftover snap.tmp is deleted at open.
 *
 * All of it runs on the host's thread, so finish is kept short: the
 * data CRC is computed as the chunks arrive, while each one starts where
 * the previous one ended (the usual case).  Once a chunk rewrites
 * earlier bytes, finish reads the data back instead (crc_file); the
 * header is the same either way.  After each chunk, writeback of the
 * file's whole MiB that are now complete is started (sync_file_range,
 * Linux; it waits for nothing and its failure is ignored), so that the
 * fsync in finish, which alone makes the file durable, finds little left
 * to write.
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
 * wal_lost.c, so the node waits for the leader to send it again).
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

static int io_error(sr_wal *w, const char *what, const char *name)
{
	int e = errno;

	wal_io_logf(w, SR_LOG_ERROR, "wal: snapshot %s of %s/%s failed: %s",
		    what, w->dir, name, strerror(e));
	return wal_io_error_code(e);
}

/* CRC32C of len bytes of fd from off on. */
static int crc_file(sr_wal *w, int fd, uint64_t off, uint64_t len,
		    uint32_t *crc)
{
	unsigned char *buf = wal_mem_alloc(w, SNAP_CHUNK);
	int rv = 0;

	*crc = 0;
	if (!buf)
		return SR_ENOMEM;
	while (len) {
		size_t n = len > SNAP_CHUNK ? SNAP_CHUNK : (size_t)len;

		if (wal_io_pread_all(fd, buf, n, off) != 0) {
			rv = -1;
			break;
		}
		*crc = sr_crc32c(*crc, buf, n);
		off += n;
		len -= n;
	}
	wal_mem_free(w, buf);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Loading at open                                                    */
/* ------------------------------------------------------------------ */

/* The membership, allocated to its size (a group's memory bound). */
static int snap_set_conf(sr_wal *w, struct wal_snap *sn,
			 const sr_membership *conf)
{
	sr_member *m = NULL;

	if (conf && conf->n) {
		m = wal_mem_alloc(w, conf->n * sizeof(*m));
		if (!m)
			return SR_ENOMEM;
		memcpy(m, conf->members, conf->n * sizeof(*m));
	}
	wal_mem_free(w, sn->members);
	sn->members = m;
	sn->n_members = m ? conf->n : 0;
	return 0;
}

/* 0, SR_ECORRUPT (logged) or an I/O error. */
static int snap_check(struct sr_wal_group *g, uint64_t index,
		      struct wal_snap *out)
{
	sr_wal *w = g->wal;
	unsigned char hdr[SNAP_HDR_MAX];
	struct wal_snap_hdr h;
	const char *why = "shorter than a snapshot header";
	sr_membership *conf = wal_mem_alloc(w, sizeof(*conf));
	char name[48];
	struct stat st;
	uint32_t crc;
	ssize_t n;
	int fd, rv = SR_ECORRUPT;

	if (!conf)
		return SR_ENOMEM;
	wal_io_snap_name(name, sizeof(name), g->id, index);
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
	if (wal_fmt_snap_hdr_decode(hdr, (size_t)n, &h, conf, &why) !=
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
	if ((rv = snap_set_conf(w, out, conf)))
		goto out;
	wal_mem_free(w, conf);
	out->fd = fd;
	out->index = h.index;
	out->term = h.term;
	out->hdr_size = h.hdr_size;
	out->size = h.data_size;
	return 0;
bad:
	wal_io_logf(w, SR_LOG_ERROR, "wal: corruption in %s/%s at offset 0: %s",
		    w->dir, name, why);
out:
	if (fd >= 0)
		close(fd);
	wal_mem_free(w, conf);
	return rv;
}

int wal_snap_load(struct sr_wal_group *g, const uint64_t *idx, size_t n)
{
	sr_wal *w = g->wal;
	char name[48];
	size_t i;
	int rv;

	for (i = n; i-- > 0;) {
		rv = snap_check(g, idx[i], &g->snap);
		if (!rv)
			break;
		if (rv != SR_ECORRUPT)
			return rv;
		if (w->repair == SR_WAL_REPAIR_NONE) {
			wal_io_logf(w, SR_LOG_ERROR,
				    "wal: refusing to open %s: the newest "
				    "snapshot is damaged",
				    w->dir);
			return rv;
		}
		wal_io_snap_name(name, sizeof(name), g->id, idx[i]);
		wal_io_logf(w, SR_LOG_WARN,
			    "wal: REPAIR: deleting the damaged snapshot "
			    "%s/%s%s",
			    w->dir, name,
			    w->repair == SR_WAL_REPAIR_PEERS ? " (the leader "
							       "sends it "
							       "again)"
							     : "");
		if ((rv = wal_lost_note(g, idx[i])))
			return rv;
		if (unlinkat(w->dirfd, name, 0) != 0 || fsync(w->dirfd) != 0)
			return io_error(w, "delete", name);
	}
	if (i == (size_t)-1) {
		wal_mem_free(w, g->snap.members);
		memset(&g->snap, 0, sizeof(g->snap));
		g->snap.fd = -1;
		return 0;
	}
	for (size_t j = 0; j < i; j++) { /* older, superseded */
		wal_io_snap_name(name, sizeof(name), g->id, idx[j]);
		unlinkat(w->dirfd, name, 0);
	}
	if (i && fsync(w->dirfd) != 0)
		return io_error(w, "directory fsync", ".");
	return 0;
}

void wal_snap_discard(struct sr_wal_group *g)
{
	sr_wal *w = g->wal;
	char tmp[32];

	if (!g->part)
		return;
	wal_io_group_name(tmp, sizeof(tmp), g->id, "snap.tmp");
	close(g->part->fd);
	unlinkat(w->dirfd, tmp, 0);
	wal_mem_free(w, g->part->members);
	wal_mem_free(w, g->part);
	g->part = NULL;
}

void wal_snap_close(struct sr_wal_group *g)
{
	if (g->snap.fd >= 0)
		close(g->snap.fd);
	g->snap.fd = -1;
	wal_mem_free(g->wal, g->snap.members);
	g->snap.members = NULL;
	g->snap.n_members = 0;
	wal_snap_discard(g);
}

int wal_snap_delete_all(struct sr_wal_group *g)
{
	sr_wal *w = g->wal;
	char name[48];

	if (g->snap.fd >= 0) {
		wal_io_snap_name(name, sizeof(name), g->id, g->snap.index);
		if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT)
			return io_error(w, "delete", name);
	}
	wal_snap_close(g);
	memset(&g->snap, 0, sizeof(g->snap));
	g->snap.fd = -1;
	wal_io_group_name(name, sizeof(name), g->id, "lost");
	if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT)
		return io_error(w, "delete", name);
	if (fsync(w->dirfd) != 0)
		return io_error(w, "directory fsync", ".");
	return 0;
}

/* ------------------------------------------------------------------ */
/* The vtable                                                         */
/* ------------------------------------------------------------------ */

int wal_snap_begin(void *ctx, sr_index index, sr_term term,
		   const sr_membership *conf)
{
	struct sr_wal_group *g = ctx;
	sr_wal *w = g->wal;
	struct wal_snap *p;
	char tmp[32];
	int fd, rv = wal_queue_failed(w);

	if (rv)
		return rv;
	if (index == 0 || index > WAL_INDEX_MAX ||
	    (conf && conf->n > SR_MAX_MEMBERS))
		return SR_EINVAL;
	wal_snap_discard(g);
	p = wal_mem_alloc(w, sizeof(*p));
	if (!p)
		return SR_ENOMEM;
	memset(p, 0, sizeof(*p));
	if ((rv = snap_set_conf(w, p, conf))) {
		wal_mem_free(w, p);
		return rv;
	}
	wal_io_group_name(tmp, sizeof(tmp), g->id, "snap.tmp");
	fd = openat(w->dirfd, tmp, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		rv = io_error(w, "create", tmp);
		wal_mem_free(w, p->members);
		wal_mem_free(w, p);
		return rv;
	}
	p->fd = fd;
	p->index = index;
	p->term = term;
	p->hdr_size = wal_fmt_snap_hdr_size(conf);
	g->part = p;
	return 0;
}

/*
 * Start writeback of the whole MiB of the file that the data now ends
 * past and did not before (from, to: data sizes).  Asynchronous as long
 * as the device queue has room; an error only means the fsync in finish
 * writes these pages itself.
 */
static void part_start_writeback(const struct wal_snap *p, uint64_t from,
				 uint64_t to)
{
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
	uint64_t a = (p->hdr_size + from) & ~(uint64_t)(SNAP_CHUNK - 1);
	uint64_t b = (p->hdr_size + to) & ~(uint64_t)(SNAP_CHUNK - 1);

	if (b > a)
		(void)sync_file_range(p->fd, (off_t)a, (off_t)(b - a),
				      SYNC_FILE_RANGE_WRITE);
#else
	(void)p;
	(void)from;
	(void)to;
#endif
}

int wal_snap_write(void *ctx, uint64_t offset, const void *data, size_t len)
{
	struct sr_wal_group *g = ctx;
	struct wal_snap *p = g->part;
	uint64_t size;

	if (!p)
		return SR_ESTATE;
	if (offset > p->size || (len && !data))
		return SR_EINVAL;
	if (!len)
		return 0;
	if (wal_io_pwrite_all(p->fd, data, len, p->hdr_size + offset) != 0)
		return io_error(g->wal, "write", "snap.tmp");
	if (offset == p->size)
		p->crc = sr_crc32c(p->crc, data, len);
	else
		p->reread = 1;
	size = p->size;
	if (offset + len > p->size)
		p->size = offset + len;
	part_start_writeback(p, size, p->size);
	return 0;
}

/* Header, fsync: everything that can fail without changing anything. */
static int part_seal(struct sr_wal_group *g)
{
	sr_wal *w = g->wal;
	unsigned char hdr[SNAP_HDR_MAX];
	struct wal_snap *p = g->part;
	sr_membership *conf = wal_mem_alloc(w, sizeof(*conf));
	struct wal_snap_hdr h = { .hdr_size = p->hdr_size,
				  .index = p->index,
				  .term = p->term,
				  .data_size = p->size };
	int rv;

	if (!conf)
		return SR_ENOMEM;
	conf->n = p->n_members;
	if (p->n_members)
		memcpy(conf->members, p->members,
		       p->n_members * sizeof(sr_member));
	h.data_crc = p->crc;
	rv = p->reread ? crc_file(w, p->fd, p->hdr_size, p->size, &h.data_crc)
		       : 0;
	if (rv) {
		wal_mem_free(w, conf);
		return rv == SR_ENOMEM ? rv : io_error(w, "read", "snap.tmp");
	}
	wal_fmt_snap_hdr_encode(hdr, &h, conf);
	wal_mem_free(w, conf);
	if (wal_io_pwrite_all(p->fd, hdr, p->hdr_size, 0) != 0)
		return io_error(w, "header write", "snap.tmp");
	if (fsync(p->fd) != 0)
		return io_error(w, "fsync", "snap.tmp");
	return 0;
}

int wal_snap_finish(void *ctx, int commit)
{
	struct sr_wal_group *g = ctx;
	sr_wal *w = g->wal;
	struct wal_snap old = g->snap;
	char name[48], oldname[48], tmp[32];
	int rv;

	if (!g->part)
		return SR_ESTATE;
	if (!commit) {
		wal_snap_discard(g);
		return 0;
	}
	/* part_seal, then the barrier: earlier log writes durable first */
	if ((rv = wal_queue_failed(w)) || (rv = part_seal(g)) ||
	    (rv = wal_queue_drain(w))) {
		wal_snap_discard(g);
		return rv;
	}
	wal_io_group_name(tmp, sizeof(tmp), g->id, "snap.tmp");
	wal_io_snap_name(name, sizeof(name), g->id, g->part->index);
	if (renameat(w->dirfd, tmp, w->dirfd, name) != 0) {
		rv = io_error(w, "rename", name);
		wal_snap_discard(g);
		wal_queue_stop(w, rv);
		return rv;
	}
	w->st_snaps++;
	w->st_snaps_reread += g->part->reread;
	g->snap = *g->part;
	wal_mem_free(w, g->part);
	g->part = NULL;
	wal_mem_free(w, old.members);
	if (fsync(w->dirfd) != 0) {
		rv = io_error(w, "directory fsync", name);
		wal_queue_stop(w, rv);
		return rv;
	}
	if (old.fd >= 0) {
		/* The name goes now; the blocks when the descriptor closes, on
		 * a thread of its own (wal_io_close_later).  The deletion is
		 * made durable by the next directory sync: a crash before it
		 * leaves the old file, which the next open deletes. */
		if (old.index != g->snap.index) {
			wal_io_snap_name(oldname, sizeof(oldname), g->id,
					 old.index);
			unlinkat(w->dirfd, oldname, 0);
		}
		wal_io_close_later(w, old.fd);
	}
	wal_io_logf(w, SR_LOG_INFO,
		    "wal: snapshot %llu of group %u (term %llu, %llu bytes) "
		    "is durable",
		    (unsigned long long)g->snap.index, g->id,
		    (unsigned long long)g->snap.term,
		    (unsigned long long)g->snap.size);
	return 0;
}

int wal_snap_read(void *ctx, uint64_t offset, void *buf, size_t len,
		  size_t *n_out)
{
	struct sr_wal_group *g = ctx;
	uint64_t n;
	char name[48];

	*n_out = 0;
	if (g->snap.fd < 0)
		return SR_ENOTFOUND;
	if (offset > g->snap.size)
		return SR_EINVAL;
	n = g->snap.size - offset;
	if (n > len)
		n = len;
	if (n && wal_io_pread_all(g->snap.fd, buf, (size_t)n,
				  g->snap.hdr_size + offset) != 0) {
		wal_io_snap_name(name, sizeof(name), g->id, g->snap.index);
		return io_error(g->wal, "read", name);
	}
	*n_out = (size_t)n;
	return 0;
}
