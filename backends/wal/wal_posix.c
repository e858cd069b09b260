/*
 * wal_posix.c — the posix I/O engine: one writer thread.
 *
 * The writer runs the queue's items one at a time, in order:
 *
 *   BATCH:  fsync the directory if groups were created since the last
 *           batch, create the segment first if the batch starts one
 *           (wal_io.c), then either write it with one O_DIRECT | O_DSYNC
 *           pwrite (wal_direct.c) or pwrite the whole buffer, publish
 *           "written" (so read() may pread it) and fdatasync; finish the
 *           item;
 *   DELETE: unlink the segments, oldest first, fsyncing the directory
 *           after each.
 *
 * Group commit falls out of the loop: while one batch is being written
 * and synced, appends go to the next (OPEN) batch, which the writer takes
 * whole when it comes back.  It does not take an OPEN batch while the
 * host is inside sr_wal_process() ("plugged"): the appends made by the
 * completion callbacks of one round then share one write.
 *
 * Failure: a failed pwrite (direct or not) or fdatasync finishes the item
 * with SR_EIO or
 * SR_ENOSPC and stops the WAL; fdatasync is never retried (after a
 * failure the kernel may have dropped the dirty pages, so a second
 * fdatasync that succeeds proves nothing).  Every later item is finished
 * with the same error without touching the disk.
 *
 * Waiting for the host.  Right after a batch finishes, its completion is
 * on its way to the host, whose callbacks may append the next batch
 * within microseconds; likewise while the host is inside sr_wal_process()
 * (plugged).  So before going to sleep the writer may spin, without
 * the lock, until the host kicks or its spin budget runs out: that saves
 * a futex wake-up per batch when the next batch does come that soon.
 * Often it does not: in a replicated log the next append usually waits
 * for a network round trip and a follower's fdatasync, and a spin that
 * catches nothing burns a core for nothing — on a machine with as few
 * cores as busy threads (three members on two cores), it takes the CPU
 * from the very thread that would produce the next batch (measured with
 * bench/seshat_node.c: about a quarter of the leader's CPU at one
 * proposal in flight went to this spin).  So the budget adapts: a spin
 * that ends in work doubles it (up to WAL_SPIN_NS), one that times out
 * halves it, and below WAL_SPIN_MIN_NS it is off, probed again every
 * WAL_SPIN_PROBE batches.  With two online CPUs or fewer the writer
 * never spins.
 *
 * The writer holds `mu` only to take an item and to publish progress,
 * never across a system call that touches the disk; it never allocates,
 * frees or logs.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "wal_int.h"

#define WAL_SPIN_NS	100000 /* the longest spin */
#define WAL_SPIN_MIN_NS 5000   /* a shorter budget turns spinning off */
#define WAL_SPIN_PROBE	64     /* batches between two tries once off */

/* The writer's spin budget (see "Waiting for the host" above). */
struct spin {
	uint64_t deadline; /* spin until then (0: not spinning) */
	uint64_t budget;   /* ns; 0: off */
	uint64_t max;	   /* WAL_SPIN_NS, or 0 where cores are scarce */
	unsigned skipped;  /* batches since spinning went off */
};

struct posix_state {
	pthread_t thread;
	int running;
	struct wal_direct dio; /* direct I/O (wal_direct.c) */
};

static struct wal_direct *dio_of(sr_wal *w)
{
	return &((struct posix_state *)w->eng_state)->dio;
}

/* pwrite buf[from, to) of the batch; 0 or the error (fail_msg set). */
static int write_part(sr_wal *w, struct wal_item *it, int fd, size_t from,
		      size_t to)
{
	char name[32];
	int e, code;

	if (from >= to)
		return 0;
	if (wal_io_pwrite_all(fd, it->buf + from, to - from, it->off + from) ==
	    0)
		return 0;
	e = errno;
	code = wal_io_error_code(e);
	wal_io_seg_name(name, sizeof(name), it->seg);
	wal_io_fail(w, code,
		    "wal: write of %zu bytes to %s/%s at offset %llu "
		    "failed: %s; the WAL is stopped and the entries of this "
		    "batch will never be reported durable",
		    to - from, w->dir, name,
		    (unsigned long long)(it->off + from), strerror(e));
	return code;
}

