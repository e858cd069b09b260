/*
 * wal_uring.c — the io_uring I/O engine (built with SR_HAVE_URING).
 *
 * No thread: the host's thread submits each queue item as one linked
 * chain of operations and reaps the completions in sr_wal_process(), the
 * ring's completions signalling the WAL's eventfd (registered with the
 * ring).  At most one chain is in flight, which keeps the rule recovery
 * depends on: a batch is written only after the previous one is durable.
 *
 *   BATCH that starts a segment (the file is created with openat first):
 *     fallocate -> write header -> fdatasync -> fsync dir -> write -> fdatasync
 *   other BATCH:   write -> fdatasync
 *   DELETE, per segment, oldest first:   unlinkat -> fsync dir
 *
 * Completions.  A chain is finished when the completion of every one of
 * its operations has arrived, in whatever order they arrive (each records
 * its result in the item by its index, carried in user_data with a chain
 * generation number): only then is the item judged.  A linked operation
 * after a failed one completes with -ECANCELED; the first real error is
 * the item's status.  A short write (which also cancels the rest of the
 * chain) is continued with a new chain for the remaining bytes.  Items
 * finish in queue order, so completions are delivered in append order.
 *
 * As with the posix engine, an error stops the WAL and fdatasync is never
 * retried.  Everything here runs on the host's thread, under the same
 * mutex discipline as the posix engine (uncontended here).
 */
#ifdef SR_HAVE_URING

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wal_int.h"

enum {
	UOP_FALLOCATE = 1,
	UOP_HEADER,
	UOP_SYNC,
	UOP_SYNC_DIR,
	UOP_WRITE,
	UOP_UNLINK
};

static const char *const uop_names[] = {
	"",	 "fallocate", "header write", "fdatasync", "directory fsync",
	"write", "unlink"
};

struct uring_state {
	struct io_uring ring;
	struct wal_item *cur;	   /* the item whose chain is in flight */
	uint64_t gen;		   /* chain generation, in user_data */
	struct io_uring_sqe *prev; /* the chain's last SQE so far */
	uint64_t del_seq;	   /* the segment a DELETE chain unlinks */
	char name[32];		   /* its file name (must outlive the chain) */
	int fd;			   /* the segment file of the chain */
};

int wal_uring_usable(void)
{
	struct io_uring r;

	if (io_uring_queue_init(2, &r, 0) != 0)
		return 0;
	io_uring_queue_exit(&r);
	return 1;
}

static struct io_uring_sqe *sqe_add(struct uring_state *u, struct wal_item *it,
				    int kind, uint32_t want)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	int k = it->n_ops++;

	/* the ring has room for the longest chain: never NULL here.  The
	 * previous operation (already prepared) links to this one. */
	if (u->prev)
		u->prev->flags |= IOSQE_IO_LINK;
	u->prev = sqe;
	it->op_kind[k] = (uint8_t)kind;
	it->op_want[k] = want;
	it->op_res[k] = 0;
	io_uring_sqe_set_data64(sqe, u->gen << 8 | (uint64_t)k);
	return sqe;
}

/* Write what is left of the batch, then fdatasync (appended to chain). */
static void chain_write(struct uring_state *u, struct wal_item *it)
{
	size_t left = it->len - it->written;
	struct io_uring_sqe *sqe = sqe_add(u, it, UOP_WRITE, (uint32_t)left);

	io_uring_prep_write(sqe, u->fd, it->buf + it->written, (unsigned)left,
			    it->off + it->written);
	sqe = sqe_add(u, it, UOP_SYNC, 0);
	io_uring_prep_fsync(sqe, u->fd, IORING_FSYNC_DATASYNC);
}

static int chain_new_segment(sr_wal *w, struct uring_state *u,
			     struct wal_item *it)
{
	struct io_uring_sqe *sqe;
	struct wal_seg *s;
	char name[32];
	int e;

	wal_io_seg_name(name, sizeof(name), it->seg);
	u->fd = openat(w->dirfd, name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
		       0600);
	if (u->fd < 0) {
		e = errno;
		wal_io_fail(w, 0, "wal: creating segment %s/%s failed: %s",
			    w->dir, name, strerror(e));
		return wal_io_error_code(e);
	}
	pthread_mutex_lock(&w->mu);
	s = wal_queue_seg_find(w, it->seg);
	s->fd = u->fd;
	pthread_mutex_unlock(&w->mu);
	sqe = sqe_add(u, it, UOP_FALLOCATE, 0);
	io_uring_prep_fallocate(sqe, u->fd, 0, 0, (off_t)it->seg_size);
	sqe = sqe_add(u, it, UOP_HEADER, WAL_SEG_HDR);
	io_uring_prep_write(sqe, u->fd, it->hdr, WAL_SEG_HDR, 0);
	sqe = sqe_add(u, it, UOP_SYNC, 0);
	io_uring_prep_fsync(sqe, u->fd, IORING_FSYNC_DATASYNC);
	sqe = sqe_add(u, it, UOP_SYNC_DIR, 0);
	io_uring_prep_fsync(sqe, w->dirfd, 0);
	return 0;
}

