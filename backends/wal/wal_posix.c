/*
 * wal_posix.c — the posix I/O engine: one writer thread.
 *
 * The writer runs the queue's items one at a time, in order:
 *
 *   BATCH:  create the segment first if the batch starts one
 *           (wal_io.c), pwrite the whole buffer, publish "written" (so
 *           read() may pread it), fdatasync, finish the item;
 *   DELETE: unlink the segments, oldest first, fsyncing the directory
 *           after each.
 *
 * Group commit falls out of the loop: while one batch is being written
 * and synced, appends go to the next (OPEN) batch, which the writer takes
 * whole when it comes back.  It does not take an OPEN batch while the
 * host is inside sr_wal_process() ("plugged"): the appends made by the
 * completion callbacks of one round then share one write.
 *
 * Failure: a failed pwrite or fdatasync finishes the item with SR_EIO or
 * SR_ENOSPC and stops the WAL; fdatasync is never retried (after a
 * failure the kernel may have dropped the dirty pages, so a second
 * fdatasync that succeeds proves nothing).  Every later item is finished
 * with the same error without touching the disk.
 *
 * Waiting for the host.  Right after a batch finishes, its completion is
 * on its way to the host, whose callbacks will append the next batch
 * within microseconds; likewise while the host is inside sr_wal_process()
 * (plugged).  So before sleeping on cv_work the writer spins once, without
 * the lock, for at most WAL_SPIN_NS or until the host kicks: that saves a
 * futex wake-up (tens of microseconds on a busy machine) per batch, which
 * matters when an fdatasync costs 0.2 ms.
 *
 * The writer holds `mu` only to take an item and to publish progress,
 * never across a system call that touches the disk; it never allocates,
 * frees or logs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wal_int.h"

#define WAL_SPIN_NS 100000

struct posix_state {
	pthread_t thread;
	int running;
};

/* pwrite buf[from, to) of the batch; 0 or the error (fail_msg set). */
static int write_part(sr_wal *w, struct wal_item *it, int fd, size_t from,
		      size_t to)
{
	char name[32];
	int e, code;

	if (from >= to)
		return 0;
	if (sr_walio_pwrite_all(fd, it->buf + from, to - from,
				it->off + from) == 0)
		return 0;
	e = errno;
	code = sr_walc_errno_code(e);
	sr_walio_seg_name(name, sizeof(name), it->seg);
	sr_walio_fail(w, code,
		      "wal: write of %zu bytes to %s/%s at offset %llu "
		      "failed: %s; the WAL is stopped and the entries of this "
		      "batch will never be reported durable",
		      to - from, w->dir, name,
		      (unsigned long long)(it->off + from), strerror(e));
	return code;
}

/* Publish that buf[0, to) is in the file (under mu). */
static void published(sr_wal *w, struct wal_item *it, size_t to)
{
	struct wal_seg *s = sr_walc_seg_get(w, it->seg);

	w->st_bytes += to - it->written;
	it->sealed = it->written = to;
	if (s && s->written < it->off + to)
		s->written = it->off + to;
}

