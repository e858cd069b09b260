/*
 * wal_io.c — synchronous file operations of the WAL: the directory lock,
 * the meta file, atomic small-file replacement, and creating and deleting
 * segments; with them the WAL's log hook (wal_io_logf) and its errno to
 * SR_E* mapping.  It sits on wal_queue.c (segment states are published
 * there, under mu) and under every file that touches the disk.
 *
 * Durability rules applied here (docs/storage-format.md, "Ordering"):
 *
 *   - a new segment is fallocate'd (or is the spare, zero-filled ahead
 *     and renamed into place: spare_main() says why), gets its header,
 *     is fdatasync'ed and
 *     then the directory is fsync'ed, all before the first batch is
 *     written to it: a record is never durable in a file whose directory
 *     entry is not;
 *   - the meta file is replaced by writing meta.tmp, fsync, rename, fsync
 *     of the directory: a crash leaves the old or the new one, whole;
 *   - a new group's meta file is created empty (its term and vote go to
 *     the log as HARDSTATE records), and the directory is fsynced by the
 *     I/O engine before it writes the next batch, so the group exists on
 *     disk before any record of it can be durable, and creating a
 *     thousand groups costs one directory fsync, not two thousand;
 *   - segments are deleted oldest first with a directory fsync after each
 *     unlink, so a crash can only leave a suffix of the segments.
 *
 * wal_io_seg_create() and wal_io_seg_delete() run on the posix
 * writer thread: they never allocate (the spare's thread, started from
 * there, takes only its stack) and never call the log hook; a
 * failure is described in w->fail_msg (or w->warn_msg) for the engine
 * thread to log.  The rest runs on the engine thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "wal_int.h"

/* ------------------------------------------------------------------ */
/* Errors and the log hook                                            */
/* ------------------------------------------------------------------ */

void wal_io_logf(sr_wal *w, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!w->log || level < w->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	w->log(w->log_ctx, level, line);
}

/* SR_EIO or SR_ENOSPC for an errno value. */
int wal_io_error_code(int err)
{
	return err == ENOSPC || err == EDQUOT ? SR_ENOSPC : SR_EIO;
}

const char *wal_io_group_label(const struct sr_wal_group *g, char *buf,
			       size_t cap)
{
	if (g->id)
		snprintf(buf, cap, " (group %u)", g->id);
	else if (cap)
		buf[0] = 0;
	return buf;
}

void wal_io_seg_name(char *buf, size_t cap, uint64_t seq)
{
	snprintf(buf, cap, "%016llx.wal", (unsigned long long)seq);
}

void wal_io_snap_name(char *buf, size_t cap, uint32_t gid, sr_index index)
{
	if (gid)
		snprintf(buf, cap, "g%08x-%016llx.snap", gid,
			 (unsigned long long)index);
	else
		snprintf(buf, cap, "%016llx.snap", (unsigned long long)index);
}

void wal_io_group_name(char *buf, size_t cap, uint32_t gid, const char *base)
{
	if (gid)
		snprintf(buf, cap, "g%08x.%s", gid, base);
	else
		snprintf(buf, cap, "%s", base);
}

/* pread or pwrite all of buf[0, len) at off, through EINTR and short
 * transfers; -1 with errno set (EIO for an end of file: the callers
 * checked the sizes). */
static int transfer_all(int fd, unsigned char *p, size_t len, uint64_t off,
			int write)
{
	while (len) {
		ssize_t n = write ? pwrite(fd, p, len, (off_t)off)
				  : pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int wal_io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	/* not written through: the pointer only shares the loop */
	return transfer_all(fd, (unsigned char *)(uintptr_t)buf, len, off, 1);
}

int wal_io_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	return transfer_all(fd, buf, len, off, 0);
}

__attribute__((format(printf, 4, 0))) static void
vset_msg(sr_wal *w, char *dst, size_t cap, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&w->mu);
	if (!dst[0])
		vsnprintf(dst, cap, fmt, ap);
	pthread_mutex_unlock(&w->mu);
}

void wal_io_fail(sr_wal *w, int code, const char *fmt, ...)
{
	va_list ap;

	(void)code;
	va_start(ap, fmt);
	vset_msg(w, w->fail_msg, sizeof(w->fail_msg), fmt, ap);
	va_end(ap);
}

