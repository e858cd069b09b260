/*
 * wal.c — the WAL's public face (seshat/wal.h): its life cycle and its
 * completion path.  The top of the WAL's layers (docs/design.md, "The
 * WAL's files"): it calls into every other file and none calls into it.
 *
 * Opening, in order: validate the options, create the directory if it is
 * absent, take the LOCK (flock: a second opener gets SR_ELOCKED), read
 * or create the meta file, load the newest snapshot (wal_snap.c), replay
 * and check every segment (wal_recover.c), then start the I/O engine
 * (wal_posix.c or wal_uring.c).  Any failure unwinds what was done.
 *
 * The completion path.  The engine marks items DONE and signals the
 * eventfd; sr_wal_process() on the host's thread reaps DONE items from the
 * head of the queue (freeing their buffers) into a delivery list, then
 * calls the done callback for every token of every reaped item, in queue
 * order, with no lock held (wal_queue.c does both): the callback may
 * append (the engine does) and the new records go to a new batch.  While sr_wal_process() runs the
 * queue is "plugged": the engine does not start the OPEN batch, so the
 * appends made by the callbacks of one round join one batch and one
 * fdatasync (group commit); unplugging at the end kicks the engine.
 *
 * Failure.  The first I/O error is kept in w->failed: the engines finish
 * every later item with it without I/O, and the storage ops return it.
 * The engine's description of it (fail_msg) is logged once, here, on the
 * host's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal_int.h"

/* ------------------------------------------------------------------ */
/* The completion path (host thread)                                  */
/* ------------------------------------------------------------------ */

/* Log what the engine left for the host's thread. */
static void log_engine_messages(sr_wal *w)
{
	char fail[sizeof(w->fail_msg)], warn[sizeof(w->warn_msg)];
	int failed;

	pthread_mutex_lock(&w->mu);
	failed = w->failed;
	memcpy(fail, w->fail_msg, sizeof(fail));
	memcpy(warn, w->warn_msg, sizeof(warn));
	w->warn_msg[0] = 0;
	pthread_mutex_unlock(&w->mu);
	if (warn[0])
		wal_io_logf(w, SR_LOG_WARN, "%s", warn);
	if (failed && !w->fail_logged) {
		w->fail_logged = 1;
		wal_io_logf(w, SR_LOG_ERROR, "%s (%s)",
			    fail[0] ? fail : "wal: stopped by an I/O error",
			    sr_strerror(failed));
	}
}

/* sr_wal_process(), after the eventfd is read (or known unsignalled). */
static int process(sr_wal *w)
{
	int n, msgs;

	w->eng->poll(w);
	/* One hold of mu to plug and reap: the writer has just finished a
	 * batch and wants mu too, and every extra round trip here is a
	 * chance to make one of the two threads sleep on it. */
	pthread_mutex_lock(&w->mu);
	__atomic_store_n(&w->plugged, 1, __ATOMIC_RELEASE);
	wal_queue_reap_locked(w);
	msgs = w->warn_msg[0] || (w->failed && !w->fail_logged);
	pthread_mutex_unlock(&w->mu);
	if (msgs)
		log_engine_messages(w);
	w->in_process = 1;
	n = wal_queue_deliver(w);
	w->in_process = 0;
	pthread_mutex_lock(&w->mu);
	__atomic_store_n(&w->plugged, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&w->mu);
	w->eng->kick(w);
	return n;
}

int sr_wal_process(sr_wal *w)
{
	uint64_t v;

	(void)!read(w->evfd, &v, sizeof(v));
	return process(w);
}

/*
 * `held` is read by the posix writer too (under mu, runnable()): a writer
 * still awake after the previous batch must not take the held appends as
 * a batch of their own, or the batch the host meant to write inline
 * would be split in two.  The store is ordered before the appends, which
 * take mu.
 */
void sr_wal_hold(sr_wal *w)
{
	__atomic_store_n(&w->held, 1, __ATOMIC_RELEASE);
}

void sr_wal_release(sr_wal *w)
{
	__atomic_store_n(&w->held, 0, __ATOMIC_RELEASE);
	w->eng->kick(w);
}

int sr_wal_write_now(sr_wal *w)
{
	__atomic_store_n(&w->held, 0, __ATOMIC_RELEASE);
	if (!w->eng->run_inline || !w->eng->run_inline(w)) {
		w->eng->kick(w);
		return 0;
	}
	/* the item ran here: nothing signalled the eventfd for it */
	return process(w);
}

int sr_wal_sync(sr_wal *w)
{
	int rv = wal_queue_drain(w);

	/* groups created since the last batch, when no batch followed */
	if (!rv && (rv = wal_io_dir_sync(w)))
		wal_queue_stop(w, rv);
	sr_wal_process(w);
	return rv;
}

