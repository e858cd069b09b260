/*
 * wal_direct.c — writing a batch with direct I/O (the posix engine).
 *
 * With sr_wal_options.direct_io, a batch goes to its segment through a
 * second descriptor opened O_DIRECT | O_DSYNC: one pwrite that returns
 * once the bytes are on stable storage, instead of a pwrite into the page
 * cache and an fdatasync that writes the pages back and flushes the
 * device's cache.  Same bytes at the same offsets, so the format and
 * recovery do not change; only the way they reach the disk.  Measured on
 * the 2-core development VM (docs/benchmarks.md, Round 9): a 200-byte
 * append took 35-38 us of CPU against 39-54 us, and a 3-node kvnode
 * served 1.04x the writes/s at 1 client and 1.09x at 50 (medians of 7
 * alternated rounds; the page cache's writeback and the separate flush
 * are what go).
 *
 * Direct I/O moves whole blocks from an aligned buffer.  A batch starts
 * where the previous one ended, usually inside a block, so the write
 * begins at that block's start: the staging buffer holds the block's
 * bytes before the batch (kept from the previous write, or read back
 * through the ordinary descriptor), then the batch, then zeros up to the
 * next block boundary.  Beyond the end of the log a segment holds zeros
 * already (zero-filled, fallocate'd, or zeroed by recovery), and the
 * next batch rewrites the block anyway.  The rewritten prefix is bytes
 * already durable, written again unchanged.
 *
 * Falling back.  A batch larger than the staging buffer, or one that
 * would end past its segment's size, is written the ordinary way
 * (pwrite + fdatasync), and so is any batch when the filesystem refuses
 * O_DIRECT (EINVAL at open or at write: then for good, with a warning).
 * Rewriting bytes the ordinary way after a partial direct write is safe:
 * the same bytes again.  A real I/O error (EIO, ENOSPC) stops the WAL as
 * a failed fdatasync does, and is never retried.
 *
 * Coherence with the page cache: reads (wal_read.c, recovery) go through
 * the ordinary descriptor.  The kernel drops the cached pages of a range
 * a direct write covers, so a later read sees the new bytes; a read that
 * races with the write only reads bytes published before it, which the
 * write rewrites unchanged.  What would break this is a buffered write
 * racing with a direct one on the same file; there is none: the engine
 * writes one item at a time, and the writer's pre-work (buffered writes
 * of an OPEN batch) is off while direct I/O is on.
 *
 * Runs where posix_run_batch() runs (the writer thread, or the host's
 * thread inside sr_wal_write_now(), never both at once), so it never
 * allocates and never logs: wal_direct_init() and wal_direct_free() run
 * on the host's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "wal_int.h"

/* Block size the writes are aligned to: a multiple of every logical
 * block size in use (512 or 4096 bytes). */
#define DIO_ALIGN    ((uint64_t)4096)
/* The largest batch written directly; larger ones (rare: a batch is what
 * arrives during one fdatasync) take the ordinary path. */
#define DIO_MAX	     ((size_t)1 << 20)
#define DIO_STAGE    (DIO_MAX + 2 * (size_t)DIO_ALIGN)

#define TAIL_UNKNOWN UINT64_MAX

/* A descriptor for O_DIRECT on the WAL's directory (the lock file) tells
 * whether the filesystem takes it: EINVAL if not (tmpfs before Linux 6.6,
 * some FUSE and network filesystems). */
static int probe(const sr_wal *w)
{
	int fd = openat(w->dirfd, "LOCK", O_RDONLY | O_DIRECT | O_CLOEXEC);

	if (fd < 0)
		return errno == EINVAL ? 0 : -1;
	close(fd);
	return 1;
}

int wal_direct_init(sr_wal *w, struct wal_direct *d)
{
	int ok;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	d->tail_end = TAIL_UNKNOWN;
	if (!w->direct_io)
		return 0;
	ok = probe(w);
	if (ok == 0) {
		wal_io_logf(w, SR_LOG_INFO,
			    "wal: %s does not support O_DIRECT: batches are "
			    "written with pwrite + fdatasync",
			    w->dir);
		return 0;
	}
	/* any other failure to open shows again at the first batch, which
	 * then takes the ordinary path */
	d->mem = wal_mem_alloc(w, DIO_STAGE + 2 * DIO_ALIGN);
	if (!d->mem)
		return SR_ENOMEM;
	d->tail = (unsigned char *)(((uintptr_t)d->mem + DIO_ALIGN - 1) &
				    ~(uintptr_t)(DIO_ALIGN - 1));
	d->buf = d->tail + DIO_ALIGN;
	d->on = 1;
	return 0;
}