/* Submit a chain for it; 1 if submitted, 0 if done without I/O, or <0. */
static int chain_submit(sr_wal *w, struct uring_state *u, struct wal_item *it)
{
	struct io_uring_sqe *sqe;
	int rv;

	it->n_ops = it->n_cqes = 0;
	u->gen++;
	u->prev = NULL;
	if (it->kind == ITEM_DELETE) {
		u->del_seq = wal_queue_seg_to_delete(w, it->seg);
		if (!u->del_seq)
			return 0;
		wal_io_seg_name(u->name, sizeof(u->name), u->del_seq);
		sqe = sqe_add(u, it, UOP_UNLINK, 0);
		io_uring_prep_unlinkat(sqe, w->dirfd, u->name, 0);
		sqe = sqe_add(u, it, UOP_SYNC_DIR, 0);
		io_uring_prep_fsync(sqe, w->dirfd, 0);
	} else {
		if (it->len == it->written)
			return 0; /* tokens only */
		/* groups created before this batch exist on disk before it
		 * (a synchronous fsync: rare, once per burst of creations) */
		if (!it->written && (rv = wal_io_dir_sync(w)))
			return rv;
		/* the CRCs, computed here, on the host's thread */
		wal_fmt_seal(it->buf, it->sealed, it->len);
		it->sealed = it->len;
		if (it->new_seg && !it->written) {
			if ((rv = chain_new_segment(w, u, it)))
				return rv;
		} else if (!it->written) {
			struct wal_seg *s;

			pthread_mutex_lock(&w->mu);
			s = wal_queue_seg_find(w, it->seg);
			u->fd = s ? s->fd : -1;
			pthread_mutex_unlock(&w->mu);
		}
		chain_write(u, it);
	}
	rv = io_uring_submit(&u->ring);
	if (rv < 0) {
		wal_io_fail(w, 0, "wal: io_uring_submit failed: %s",
			    strerror(-rv));
		return SR_EIO;
	}
	return 1;
}

static void item_done(sr_wal *w, struct uring_state *u, struct wal_item *it,
		      int status)
{
	pthread_mutex_lock(&w->mu);
	wal_queue_item_finish(w, it, status);
	pthread_mutex_unlock(&w->mu);
	u->cur = NULL;
}

/* Start items until one is in flight (or nothing may start). */
static void uring_kick(sr_wal *w)
{
	struct uring_state *u = w->eng_state;

	while (u && !u->cur) {
		struct wal_item *it;
		int st, rv;

		pthread_mutex_lock(&w->mu);
		it = w->exec;
		if (!it || (it->state == ITEM_OPEN &&
			    (w->plugged ||
			     __atomic_load_n(&w->held, __ATOMIC_ACQUIRE)))) {
			pthread_mutex_unlock(&w->mu);
			return;
		}
		it->state = ITEM_BUSY;
		st = w->failed;
		pthread_mutex_unlock(&w->mu);
		u->cur = it;
		rv = st ? st : chain_submit(w, u, it);
		if (rv == 1)
			return;
		item_done(w, u, it, rv);
		wal_queue_notify(w); /* no completion will signal this one */
	}
}

/* A new segment's chain failed: remove the file (best effort). */
static void segment_discard(sr_wal *w, const struct wal_item *it)
{
	struct wal_seg *s;
	char name[32];
	int fd = -1;

	pthread_mutex_lock(&w->mu);
	s = wal_queue_seg_find(w, it->seg);
	if (s && s->state == SEG_PLANNED && s->fd >= 0) {
		fd = s->fd;
		s->fd = -1;
	}
	pthread_mutex_unlock(&w->mu);
	if (fd >= 0) {
		wal_io_seg_name(name, sizeof(name), it->seg);
		wal_io_seg_discard(w, fd, name);
	}
}