int sr_wal_fd(const sr_wal *w)
{
	return w->evfd;
}

void sr_wal_set_done(sr_wal *w, sr_wal_done_fn done, void *ctx)
{
	w->g0.done = done;
	w->g0.done_ctx = ctx;
}

const char *sr_wal_engine_name(int engine)
{
	switch (engine) {
	case SR_WAL_POSIX:
		return "posix";
	case SR_WAL_URING:
		return "io_uring";
	case SR_WAL_AUTO:
		return "auto";
	default:
		return "unknown";
	}
}

void sr_wal_get_stats(const sr_wal *cw, sr_wal_stats *out)
{
	sr_wal *w = (sr_wal *)cw; /* the mutex is not part of the state */

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&w->mu);
	out->engine = w->eng ? w->eng->id : SR_WAL_POSIX;
	out->error = w->failed;
	out->batches = w->st_batches;
	out->direct_batches = w->st_direct;
	out->bytes_written = w->st_bytes;
	out->segments_created = w->st_created;
	out->segments_zeroed = __atomic_load_n(&w->st_zeroed, __ATOMIC_RELAXED);
	out->segments_deleted = w->st_deleted;
	for (size_t i = 0; i < w->n_segs; i++)
		out->segments += w->segs[i].state == SEG_LIVE;
	pthread_mutex_unlock(&w->mu);
	out->appends = w->st_appends;
	out->pending_bytes = w->pending_bytes;
	out->torn_bytes = w->st_torn;
	out->snapshots = w->st_snaps;
	out->snapshots_reread = w->st_snaps_reread;
	out->lost_first = w->g0.lost_first;
	out->lost_last = w->g0.lost_last;
	out->first_index = w->g0.first;
	out->last_index = w->g0.last;
}

/* ------------------------------------------------------------------ */
/* Open and close                                                     */
/* ------------------------------------------------------------------ */

void sr_wal_options_init(sr_wal_options *o, const char *dir)
{
	memset(o, 0, sizeof(*o));
	o->dir = dir;
	o->segment_size = 64ull << 20;
	o->max_pending_bytes = 64ull << 20;
	o->backpressure = SR_WAL_BLOCK;
	o->engine = SR_WAL_POSIX;
	o->repair = SR_WAL_REPAIR_PEERS;
	o->zero_ahead = 1;
	o->direct_io = 1;
	o->log_level = SR_LOG_INFO;
}

static int options_check(const sr_wal_options *o)
{
	if (!o->dir || !o->dir[0] || o->segment_size < (64u << 10) ||
	    o->segment_size > (1u << 30) || (o->segment_size & 4095) ||
	    o->max_pending_bytes == 0 ||
	    (o->backpressure != SR_WAL_BLOCK &&
	     o->backpressure != SR_WAL_EBUSY) ||
	    (o->repair != SR_WAL_REPAIR_NONE &&
	     o->repair != SR_WAL_REPAIR_TRUNCATE &&
	     o->repair != SR_WAL_REPAIR_PEERS) ||
	    (o->engine < SR_WAL_POSIX || o->engine > SR_WAL_AUTO))
		return SR_EINVAL;
	if (o->alloc &&
	    (!o->alloc->malloc || !o->alloc->realloc || !o->alloc->free))
		return SR_EINVAL;
	return 0;
}

static int engine_pick(sr_wal *w, int want)
{
#ifdef SR_HAVE_URING
	if (want == SR_WAL_URING ||
	    (want == SR_WAL_AUTO && wal_uring_usable())) {
		w->eng = &wal_uring_engine;
		return 0;
	}
#else
	if (want == SR_WAL_URING) {
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: the io_uring engine was not built in "
			    "(build with liburing, or URING=1)");
		return SR_EINVAL;
	}
#endif
	w->eng = &wal_posix_engine;
	return 0;
}

