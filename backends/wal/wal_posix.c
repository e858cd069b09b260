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

static int posix_run_batch(sr_wal *w, struct wal_item *it)
{
	struct wal_seg *s;
	char name[32];
	int fd, e, code;

	pthread_mutex_lock(&w->mu);
	s = sr_walc_seg_get(w, it->seg);
	fd = s ? s->fd : -1;
	pthread_mutex_unlock(&w->mu);
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
	if (sr_walio_pwrite_all(fd, it->buf, it->len, it->off) != 0) {
		e = errno;
		code = sr_walc_errno_code(e);
		sr_walio_fail(w, code,
			      "wal: write of %zu bytes to %s/%s at offset %llu "
			      "failed: %s; the WAL is stopped and the entries "
			      "of this batch will never be reported durable",
			      it->len, w->dir, name,
			      (unsigned long long)it->off, strerror(e));
		return code;
	}
	pthread_mutex_lock(&w->mu);
	s = sr_walc_seg_get(w, it->seg);
	if (s->written < it->off + it->len)
		s->written = it->off + it->len;
	it->state = ITEM_WRITTEN;
	w->st_bytes += it->len;
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

/*
 * Spin (mu released) for at most WAL_SPIN_NS while the host is likely to
 * hand over work in a moment: it is inside sr_wal_process() (plugged), or
 * a batch just finished and its completion is on the way to the host.
 * Any kick ends the spin early.
 */
static void spin_for_work(sr_wal *w)
{
	unsigned k0 = __atomic_load_n(&w->kicks, __ATOMIC_ACQUIRE);
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_unlock(&w->mu);
	for (unsigned i = 1; __atomic_load_n(&w->kicks, __ATOMIC_ACQUIRE) == k0;
	     i++) {
		cpu_relax();
		if (i % 128)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000000000L +
			    (t.tv_nsec - t0.tv_nsec) >
		    WAL_SPIN_NS)
			break;
	}
	pthread_mutex_lock(&w->mu);
}

static void *posix_main(void *arg)
{
	sr_wal *w = arg;

	int spun = 0; /* spun once already while waiting for this item */

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct wal_item *it;
		int st;

		if (!runnable(w)) {
			if (w->stopping && !w->exec)
				break;
			if (!spun) {
				spin_for_work(w);
				spun = 1;
				continue;
			}
			pthread_cond_wait(&w->cv_work, &w->mu);
			continue;
		}
		it = w->exec;
		it->state = ITEM_BUSY;
		spun = 0;
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