void wal_io_warn(sr_wal *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset_msg(w, w->warn_msg, sizeof(w->warn_msg), fmt, ap);
	va_end(ap);
}

void wal_io_seg_discard(sr_wal *w, int fd, const char *name)
{
	close(fd);
	unlinkat(w->dirfd, name, 0);
	fsync(w->dirfd);
}

/*
 * The spare segment.  fallocate() leaves "unwritten" extents: the first
 * write into each changes the extent tree, so the fdatasync of a batch of
 * a few KiB also wrote the inode, a third synchronous I/O beside the data
 * and the flush.  On the development VM, 2,000 appends of 12 KiB each
 * with an fdatasync took 144-153 us and 50-53 us of CPU each into a
 * fallocate'd file and 96-97 us and 30-31 us into one already written
 * with zeros (3.0 against 2.0 block requests per sync; 4 KiB: 178-187
 * against 143-158 us; 1 KiB and less: the same).  Writing 64 MiB of
 * zeros takes 70-100 ms, too long for the batch that needs a new
 * segment to wait, so a thread of its own writes the next segment
 * ahead, as "spare.tmp", while the current one fills; creating a segment
 * renames it into place, waiting for the thread if it is still at it.
 * Without a spare (zero_ahead off, or the thread failed: no space) the
 * segment is fallocate'd as before.  spare_joinable and
 * the thread handle belong to whoever runs the I/O engine: the host's
 * thread before the posix writer starts and after it stopped, the
 * writer in between.  Recovery deletes a
 * spare left by a crash; sr_wal_close() deletes an unused one.
 */
#define SPARE_NAME "spare.tmp"
enum { SPARE_NONE, SPARE_MAKING, SPARE_READY };

/* Zeros over [0, size) of fd; -1 with errno, or 1 if asked to stop. */
static int zero_fill(sr_wal *w, int fd, uint64_t size)
{
	static char zeros[64 * 1024]; /* never written: the zero page */
	struct iovec iov[16];
	uint64_t off = 0;

	for (int i = 0; i < 16; i++) {
		iov[i].iov_base = zeros;
		iov[i].iov_len = sizeof(zeros);
	}
	while (off < size) {
		uint64_t left = size - off;
		int n = 0;
		ssize_t got;
		while (n < 16 && left) {
			size_t k = left < sizeof(zeros) ? (size_t)left
							: sizeof(zeros);
			iov[n++].iov_len = k;
			left -= k;
		}
		if (__atomic_load_n(&w->spare_stop, __ATOMIC_ACQUIRE))
			return 1;
		got = pwritev(fd, iov, n, (off_t)off);
		for (int i = 0; i < n; i++)
			iov[i].iov_len = sizeof(zeros);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got == 0)
				errno = EIO;
			return -1;
		}
		off += (uint64_t)got;
	}
	return 0;
}

static void *spare_main(void *arg)
{
	sr_wal *w = arg;
	int fd = openat(w->dirfd, SPARE_NAME,
			O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 && fallocate(fd, 0, 0, (off_t)w->spare_size) == 0 &&
	    zero_fill(w, fd, w->spare_size) == 0 && fdatasync(fd) == 0) {
		w->spare_fd = fd;
		__atomic_store_n(&w->spare_state, SPARE_READY,
				 __ATOMIC_RELEASE);
		return NULL;
	}
	/* no room, no fallocate, or stopped: the next segment is made the
	 * old way; the error, if any, shows when that one is created */
	if (fd >= 0) {
		close(fd);
		unlinkat(w->dirfd, SPARE_NAME, 0);
	}
	__atomic_store_n(&w->spare_state, SPARE_NONE, __ATOMIC_RELEASE);
	return NULL;
}

void wal_io_spare_start(sr_wal *w)
{
	if (!w->zero_ahead ||
	    __atomic_load_n(&w->spare_state, __ATOMIC_ACQUIRE) != SPARE_NONE ||
	    __atomic_load_n(&w->spare_stop, __ATOMIC_ACQUIRE))
		return;
	if (w->spare_joinable) { /* the last one, finished */
		pthread_join(w->spare_thread, NULL);
		w->spare_joinable = 0;
	}
	w->spare_size = w->seg_size;
	w->spare_fd = -1;
	__atomic_store_n(&w->spare_state, SPARE_MAKING, __ATOMIC_RELEASE);
	if (pthread_create(&w->spare_thread, NULL, spare_main, w) != 0) {
		__atomic_store_n(&w->spare_state, SPARE_NONE, __ATOMIC_RELEASE);
		return;
	}
	w->spare_joinable = 1;
}