/* Publish that buf[0, to) is sealed and in the file (under mu). */
static void published(sr_wal *w, struct wal_item *it, size_t to)
{
	wal_queue_published(w, it, to);
	it->sealed = to;
}

static int posix_run_batch(sr_wal *w, struct wal_item *it)
{
	struct wal_direct *dio = dio_of(w);
	struct wal_seg *s;
	char name[32];
	uint64_t seg_size;
	int fd, e, code;

	pthread_mutex_lock(&w->mu);
	s = wal_queue_seg_find(w, it->seg);
	fd = s ? s->fd : -1;
	seg_size = s ? s->size : 0;
	pthread_mutex_unlock(&w->mu);
	if (it->pre_err)
		return it->pre_err;
	/* groups created before this batch exist on disk before it */
	if ((code = wal_io_dir_sync(w)))
		return code;
	if (it->new_seg) {
		fd = wal_io_seg_create(w, it);
		if (fd < 0)
			return fd;
		pthread_mutex_lock(&w->mu);
		s = wal_queue_seg_find(w, it->seg);
		s->fd = fd;
		s->state = SEG_LIVE;
		w->st_created++;
		pthread_mutex_unlock(&w->mu);
		wal_io_spare_start(w); /* the one after it */
		seg_size = it->seg_size;
	}
	if (fd < 0) {
		wal_io_seg_name(name, sizeof(name), it->seg);
		wal_io_fail(w, SR_EIO, "wal: segment %s/%s is not open", w->dir,
			    name);
		return SR_EIO;
	}
	/* BUSY: the host no longer appends; finish sealing, write the rest */
	wal_fmt_seal(it->buf, it->sealed, it->len);
	code = wal_direct_write(w, dio, it, fd, seg_size);
	if (code <= 0) {
		pthread_mutex_lock(&w->mu);
		if (!code) {
			published(w, it, it->len);
			it->state = ITEM_WRITTEN;
			w->st_direct++;
		}
		pthread_mutex_unlock(&w->mu);
		return code; /* durable (O_DSYNC), or the WAL is stopped */
	}
	wal_direct_wrote_buffered(dio);
	if ((code = write_part(w, it, fd, it->written, it->len)))
		return code;
	pthread_mutex_lock(&w->mu);
	published(w, it, it->len);
	it->state = ITEM_WRITTEN;
	pthread_mutex_unlock(&w->mu);
	if (fdatasync(fd) != 0) {
		e = errno;
		code = wal_io_error_code(e);
		wal_io_seg_name(name, sizeof(name), it->seg);
		wal_io_fail(w, code,
			    "wal: fdatasync of %s/%s failed: %s; the WAL is "
			    "stopped (never retried: the batch at offset "
			    "%llu and everything after it will never be "
			    "reported durable)",
			    w->dir, name, strerror(e),
			    (unsigned long long)it->off);
		return code;
	}
	return 0; /* posix_main counts the batch when it finishes it */
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
	    wal_direct_active(dio_of(w)) || it->new_seg || w->failed ||
	    it->len <= it->written || w->dir_dirty ||
	    __atomic_load_n(&w->held, __ATOMIC_ACQUIRE))
		return 0;
	s = wal_queue_seg_find(w, it->seg);
	if (!s || s->fd < 0)
		return 0;
	fd = s->fd;
	to = it->len;
	it->pinned = 1;
	pthread_mutex_unlock(&w->mu);
	wal_fmt_seal(it->buf, it->sealed, to);
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
	return w->exec && !w->inline_busy &&
	       (w->exec->state != ITEM_OPEN ||
		(!w->plugged && !__atomic_load_n(&w->held, __ATOMIC_ACQUIRE)));
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