static int dir_open(sr_wal *w)
{
	if (mkdir(w->dir, 0700) != 0 && errno != EEXIST) {
		wal_io_logf(w, SR_LOG_ERROR, "wal: creating %s: %s", w->dir,
			    strerror(errno));
		return wal_io_error_code(errno);
	}
	w->dirfd = open(w->dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (w->dirfd < 0) {
		wal_io_logf(w, SR_LOG_ERROR, "wal: opening %s: %s", w->dir,
			    strerror(errno));
		return errno == ENOENT || errno == ENOTDIR ? SR_EINVAL : SR_EIO;
	}
	return 0;
}

static void wal_free(sr_wal *w)
{
	wal_io_spare_stop(w);
	wal_io_closer_join(w);
	wal_queue_free(w);
	wal_group_free_all(w);
	if (w->evfd >= 0)
		close(w->evfd);
	if (w->lockfd >= 0)
		close(w->lockfd); /* releases the flock */
	if (w->dirfd >= 0)
		close(w->dirfd);
	wal_mem_free(w, w->rbuf);
	wal_mem_free(w, w->win);
	wal_mem_free(w, w->dir);
	pthread_cond_destroy(&w->cv_done);
	pthread_mutex_destroy(&w->mu);
	wal_mem_free(w, w);
}

static sr_wal *wal_new(const sr_wal_options *o)
{
	sr_wal tmp, *w;
	size_t dlen = strlen(o->dir);

	memset(&tmp, 0, sizeof(tmp));
	if (o->alloc)
		tmp.alloc = *o->alloc;
	w = wal_mem_alloc(&tmp, sizeof(*w));
	if (!w)
		return NULL;
	*w = tmp;
	wal_group_init(w, &w->g0, 0);
	w->g0.has_meta = 1;
	w->g0.is_open = 1;
	w->dir = wal_mem_alloc(w, dlen + 1);
	if (!w->dir) {
		wal_mem_free(w, w);
		return NULL;
	}
	memcpy(w->dir, o->dir, dlen + 1);
	w->seg_size = o->segment_size;
	w->max_pending = o->max_pending_bytes;
	w->backpressure = o->backpressure;
	w->repair = o->repair;
	w->zero_ahead = o->zero_ahead;
	w->direct_io = o->direct_io;
	w->g0.done = o->done;
	w->g0.done_ctx = o->done_ctx;
	w->log = o->log;
	w->log_ctx = o->log_ctx;
	w->log_level = o->log_level;
	w->dirfd = w->lockfd = w->evfd = -1;
	w->spare_fd = -1;
	w->next_batch = 1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv_done, NULL);
	return w;
}

int sr_wal_open(const sr_wal_options *o, sr_wal **out)
{
	sr_wal *w;
	int rv;

	*out = NULL;
	if (!o || options_check(o))
		return SR_EINVAL;
	w = wal_new(o);
	if (!w)
		return SR_ENOMEM;
	if ((rv = engine_pick(w, o->engine)) || (rv = dir_open(w)) ||
	    (rv = wal_io_lock(w)))
		goto fail;
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->evfd < 0) {
		rv = SR_EIO;
		goto fail;
	}
	if ((rv = wal_recover(w)))
		goto fail;
	rv = w->eng->start(w);
	if (rv)
		goto fail;
	wal_io_logf(w, SR_LOG_INFO,
		    "wal: opened %s (%s): log %llu..%llu, snapshot %llu, "
		    "term %llu",
		    w->dir, sr_wal_engine_name(w->eng->id),
		    (unsigned long long)w->g0.first,
		    (unsigned long long)w->g0.last,
		    (unsigned long long)w->g0.snap.index,
		    (unsigned long long)w->g0.term);
	w->eng->kick(w); /* records queued by recovery, if any */
	*out = w;
	return 0;
fail:
	wal_free(w);
	return rv;
}

/*
 * A clean close ends the last segment with a new, empty one (a header,
 * synced with the directory), once every batch is durable.  Recovery
 * counts damage in a segment that is not the last as corruption, never
 * as the remains of a crash: so bit rot in what was the last batch at
 * close — synced, perhaps acknowledged — is reported (protocol-aware
 * repair, or SR_ECORRUPT) instead of being cut like a torn write.  The
 * next open continues in the empty segment, so a close without new
 * records since the last one adds no file.  After a crash the last batch
 * stays ambiguous, as it must: it may really be torn.
 */
static void close_last_segment(sr_wal *w)
{
	struct wal_item it;
	struct wal_seg_hdr h;
	int fd;

	if (w->failed || !w->n_segs || w->plan_off == WAL_SEG_HDR)
		return; /* nothing written since the last segment began */
	memset(&it, 0, sizeof(it));
	h.seq = w->plan_seg + 1;
	h.first_index = w->g0.first;
	h.start_index = w->g0.last + 1;
	h.first_batch = w->next_batch;
	wal_fmt_seg_hdr_encode(it.hdr, &h);
	it.seg = h.seq;
	it.seg_size = w->seg_size;
	fd = wal_io_seg_create(w, &it);
	if (fd < 0) {
		w->failed = fd; /* logged below; the data is intact */
		return;
	}
	close(fd);
}

void sr_wal_close(sr_wal *w)
{
	if (!w)
		return;
	w->eng->stop(w);
	if (!w->failed && wal_io_dir_sync(w)) /* groups created last */
		wal_queue_stop(w, SR_EIO);
	close_last_segment(w);
	wal_queue_reap(w);
	log_engine_messages(w);
	wal_free(w);
}