void wal_io_spare_stop(sr_wal *w)
{
	__atomic_store_n(&w->spare_stop, 1, __ATOMIC_RELEASE);
	if (w->spare_joinable) {
		pthread_join(w->spare_thread, NULL);
		w->spare_joinable = 0;
	}
	if (__atomic_load_n(&w->spare_state, __ATOMIC_ACQUIRE) == SPARE_READY) {
		close(w->spare_fd);
		unlinkat(w->dirfd, SPARE_NAME, 0);
		w->spare_fd = -1;
		w->spare_state = SPARE_NONE;
	}
}

/*
 * Closing a deleted file off the host's thread.  Unlinking a file whose
 * descriptor is still open only removes its name (27-35 us for a 16 MiB
 * snapshot on the development VM); its blocks are freed when the last
 * descriptor closes, and that close took 2.6-3.5 ms (an unlink of the
 * same file closed: 2.7-2.8 ms).  So the previous snapshot is unlinked
 * while open and its descriptor closed here, by a thread that does
 * nothing else.  One at a time: a second waits for the first (groups
 * that snapshot together wait at most what closing on the host's thread
 * cost before); close waits for it too.
 */
static void *closer_main(void *arg)
{
	close((int)(intptr_t)arg);
	return NULL;
}

void wal_io_closer_join(sr_wal *w)
{
	if (w->closer_joinable) {
		pthread_join(w->closer, NULL);
		w->closer_joinable = 0;
	}
}

void wal_io_close_later(sr_wal *w, int fd)
{
	wal_io_closer_join(w);
	if (pthread_create(&w->closer, NULL, closer_main,
			   (void *)(intptr_t)fd) != 0) {
		close(fd); /* no thread: on this one, as before */
		return;
	}
	w->closer_joinable = 1;
}

/*
 * The spare as the segment called name, or -1 if there is none.  One
 * still being made is waited for: at most the time to write a segment
 * of zeros, needed only when segments fill faster than that or for the
 * first one after open; a fallocate'd segment would instead cost the
 * extra inode write at every fdatasync until it is full.
 */
static int spare_take(sr_wal *w, const char *name, uint64_t size)
{
	int fd;

	if (w->spare_joinable) {
		pthread_join(w->spare_thread, NULL);
		w->spare_joinable = 0;
	}
	if (__atomic_load_n(&w->spare_state, __ATOMIC_ACQUIRE) != SPARE_READY)
		return -1;
	fd = w->spare_fd;
	w->spare_fd = -1;
	__atomic_store_n(&w->spare_state, SPARE_NONE, __ATOMIC_RELEASE);
	if (w->spare_size != size ||
	    renameat(w->dirfd, SPARE_NAME, w->dirfd, name) != 0) {
		close(fd);
		unlinkat(w->dirfd, SPARE_NAME, 0);
		return -1;
	}
	__atomic_add_fetch(&w->st_zeroed, 1, __ATOMIC_RELAXED);
	return fd;
}

int wal_io_seg_create(sr_wal *w, const struct wal_item *it)
{
	char name[32];
	const char *step = "open";
	int fd, e, code;

	wal_io_seg_name(name, sizeof(name), it->seg);
	fd = spare_take(w, name, it->seg_size);
	if (fd >= 0)
		goto header;
	fd = openat(w->dirfd, name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
		    0600);
	if (fd < 0)
		goto fail;
	step = "fallocate";
	if (fallocate(fd, 0, 0, (off_t)it->seg_size) != 0) {
		/* a file system without fallocate: size it sparse instead */
		if (errno != EOPNOTSUPP && errno != ENOSYS)
			goto fail_fd;
		step = "ftruncate";
		if (ftruncate(fd, (off_t)it->seg_size) != 0)
			goto fail_fd;
	}
header:
	step = "header write";
	if (wal_io_pwrite_all(fd, it->hdr, WAL_SEG_HDR, 0) != 0)
		goto fail_fd;
	step = "fdatasync";
	if (fdatasync(fd) != 0)
		goto fail_fd;
	step = "directory fsync";
	if (fsync(w->dirfd) != 0)
		goto fail_fd;
	return fd;

fail_fd:
	e = errno;
	wal_io_seg_discard(w, fd, name);
	errno = e;
fail:
	e = errno;
	code = wal_io_error_code(e);
	wal_io_fail(w, code,
		    "wal: creating segment %s/%s (%llu bytes) failed at %s: "
		    "%s; the WAL is stopped, the files are left consistent",
		    w->dir, name, (unsigned long long)it->seg_size, step,
		    strerror(e));
	return code;
}