/*
 * Sleeping and waking the writer.  A futex word rather than a condition
 * variable: glibc's pthread_cond_wait takes the mutex back in its
 * "contended" state, so every wake-up of the writer cost a third futex
 * call (the unlock's wake of nobody) besides the wait and the wake.
 * The writer reads wake_seq and sets `sleeping` under mu, then waits for
 * wake_seq to move; a waker bumps it under mu, so a wake between the
 * writer's unlock and its wait makes the wait return at once.
 */
static void writer_sleep(sr_wal *w)
{
	unsigned seq = __atomic_load_n(&w->wake_seq, __ATOMIC_ACQUIRE);

	w->sleeping = 1;
	pthread_mutex_unlock(&w->mu);
	syscall(SYS_futex, &w->wake_seq, FUTEX_WAIT_PRIVATE, seq, NULL, NULL,
		0);
	pthread_mutex_lock(&w->mu);
	w->sleeping = 0;
}

/* Under mu: 1 if the writer sleeps and must be woken (writer_wake()). */
static int writer_must_wake(sr_wal *w)
{
	if (!w->sleeping)
		return 0;
	w->sleeping = 0; /* one waker is enough */
	__atomic_add_fetch(&w->wake_seq, 1, __ATOMIC_RELEASE);
	return 1;
}