void wal_direct_free(sr_wal *w, struct wal_direct *d)
{
	if (d->fd >= 0)
		close(d->fd);
	wal_mem_free(w, d->mem);
	memset(d, 0, sizeof(*d));
	d->fd = -1;
}

int wal_direct_active(const struct wal_direct *d)
{
	return d->on;
}

/* Segments up to seq are about to be deleted: let go of ours. */
void wal_direct_forget(struct wal_direct *d, uint64_t upto)
{
	if (d->fd >= 0 && d->seg <= upto) {
		close(d->fd);
		d->fd = -1;
		d->tail_end = TAIL_UNKNOWN;
	}
}

/* A batch of segment seq went the ordinary way: the kept tail is stale. */
void wal_direct_wrote_buffered(struct wal_direct *d)
{
	d->tail_end = TAIL_UNKNOWN;
}

static void give_up(sr_wal *w, struct wal_direct *d, const char *what, int err)
{
	d->on = 0;
	wal_direct_forget(d, UINT64_MAX);
	wal_io_warn(w,
		    "wal: %s with O_DIRECT failed in %s: %s; batches are "
		    "written with pwrite + fdatasync from now on",
		    what, w->dir, strerror(err));
}

static int open_segment(sr_wal *w, struct wal_direct *d, uint64_t seq)
{
	char name[32];
	int fd;

	if (d->fd >= 0 && d->seg == seq)
		return 0;
	wal_direct_forget(d, UINT64_MAX);
	wal_io_seg_name(name, sizeof(name), seq);
	fd = openat(w->dirfd, name, O_WRONLY | O_DIRECT | O_DSYNC | O_CLOEXEC);
	if (fd < 0) {
		if (errno == EINVAL)
			give_up(w, d, "opening a segment", errno);
		return 1;
	}
	d->fd = fd;
	d->seg = seq;
	d->tail_end = TAIL_UNKNOWN;
	return 0;
}

int wal_direct_write(sr_wal *w, struct wal_direct *d, struct wal_item *it,
		     int fd, uint64_t seg_size)
{
	uint64_t from = it->off & ~(DIO_ALIGN - 1);
	uint64_t end = it->off + it->len;
	uint64_t to = (end + DIO_ALIGN - 1) & ~(DIO_ALIGN - 1);
	size_t head = (size_t)(it->off - from), span = (size_t)(to - from);
	char name[32];
	ssize_t n;
	int e;

	if (!d->on || span > DIO_STAGE || to > seg_size)
		return 1;
	if (open_segment(w, d, it->seg))
		return 1;
	if (head) {
		if (d->tail_end == it->off)
			memcpy(d->buf, d->tail, head);
		else if (wal_io_pread_all(fd, d->buf, head, from) != 0)
			return 1; /* the ordinary path reports real trouble */
	}
	memcpy(d->buf + head, it->buf, it->len);
	memset(d->buf + head + it->len, 0, span - head - it->len);
	do
		n = pwrite(d->fd, d->buf, span, (off_t)from);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)span) {
		size_t keep = (size_t)(end & (DIO_ALIGN - 1));
		if (keep)
			memcpy(d->tail, d->buf + span - DIO_ALIGN, keep);
		d->tail_end = end;
		return 0;
	}
	d->tail_end = TAIL_UNKNOWN;
	if (n >= 0)
		return 1; /* short: the ordinary path writes it all again */
	e = errno;
	if (e == EINVAL) {
		give_up(w, d, "a write", e);
		return 1;
	}
	wal_io_seg_name(name, sizeof(name), it->seg);
	wal_io_fail(w, wal_io_error_code(e),
		    "wal: direct write of %zu bytes to %s/%s at offset %llu "
		    "failed: %s; the WAL is stopped and the entries of this "
		    "batch will never be reported durable",
		    span, w->dir, name, (unsigned long long)from, strerror(e));
	return wal_io_error_code(e);
}