void wal_io_seg_delete(sr_wal *w, const struct wal_item *it)
{
	uint64_t seq;

	while ((seq = wal_queue_seg_to_delete(w, it->seg))) {
		char name[32];
		int e;

		wal_io_seg_name(name, sizeof(name), seq);
		if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT) {
			e = errno;
			wal_io_warn(w,
				    "wal: deleting %s/%s failed: %s (kept; "
				    "retried at the next compaction)",
				    w->dir, name, strerror(e));
			return;
		}
		if (fsync(w->dirfd) != 0) {
			e = errno;
			wal_io_warn(w,
				    "wal: fsync of %s after deleting %s "
				    "failed: %s",
				    w->dir, name, strerror(e));
			return;
		}
		wal_queue_seg_deleted(w, seq);
	}
}

int wal_io_dir_sync(sr_wal *w)
{
	int dirty, e, code;

	pthread_mutex_lock(&w->mu);
	dirty = w->dir_dirty;
	w->dir_dirty = 0;
	pthread_mutex_unlock(&w->mu);
	if (!dirty || fsync(w->dirfd) == 0)
		return 0;
	e = errno;
	code = wal_io_error_code(e);
	wal_io_fail(w, code,
		    "wal: fsync of %s (new groups' meta files) failed: %s; "
		    "the WAL is stopped",
		    w->dir, strerror(e));
	return code;
}

int wal_io_meta_create(struct sr_wal_group *g)
{
	sr_wal *w = g->wal;
	char name[32];
	int fd;

	wal_io_group_name(name, sizeof(name), g->id, "meta");
	fd = openat(w->dirfd, name, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		wal_io_logf(w, SR_LOG_ERROR, "wal: creating %s/%s: %s", w->dir,
			    name, strerror(errno));
		return wal_io_error_code(errno);
	}
	close(fd);
	pthread_mutex_lock(&w->mu);
	w->dir_dirty = 1;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

int wal_io_write_atomic(sr_wal *w, const char *name, const void *buf,
			size_t len)
{
	char tmp[64];
	const char *step = "create";
	int fd, e;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(w->dirfd, tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC,
		    0600);
	if (fd < 0)
		goto fail;
	step = "write";
	if (wal_io_pwrite_all(fd, buf, len, 0) != 0)
		goto fail_fd;
	step = "fsync";
	if (fsync(fd) != 0)
		goto fail_fd;
	close(fd);
	fd = -1;
	step = "rename";
	if (renameat(w->dirfd, tmp, w->dirfd, name) != 0)
		goto fail;
	step = "directory fsync";
	if (fsync(w->dirfd) != 0)
		goto fail;
	return 0;

fail_fd:
	e = errno;
	close(fd);
	unlinkat(w->dirfd, tmp, 0);
	errno = e;
fail:
	e = errno;
	wal_io_logf(w, SR_LOG_ERROR, "wal: replacing %s/%s failed at %s: %s",
		    w->dir, name, step, strerror(e));
	return wal_io_error_code(e);
}

int wal_io_meta_load(sr_wal *w, int dir_has_data)
{
	unsigned char buf[WAL_META_SIZE];
	struct wal_meta m = { 0, 0 };
	int fd = openat(w->dirfd, "meta", O_RDONLY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		if (dir_has_data) {
			wal_io_logf(w, SR_LOG_ERROR,
				    "wal: corruption in %s: the meta file "
				    "(term and vote) is missing but log or "
				    "snapshot files exist; refusing to open",
				    w->dir);
			return SR_ECORRUPT;
		}
		wal_fmt_meta_encode(buf, &m);
		w->g0.term = 0;
		w->g0.vote = 0;
		return wal_io_write_atomic(w, "meta", buf, WAL_META_SIZE);
	}
	if (fd >= 0)
		close(fd);
	return wal_io_meta_read(&w->g0);
}

int wal_io_read_small(sr_wal *w, const char *name, void *buf, size_t cap,
		      int missing_ok, size_t *n)
{
	const char *step = "opening";
	ssize_t got = -1;
	int fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && missing_ok)
		return SR_ENOTFOUND;
	if (fd >= 0) {
		step = "reading";
		do {
			got = pread(fd, buf, cap, 0);
		} while (got < 0 && errno == EINTR);
		close(fd);
	}
	if (got < 0) {
		wal_io_logf(w, SR_LOG_ERROR, "wal: %s %s/%s: %s", step, w->dir,
			    name, strerror(errno));
		return SR_EIO;
	}
	*n = (size_t)got;
	return 0;
}