/* Judge a finished chain: 0, an error, or 1 to continue with a new one. */
static int chain_result(sr_wal *w, struct uring_state *u, struct wal_item *it)
{
	char name[32];
	int cancelled = 0;

	for (int k = 0; k < it->n_ops; k++) {
		int res = it->op_res[k], kind = it->op_kind[k];

		if (res == -ECANCELED) {
			cancelled = 1;
			continue;
		}
		if (kind == UOP_UNLINK && res == -ENOENT)
			continue; /* already gone */
		if (res < 0) {
			int code = wal_io_error_code(-res);

			if (kind == UOP_UNLINK || it->kind == ITEM_DELETE) {
				wal_io_warn(w,
					    "wal: deleting %s/%s failed at "
					    "%s: %s (kept)",
					    w->dir, u->name, uop_names[kind],
					    strerror(-res));
				return 0;
			}
			wal_io_seg_name(name, sizeof(name), it->seg);
			wal_io_fail(w, code,
				    "wal: %s on %s/%s (batch at offset %llu) "
				    "failed: %s; the WAL is stopped and this "
				    "batch will never be reported durable",
				    uop_names[kind], w->dir, name,
				    (unsigned long long)it->off,
				    strerror(-res));
			if (it->new_seg)
				segment_discard(w, it);
			return code;
		}
		if (kind == UOP_HEADER && (uint32_t)res != it->op_want[k]) {
			if (it->new_seg)
				segment_discard(w, it);
			wal_io_fail(w, SR_EIO, "wal: short header write");
			return SR_EIO;
		}
	}
	if (it->kind == ITEM_DELETE) {
		wal_queue_seg_deleted(w, u->del_seq);
		return 1; /* the next segment, if any */
	}
	if (cancelled || it->written < it->len) {
		if (it->written > 0 && it->written < it->len)
			return 1; /* a short write: continue */
		wal_io_fail(w, SR_EIO, "wal: io_uring cancelled a write");
		return SR_EIO;
	}
	pthread_mutex_lock(&w->mu);
	if (it->new_seg) {
		wal_queue_seg_find(w, it->seg)->state = SEG_LIVE;
		w->st_created++;
	}
	w->st_batches++;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static void on_cqe(sr_wal *w, struct uring_state *u,
		   const struct io_uring_cqe *cqe)
{
	struct wal_item *it = u->cur;
	uint64_t data = io_uring_cqe_get_data64(cqe);
	int k = (int)(data & 0xff), rv;

	if (!it || data >> 8 != (u->gen & (~0ull >> 8)) || k >= it->n_ops)
		return; /* not ours (cannot happen) */
	it->op_res[k] = cqe->res;
	it->n_cqes++;
	if (it->op_kind[k] == UOP_WRITE && cqe->res > 0) {
		pthread_mutex_lock(&w->mu);
		wal_queue_published(w, it, it->written + (size_t)cqe->res);
		if (it->written == it->len)
			it->state = ITEM_WRITTEN;
		pthread_mutex_unlock(&w->mu);
	}
	if (it->n_cqes < it->n_ops)
		return;
	rv = chain_result(w, u, it);
	if (rv == 1) {
		rv = chain_submit(w, u, it);
		if (rv == 1)
			return;
	}
	item_done(w, u, it, rv);
}

static void uring_poll(sr_wal *w)
{
	struct uring_state *u = w->eng_state;
	struct io_uring_cqe *cqe;

	while (u && io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		on_cqe(w, u, cqe);
		io_uring_cqe_seen(&u->ring, cqe);
	}
}

static void uring_wait(sr_wal *w)
{
	struct uring_state *u = w->eng_state;
	struct io_uring_cqe *cqe;

	uring_kick(w);
	if (!u || !u->cur)
		return;
	if (io_uring_wait_cqe(&u->ring, &cqe) == 0)
		uring_poll(w);
}

static int uring_start(sr_wal *w)
{
	struct uring_state *u = wal_mem_alloc(w, sizeof(*u));
	int rv;

	if (!u)
		return SR_ENOMEM;
	memset(u, 0, sizeof(*u));
	rv = io_uring_queue_init(16, &u->ring, 0);
	if (rv) {
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: io_uring is not usable here: %s",
			    strerror(-rv));
		wal_mem_free(w, u);
		return SR_EINVAL;
	}
	rv = io_uring_register_eventfd(&u->ring, w->evfd);
	if (rv) {
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: io_uring_register_eventfd: %s",
			    strerror(-rv));
		io_uring_queue_exit(&u->ring);
		wal_mem_free(w, u);
		return SR_EIO;
	}
	w->eng_state = u;
	return 0;
}

static void uring_stop(sr_wal *w)
{
	struct uring_state *u = w->eng_state;

	if (!u)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	__atomic_store_n(&w->plugged, 0, __ATOMIC_RELEASE);
	wal_queue_close_tail(w);
	pthread_mutex_unlock(&w->mu);
	for (;;) {
		uring_kick(w);
		if (!u->cur)
			break;
		uring_wait(w);
	}
	io_uring_queue_exit(&u->ring);
	wal_mem_free(w, u);
	w->eng_state = NULL;
}

const struct wal_engine wal_uring_engine = {
	.id = SR_WAL_URING,
	.start = uring_start,
	.kick = uring_kick,
	.wait = uring_wait,
	.poll = uring_poll,
	.stop = uring_stop,
};

#endif /* SR_HAVE_URING */