static int posix_run_batch(sr_wal *w, struct wal_item *it)
{
	struct wal_seg *s;
	char name[32];
	int fd, e, code;

	pthread_mutex_lock(&w->mu);
	s = sr_walc_seg_get(w, it->seg);
	fd = s ? s->fd : -1;
	pthread_mutex_unlock(&w->mu);
	if (it->pre_err)
		return it->pre_err;
	if (it->new_seg) {
		fd = sr_walio_seg_create(w, it);
		if (fd < 0)
			return fd;
		pthread_mutex_lock(&w->mu);
		s = sr_walc_seg_get(w, it->seg);
		s->fd = fd;
		s->state = SEG_LIVE;
		w->st_created++;
		pthread_mutex_unlock(&w->mu);
	}
	sr_walio_seg_name(name, sizeof(name), it->seg);
	if (fd < 0) {
		sr_walio_fail(w, SR_EIO, "wal: segment %s/%s is not open",
			      w->dir, name);
		return SR_EIO;
	}
	/* BUSY: the host no longer appends; finish sealing, write the rest */
	sr_walfmt_seal(it->buf, it->sealed, it->len);
	if ((code = write_part(w, it, fd, it->written, it->len)))
		return code;
	pthread_mutex_lock(&w->mu);
	published(w, it, it->len);
	it->state = ITEM_WRITTEN;
	pthread_mutex_unlock(&w->mu);
	if (fdatasync(fd) != 0) {
		e = errno;
		code = sr_walc_errno_code(e);
		sr_walio_fail(w, code,
			      "wal: fdatasync of %s/%s failed: %s; the WAL is "
			      "stopped (never retried: the batch at offset "
			      "%llu and everything after it will never be "
			      "reported durable)",
			      w->dir, name, strerror(e),
			      (unsigned long long)it->off);
		return code;
	}
	pthread_mutex_lock(&w->mu);
	w->st_batches++;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

/*
 * While the host is inside sr_wal_process() appending to the OPEN batch
 * (plugged), seal and write the records it has finished so far (under
 * mu on entry and exit; 1 if there was anything to do).  Safe because
 * every earlier item is durable (the OPEN batch is exec), the host only
 * adds bytes after `len`, and a pinned buffer never moves.
 */
static int posix_prework(sr_wal *w)
{
	struct wal_item *it = w->exec;
	struct wal_seg *s;
	size_t to;
	int fd, rv;

	if (!it || it->state != ITEM_OPEN || it->kind != ITEM_BATCH ||
	    it->new_seg || w->failed || it->len <= it->written)
		return 0;
	s = sr_walc_seg_get(w, it->seg);
	if (!s || s->fd < 0)
		return 0;
	fd = s->fd;
	to = it->len;
	it->pinned = 1;
	pthread_mutex_unlock(&w->mu);
	sr_walfmt_seal(it->buf, it->sealed, to);
	rv = write_part(w, it, fd, it->written, to);
	pthread_mutex_lock(&w->mu);
	it->pinned = 0;
	if (rv) {
		it->pre_err = rv;
		if (!w->failed)
			w->failed = rv;
	} else {
		published(w, it, to);
	}
	return 1;
}

/* May the engine start the item at exec now?  (under mu) */
static int runnable(const sr_wal *w)
{
	return w->exec && (w->exec->state != ITEM_OPEN || !w->plugged);
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Spin (mu released) for a few microseconds, or until the host kicks. */
static void spin_slice(sr_wal *w)
{
	unsigned k0 = __atomic_load_n(&w->kicks, __ATOMIC_ACQUIRE);

	pthread_mutex_unlock(&w->mu);
	for (unsigned i = 0; i < 2048; i++) {
		if (__atomic_load_n(&w->kicks, __ATOMIC_ACQUIRE) != k0)
			break;
		cpu_relax();
	}
	pthread_mutex_lock(&w->mu);
}

/*
 * Nothing can start (under mu): do pre-work for the OPEN batch, or spin
 * a little while the next batch is probably on its way (until *deadline),
 * or sleep until kicked.
 */
static void posix_idle(sr_wal *w, uint64_t *deadline)
{
	if (posix_prework(w)) {
		*deadline = now_ns() + WAL_SPIN_NS;
		return;
	}
	if (now_ns() < *deadline) {
		spin_slice(w);
		return;
	}
	pthread_cond_wait(&w->cv_work, &w->mu);
}

static void *posix_main(void *arg)
{
	sr_wal *w = arg;
	uint64_t deadline = 0;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct wal_item *it;
		int st;

		if (!runnable(w)) {
			if (w->stopping && !w->exec)
				break;
			posix_idle(w, &deadline);
			continue;
		}
		it = w->exec;
		it->state = ITEM_BUSY;
		st = w->failed;
		pthread_mutex_unlock(&w->mu);
		if (!st && it->kind == ITEM_DELETE)
			sr_walio_seg_delete(w, it);
		else if (!st && it->len)
			st = posix_run_batch(w, it);
		pthread_mutex_lock(&w->mu);
		sr_walc_item_finish(w, it, st);
		pthread_mutex_unlock(&w->mu);
		sr_walc_notify(w);
		deadline = now_ns() + WAL_SPIN_NS;
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int posix_start(sr_wal *w)
{
	struct posix_state *ps = sr_walc_alloc(w, sizeof(*ps));
	int e;

	if (!ps)
		return SR_ENOMEM;
	memset(ps, 0, sizeof(*ps));
	e = pthread_create(&ps->thread, NULL, posix_main, w);
	if (e) {
		sr_walc_logf(w, SR_LOG_ERROR,
			     "wal: starting the writer thread: %s",
			     strerror(e));
		sr_walc_free(w, ps);
		return SR_ENOMEM;
	}
	ps->running = 1;
	w->eng_state = ps;
	return 0;
}

static void posix_kick(sr_wal *w)
{
	__atomic_add_fetch(&w->kicks, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&w->mu);
	if (runnable(w))
		pthread_cond_signal(&w->cv_work);
	pthread_mutex_unlock(&w->mu);
}

static void posix_wait(sr_wal *w)
{
	pthread_mutex_lock(&w->mu);
	if (runnable(w) || (w->exec && w->exec->state == ITEM_BUSY)) {
		struct wal_item *it = w->exec;

		pthread_cond_signal(&w->cv_work);
		while (w->exec == it && it->state != ITEM_DONE)
			pthread_cond_wait(&w->cv_done, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
}

static void posix_poll(sr_wal *w)
{
	(void)w; /* the writer makes progress on its own */
}

static void posix_stop(sr_wal *w)
{
	struct posix_state *ps = w->eng_state;

	if (!ps)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	__atomic_store_n(&w->plugged, 0, __ATOMIC_RELEASE);
	__atomic_add_fetch(&w->kicks, 1, __ATOMIC_RELEASE); /* end a spin */
	if (w->tail && w->tail->state == ITEM_OPEN)
		w->tail->state = ITEM_READY;
	pthread_cond_signal(&w->cv_work);
	pthread_mutex_unlock(&w->mu);
	if (ps->running)
		pthread_join(ps->thread, NULL);
	sr_walc_free(w, ps);
	w->eng_state = NULL;
}

const struct wal_engine sr_walposix_engine = {
	.id = SR_WAL_POSIX,
	.start = posix_start,
	.kick = posix_kick,
	.wait = posix_wait,
	.poll = posix_poll,
	.stop = posix_stop,
};