int wal_io_meta_read(struct sr_wal_group *g)
{
	sr_wal *w = g->wal;
	unsigned char buf[WAL_META_SIZE + 8];
	struct wal_meta m = { 0, 0 };
	const char *why = NULL;
	char name[32];
	size_t n;
	int rv;

	wal_io_group_name(name, sizeof(name), g->id, "meta");
	if ((rv = wal_io_read_small(w, name, buf, sizeof(buf), 0, &n)))
		return rv;
	if (n == 0 && g->id) {
		/* created empty (format version 3): the log holds the rest */
		g->term = 0;
		g->vote = 0;
		return 0;
	}
	if (wal_fmt_meta_decode(buf, n, &m, &why) != WALFMT_OK) {
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: corruption in %s/%s at offset 0: %s; "
			    "refusing to open (term and vote cannot be "
			    "repaired: a lost vote could elect two leaders)",
			    w->dir, name, why);
		return SR_ECORRUPT;
	}
	g->term = m.term;
	g->vote = m.vote;
	return 0;
}

int wal_io_meta_write(struct sr_wal_group *g, sr_term term, sr_id vote)
{
	unsigned char buf[WAL_META_SIZE];
	struct wal_meta m = { term, vote };
	char name[32];

	wal_io_group_name(name, sizeof(name), g->id, "meta");
	wal_fmt_meta_encode(buf, &m);
	return wal_io_write_atomic(g->wal, name, buf, sizeof(buf));
}

int wal_io_lock(sr_wal *w)
{
	char pid[32] = "";
	ssize_t n;

	w->lockfd = openat(w->dirfd, "LOCK", O_CREAT | O_RDWR | O_CLOEXEC,
			   0600);
	if (w->lockfd < 0) {
		wal_io_logf(w, SR_LOG_ERROR, "wal: opening %s/LOCK: %s", w->dir,
			    strerror(errno));
		return wal_io_error_code(errno);
	}
	if (flock(w->lockfd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		if (e != EWOULDBLOCK) {
			wal_io_logf(w, SR_LOG_ERROR, "wal: locking %s/LOCK: %s",
				    w->dir, strerror(e));
			return SR_EIO;
		}
		n = pread(w->lockfd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: %s is in use: another process or WAL "
			    "instance holds %s/LOCK (pid %s); two writers "
			    "would corrupt the log",
			    w->dir, w->dir, pid[0] ? pid : "unknown");
		return SR_ELOCKED;
	}
	/* The pid is informational: the flock is the lock. */
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(w->lockfd, 0) == 0)
		(void)!pwrite(w->lockfd, pid, strlen(pid), 0);
	return 0;
}

int wal_io_zero_range(int fd, uint64_t from, uint64_t to)
{
	static const unsigned char zero[65536];

	if (to <= from)
		return 0;
	if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		      (off_t)from, (off_t)(to - from)) != 0) {
		while (from < to) {
			size_t n = to - from > sizeof(zero)
					   ? sizeof(zero)
					   : (size_t)(to - from);

			if (wal_io_pwrite_all(fd, zero, n, from) != 0)
				return -1;
			from += n;
		}
	}
	return fdatasync(fd);
}