static void writer_wake(sr_wal *w)
{
	syscall(SYS_futex, &w->wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
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

static void spin_init(struct spin *sp)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(sp, 0, sizeof(*sp));
	sp->max = cpus > 2 ? WAL_SPIN_NS : 0;
	sp->budget = sp->max;
}

/* A batch finished or pre-work was done: spin for the budget from now. */
static void spin_arm(struct spin *sp)
{
	if (!sp->max)
		return;
	if (!sp->budget && ++sp->skipped >= WAL_SPIN_PROBE) {
		sp->budget = WAL_SPIN_MIN_NS;
		sp->skipped = 0;
	}
	sp->deadline = sp->budget ? now_ns() + sp->budget : 0;
}

/* Work arrived while spinning: the spin paid off. */
static void spin_hit(struct spin *sp)
{
	if (!sp->deadline)
		return;
	sp->deadline = 0;
	sp->budget = sp->budget * 2 > sp->max ? sp->max : sp->budget * 2;
}

/* The spin timed out: spin less next time. */
static void spin_miss(struct spin *sp)
{
	sp->deadline = 0;
	sp->budget /= 2;
	if (sp->budget < WAL_SPIN_MIN_NS)
		sp->budget = 0;
}

/*
 * Nothing can start (under mu): do pre-work for the OPEN batch, or spin
 * a little while the next batch is probably on its way, or sleep until
 * kicked.
 */
static void posix_idle(sr_wal *w, struct spin *sp)
{
	if (posix_prework(w)) {
		spin_arm(sp);
		return;
	}
	if (sp->deadline) {
		if (now_ns() < sp->deadline) {
			spin_slice(w);
			return;
		}
		spin_miss(sp);
	}
	writer_sleep(w);
}

static void *posix_main(void *arg)
{
	sr_wal *w = arg;
	struct spin sp;

	spin_init(&sp);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct wal_item *it;
		int st;

		if (!runnable(w)) {
			if (w->stopping && !w->exec)
				break;
			posix_idle(w, &sp);
			continue;
		}
		spin_hit(&sp);
		it = w->exec;
		it->state = ITEM_BUSY;
		st = w->failed;
		pthread_mutex_unlock(&w->mu);
		if (!st && it->kind == ITEM_DELETE) {
			wal_direct_forget(dio_of(w), it->seg);
			wal_io_seg_delete(w, it);
		} else if (!st && it->len)
			st = posix_run_batch(w, it);
		pthread_mutex_lock(&w->mu);
		if (!st && it->kind == ITEM_BATCH && it->len)
			w->st_batches++;
		wal_queue_item_finish(w, it, st);
		pthread_mutex_unlock(&w->mu);
		wal_queue_notify(w);
		spin_arm(&sp);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int posix_start(sr_wal *w)
{
	struct posix_state *ps = wal_mem_alloc(w, sizeof(*ps));
	int e;

	if (!ps)
		return SR_ENOMEM;
	memset(ps, 0, sizeof(*ps));
	if ((e = wal_direct_init(w, &ps->dio))) {
		wal_mem_free(w, ps);
		return e;
	}
	wal_io_spare_start(w); /* for the first new segment; before the
				* writer, which owns the spare from now */
	w->eng_state = ps;     /* before the writer, which reads it */
	e = pthread_create(&ps->thread, NULL, posix_main, w);
	if (e) {
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: starting the writer thread: %s", strerror(e));
		w->eng_state = NULL;
		wal_direct_free(w, &ps->dio);
		wal_mem_free(w, ps);
		return SR_ENOMEM;
	}
	ps->running = 1;
	return 0;
}

/*
 * Wake the writer only if it sleeps and has something to start, and
 * only after releasing mu: a writer woken while the host still holds mu
 * runs straight into the mutex and sleeps again on it (with the old
 * condition variable signalled under mu: five futex calls and two more
 * context switches per append, seen with strace on the leader at one
 * client; now one).
 */
static void posix_kick(sr_wal *w)
{
	int wake;

	__atomic_add_fetch(&w->kicks, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&w->mu);
	wake = runnable(w) && writer_must_wake(w);
	pthread_mutex_unlock(&w->mu);
	if (wake)
		writer_wake(w);
}

static void posix_wait(sr_wal *w)
{
	pthread_mutex_lock(&w->mu);
	if (runnable(w) || (w->exec && w->exec->state == ITEM_BUSY)) {
		struct wal_item *it = w->exec;

		if (writer_must_wake(w))
			writer_wake(w);
		while (w->exec == it && it->state != ITEM_DONE)
			pthread_cond_wait(&w->cv_done, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
}

/*
 * sr_wal_write_now(): run the batch at exec on the host's thread, if the
 * writer sleeps and that batch is all there is to do.  inline_busy keeps
 * a writer that wakes meanwhile (spuriously, or kicked by a backpressure
 * wait) off the item; the host appends nothing while it runs here.
 */
static int posix_run_inline(sr_wal *w)
{
	struct wal_item *it;
	int st;

	pthread_mutex_lock(&w->mu);
	it = w->exec;
	if (!it || !w->sleeping || w->failed || w->stopping ||
	    it->kind != ITEM_BATCH || it->next || it->new_seg ||
	    (it->state != ITEM_OPEN && it->state != ITEM_READY)) {
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	it->state = ITEM_BUSY;
	w->inline_busy = 1;
	pthread_mutex_unlock(&w->mu);
	st = it->len ? posix_run_batch(w, it) : 0;
	pthread_mutex_lock(&w->mu);
	if (!st && it->len)
		w->st_batches++;
	wal_queue_item_finish(w, it, st);
	w->inline_busy = 0;
	pthread_mutex_unlock(&w->mu);
	return 1;
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
	wal_queue_close_tail(w);
	if (writer_must_wake(w))
		writer_wake(w);
	pthread_mutex_unlock(&w->mu);
	if (ps->running)
		pthread_join(ps->thread, NULL);
	wal_direct_free(w, &ps->dio);
	wal_mem_free(w, ps);
	w->eng_state = NULL;
}

const struct wal_engine wal_posix_engine = {
	.id = SR_WAL_POSIX,
	.start = posix_start,
	.kick = posix_kick,
	.wait = posix_wait,
	.poll = posix_poll,
	.run_inline = posix_run_inline,
	.stop = posix_stop,
};
