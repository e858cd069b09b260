/*
 * wal_int.h — the WAL's private structures, shared by the files of
 * backends/wal (never installed).
 *
 * Who touches what.  The host's thread (the "engine thread") owns the log
 * view (first, last, pos[]), the planner (which segment and offset the
 * next record goes to), the snapshot and the hard state.  The work queue
 * of items and the segment table are shared with the I/O engine and
 * guarded by `mu`; the writer thread of the posix engine holds `mu` only to
 * take an item, publish its progress and look up a file descriptor, never
 * across I/O.  The writer never allocates, frees or logs: allocation and
 * the log hook stay on the engine thread (the writer leaves a message in
 * fail_msg / warn_msg for the engine thread to log).
 *
 * The queue.  Items run strictly one after the other, in FIFO order:
 *
 *   BATCH   records serialized by append/truncate/compact; written with
 *           one write and made durable with one fdatasync (creating its
 *           segment first when it is the first batch of one);
 *   DELETE  unlink the segments up to a sequence number, oldest first,
 *           each followed by an fsync of the directory.
 *
 * An item's state only moves forward: OPEN (the tail batch, still taking
 * records) -> READY (closed) -> BUSY (the engine took it) -> WRITTEN (its
 * bytes are in the file, readable with pread) -> DONE (durable, or
 * failed with status).  The engine thread reaps DONE items from the head,
 * frees their buffers and delivers their tokens in order.
 */
#ifndef WAL_INT_H
#define WAL_INT_H

#include <pthread.h>
#include <stdarg.h>

#include <seshat/wal.h>

#include "internal/alloc.h"
#include "wal_format.h"

enum { ITEM_BATCH = 1, ITEM_DELETE = 2 };
enum {
	ITEM_OPEN = 0,
	ITEM_READY = 1,
	ITEM_BUSY = 2,
	ITEM_WRITTEN = 3,
	ITEM_DONE = 4
};

#define WAL_URING_MAX_OPS 6

/* An append to complete: the group it belongs to and the engine's token. */
struct wal_tok {
	struct sr_wal_group *g;
	uint64_t token;
};

struct wal_item {
	struct wal_item *next;
	int kind;
	int state;	/* ITEM_*, under mu */
	int status;	/* 0 or SR_E*, set with state DONE */
	uint64_t batch; /* batch number (BATCH) */
	uint64_t seg;	/* target segment (BATCH); delete up to (DELETE) */
	uint64_t off;	/* segment offset of buf[0] */
	int new_seg;	/* create seg first, with hdr and seg_size */
	unsigned char hdr[WAL_SEG_HDR];
	uint64_t seg_size;
	unsigned char *buf; /* serialized records */
	size_t len, cap;
	struct wal_tok *tokens; /* appends completed by this item */
	size_t n_tokens, cap_tokens;
	/*
	 * Sealing and writing progress: buf[0, sealed) has its CRCs,
	 * buf[0, written) is in the file.  The posix writer may seal and
	 * write the records of the OPEN batch while the host is still
	 * appending to it (under `pinned`, during which the host never
	 * moves buf: it starts a new batch instead of growing this one).
	 */
	size_t sealed, written;
	int pinned;
	int pre_err; /* a write before the batch was taken failed */
	/* io_uring bookkeeping (wal_uring.c) */
	int n_ops, n_cqes;
	uint8_t op_kind[WAL_URING_MAX_OPS];
	int op_res[WAL_URING_MAX_OPS];
	uint32_t op_want[WAL_URING_MAX_OPS];
};

enum { SEG_PLANNED = 0, SEG_LIVE = 1, SEG_DELETED = 2 };

struct wal_seg {
	uint64_t seq;
	int fd;		    /* -1 until created; closed by the engine thread */
	int state;	    /* SEG_* */
	uint64_t size;	    /* preallocated size */
	uint64_t written;   /* bytes that pread can see */
	sr_index max_index; /* highest group-0 entry index ever written in it */
	uint32_t version;   /* its format version (older ones are read) */
};

struct wal_engine;

struct wal_snap {
	int fd; /* -1: none */
	sr_index index;
	sr_term term;
	/* the membership at index: n members, allocated to size (a whole
	 * sr_membership is ~10 KiB, and a process may hold thousands of
	 * groups) */
	sr_member *members;
	uint32_t n_members;
	uint32_t hdr_size;
	uint64_t size; /* data bytes */
	/* being written only (wal_snap.c): the CRC32C of the size bytes so
	 * far, kept while every chunk starts where the previous one ended;
	 * reread: a chunk rewrote earlier bytes, so finish reads the data
	 * back to compute it */
	uint32_t crc;
	uint32_t reread;
};

/*
 * One Raft group's log, hard state and snapshot (wal_group.c).  Group 0
 * is embedded at the start of sr_wal, so a sr_wal pointer is also a
 * pointer to its group 0 and one storage vtable serves both APIs.  The
 * other groups live in a hash table by id, allocated when opened or met
 * in the log at recovery, freed by drop or by sr_wal_close.
 */
struct sr_wal_group {
	sr_wal *wal;
	uint32_t id;
	int is_open;  /* a handle is out (sr_wal_group_open) */
	int has_meta; /* its meta file exists: the group exists on disk */
	sr_wal_done_fn done;
	void *done_ctx;

	/* hard state: in the meta file (group 0, and groups written before
	 * format version 3), or in the log's HARDSTATE records (the others),
	 * the latest of which is in segment hs_seg (0: none) */
	sr_term term;
	sr_id vote;
	uint64_t hs_seg;

	/* snapshots */
	struct wal_snap snap;  /* current */
	struct wal_snap *part; /* being written, NULL if none */

	/* the log view: pos[i] locates entry first + i */
	sr_index first, last;
	uint64_t *pos; /* (segment seq << 32) | offset */
	size_t pos_off, pos_n, pos_cap;

	/* protocol-aware repair (wal_lost.c): entries lost to corruption,
	 * reported by load() while the log ends before lost_last */
	sr_index lost_first, lost_last;
	sr_term lost_term; /* bound of their terms (0: a version 1 file) */

	/* recovery only (wal_recover.c) */
	int seen;	     /* a record of the group was replayed */
	int reset_last;	     /* and the last one was a RESET */
	int drop_last;	     /* or a DROP */
	int inferred;	     /* its start was taken from its first record */
	sr_index known;	     /* pos[] holds known..last */
	sr_index survey_max; /* repair: highest index past the cut */
};

struct sr_wal {
	struct sr_wal_group g0; /* first: (sr_wal *) is (sr_wal_group *) */

	/* options */
	char *dir;
	uint64_t seg_size;
	uint64_t max_pending;
	int backpressure;
	int repair;
	int zero_ahead;
	int direct_io;
	sr_log_fn log;
	void *log_ctx;
	int log_level;
	sr_alloc alloc; /* the host's hooks, copied; all zero: libc */

	int dirfd, lockfd, evfd;
	const struct wal_engine *eng;
	void *eng_state;

	/* The next segment, zero-filled ahead by its own thread (wal_io.c,
	 * "spare.tmp"; posix engine).  spare_state is atomic: SPARE_NONE,
	 * SPARE_MAKING (the thread owns spare_fd) or SPARE_READY (the
	 * writer may take it); spare_stop asks the thread to give up. */
	pthread_t spare_thread;
	int spare_joinable;
	int spare_state, spare_stop;
	int spare_fd;
	uint64_t spare_size;
	uint64_t st_zeroed; /* atomic: segments made from a spare */

	/* The thread closing a deleted snapshot's descriptor (wal_io.c,
	 * wal_io_close_later; host thread only). */
	pthread_t closer;
	int closer_joinable;

	/* groups other than 0 (wal_group.c): open addressing by id */
	struct sr_wal_group **gtab;
	size_t gtab_cap, n_groups;

	/* the planner (engine thread) */
	uint64_t plan_seg, plan_off, plan_size;
	uint64_t next_batch;
	uint64_t del_seq; /* segments <= del_seq are deleted or queued */

	/* shared with the I/O engine, under mu */
	pthread_mutex_t mu;
	int sleeping;		/* the posix writer sleeps on wake_seq */
	unsigned wake_seq;	/* atomic: the futex word it sleeps on */
	int inline_busy;	/* the host runs exec itself (write_now) */
	pthread_cond_t cv_done; /* an item became DONE */
	struct wal_item *head, *tail;
	struct wal_item *exec; /* next item to run, NULL if none */
	struct wal_seg *segs;  /* ordered by seq, consecutive */
	size_t n_segs, cap_segs;
	unsigned kicks; /* atomic: bumped by every kick (the writer spins on it) */
	int plugged;	/* inside sr_wal_process: hold OPEN batches (also
		       * read without mu by the spinning writer: atomics) */
	int stopping;  /* sr_wal_close */
	int failed;    /* the error that stopped the WAL */
	int dir_dirty; /* a group's meta file was created: the directory
			* is fsynced before the next batch is written */
	char fail_msg[320];
	char warn_msg[320];
	uint64_t st_batches, st_bytes, st_created, st_deleted;
	uint64_t st_direct; /* of st_batches: written with direct I/O */

	/* engine thread */
	struct wal_item *done_head, *done_tail; /* reaped, not delivered */
	struct wal_item *spare;			/* one recycled item */
	uint64_t pending_bytes;
	int fail_logged;
	int in_process; /* delivering completions: sr_wal_process kicks */
	int held;	/* atomic: sr_wal_hold: appends do not kick, and no
		 * engine starts the OPEN batch (the writer reads it) */
	int hs_defer; /* sr_wal_defer_hard_state(): no wait in set_hard_state */
	int hs_pending; /* a deferred HARDSTATE record is not known durable */
	uint64_t hs_batch; /* the batch holding the latest one */
	uint64_t st_appends, st_torn;
	uint64_t st_snaps, st_snaps_reread; /* snapshots made durable */

	/* read() scratch */
	unsigned char *rbuf; /* entry data handed out by read() */
	size_t rbuf_cap;
	unsigned char *win; /* a window of one segment file */
	size_t win_cap, win_len;
	uint64_t win_seg, win_off;
};

/* An I/O engine: the posix writer thread or io_uring. */
struct wal_engine {
	int id; /* SR_WAL_POSIX or SR_WAL_URING */
	int (*start)(sr_wal *w);
	/* Work was queued or unplugged (called without mu). */
	void (*kick)(sr_wal *w);
	/* Block until some item becomes DONE (or none is left to run). */
	void (*wait)(sr_wal *w);
	/* Non-blocking progress from sr_wal_process (io_uring reaps). */
	void (*poll)(sr_wal *w);
	/* Run the next batch on the host's thread if the engine is idle;
	 * 1 if it ran (finished, DONE), 0 if not (may be NULL). */
	int (*run_inline)(sr_wal *w);
	/* Run every queued item, then stop and release the engine. */
	void (*stop)(sr_wal *w);
};

/*
 * The files of the WAL, lowest first.  Each calls only into the files
 * listed before it (docs/design.md, "The WAL's files"); the engines are
 * reached from below only through struct wal_engine, which wal.c
 * installs.  wal_replay.c, between wal_group.c and wal_recover.c, has its
 * declarations in wal_replay.h.
 */

/* ---- memory: the host's hooks, copied into w->alloc ---- */

/* Through w->alloc: sr_wal_options admits all three hooks or none, and
 * with none the copy is zero, which means libc. */
static inline void *wal_mem_alloc(sr_wal *w, size_t n)
{
	return hook_malloc(&w->alloc, n);
}

static inline void *wal_mem_realloc(sr_wal *w, void *p, size_t n)
{
	return hook_realloc(&w->alloc, p, n);
}

static inline void wal_mem_free(sr_wal *w, void *p)
{
	hook_free(&w->alloc, p);
}

/* Where entry i of g (first <= i <= last) is: (segment << 32) | offset. */
static inline uint64_t wal_entry_pos(const struct sr_wal_group *g, sr_index i)
{
	return g->pos[g->pos_off + (size_t)(i - g->first)];
}

/* ---- wal_format.c: the encodings (wal_format.h) ---- */

/* ---- wal_queue.c: the queue, the segment table, failure ---- */
/* The segment with that seq, or NULL (call under mu). */
struct wal_seg *wal_queue_seg_find(sr_wal *w, uint64_t seq);
/* Add a PLANNED segment to the table (under mu). */
int wal_queue_seg_add(sr_wal *w, uint64_t seq, uint64_t size);
/* The oldest LIVE segment with seq <= upto, or 0 (takes mu). */
uint64_t wal_queue_seg_to_delete(sr_wal *w, uint64_t upto);
/* Segment seq was unlinked and the directory synced (takes mu). */
void wal_queue_seg_deleted(sr_wal *w, uint64_t seq);
/* buf[0, to) of batch it is in its file (under mu). */
void wal_queue_published(sr_wal *w, struct wal_item *it, size_t to);
/* Close the OPEN batch at the tail, if any: it takes no more records and
 * the engine may run it even while plugged (under mu). */
void wal_queue_close_tail(sr_wal *w);
/* A zeroed item (the spare's buffers reused), or NULL. */
struct wal_item *wal_queue_item_new(sr_wal *w);
/* Put a new item at the tail; the OPEN batch there closes (under mu). */
void wal_queue_item_link(sr_wal *w, struct wal_item *it);
/* Mark it DONE with status, advance exec, wake waiters (under mu). */
void wal_queue_item_finish(sr_wal *w, struct wal_item *it, int status);
/* The error that stopped the WAL, or 0 (takes mu). */
int wal_queue_failed(sr_wal *w);
/* Stop the WAL with rv unless it is stopped already (takes mu). */
void wal_queue_stop(sr_wal *w, int rv);
/* Signal the completion eventfd. */
void wal_queue_notify(sr_wal *w);
/* Move DONE items from the queue to the delivery list (under mu / taking
 * it; engine thread). */
void wal_queue_reap_locked(sr_wal *w);
void wal_queue_reap(sr_wal *w);
/* Call the done callbacks of every reaped item, in order, with no lock
 * held; the number of tokens delivered. */
int wal_queue_deliver(sr_wal *w);
/* Completions of g will not be delivered (g is being freed). */
void wal_queue_forget_group(sr_wal *w, struct sr_wal_group *g);
/* Close the OPEN batch and kick the engine, so it runs even while
 * plugged. */
void wal_queue_close_open(sr_wal *w);
/* Wait until batch number `batch` and everything before it is DONE;
 * returns w->failed. */
int wal_queue_wait_batch(sr_wal *w, uint64_t batch);
/* Wait until every queued item is DONE; returns w->failed. */
int wal_queue_drain(sr_wal *w);
/* Free every item and the segment table, closing the files. */
void wal_queue_free(sr_wal *w);

/* ---- wal_io.c: synchronous file operations, errors, the log hook ---- */
void wal_io_logf(sr_wal *w, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* SR_EIO or SR_ENOSPC for an errno value. */
int wal_io_error_code(int err);
/* " (group <id>)" in buf for the groups other than 0, "" for group 0
 * (log lines); returns buf. */
const char *wal_io_group_label(const struct sr_wal_group *g, char *buf,
			       size_t cap);
void wal_io_seg_name(char *buf, size_t cap, uint64_t seq);
/* "<index>.snap" for group 0, "g<id>-<index>.snap" for the others. */
void wal_io_snap_name(char *buf, size_t cap, uint32_t gid, sr_index index);
/* A group's small file: base ("meta", "lost", "snap.tmp") for group 0,
 * "g<8 hex digits>.<base>" for the others. */
void wal_io_group_name(char *buf, size_t cap, uint32_t gid, const char *base);
/* pwrite/pread everything or fail with errno. */
int wal_io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
int wal_io_pread_all(int fd, void *buf, size_t len, uint64_t off);
/* Record a fatal message / warning for the engine thread (takes mu). */
void wal_io_fail(sr_wal *w, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void wal_io_warn(sr_wal *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Remove a half-made segment file after a failure: close fd, unlink
 * name, fsync the directory (best effort). */
void wal_io_seg_discard(sr_wal *w, int fd, const char *name);
/*
 * Create segment file for item it (O_EXCL, fallocate, header, fdatasync,
 * directory fsync).  Returns the fd or a negative SR_E* code with
 * w->fail_msg set (under mu).  Used from the writer thread.
 */
int wal_io_seg_create(sr_wal *w, const struct wal_item *it);
/* Start making the next segment's spare if none is made or making
 * (posix writer thread, after a segment was created). */
void wal_io_spare_start(sr_wal *w);
/* Stop the spare's thread and delete the spare (engine thread, after
 * the I/O engine stopped). */
void wal_io_spare_stop(sr_wal *w);
/* Close fd, the last descriptor of an unlinked file, on a thread of its
 * own (host thread); wal_io_closer_join() waits for it. */
void wal_io_close_later(sr_wal *w, int fd);
void wal_io_closer_join(sr_wal *w);
/* Run a DELETE item synchronously (writer thread).  Never fails hard. */
void wal_io_seg_delete(sr_wal *w, const struct wal_item *it);
/* fsync the directory if a group was created since the last time (the
 * engines, before writing a batch); 0 or the error (fail_msg set). */
int wal_io_dir_sync(sr_wal *w);
/* Create a new group's meta file, empty: its term and vote go to the
 * log; durable with the directory fsync before the next batch. */
int wal_io_meta_create(struct sr_wal_group *g);
/* Write a whole small file atomically: tmp, fsync, rename, dir fsync. */
int wal_io_write_atomic(sr_wal *w, const char *name, const void *buf,
			size_t len);
/* Read up to cap bytes of the directory's small file `name` (meta, lost)
 * into buf, *n the bytes read: 0, SR_ENOTFOUND (it does not exist and
 * missing_ok; not logged) or SR_EIO (logged). */
int wal_io_read_small(sr_wal *w, const char *name, void *buf, size_t cap,
		      int missing_ok, size_t *n);
/* Read group 0's meta file (or create it in an empty directory). */
int wal_io_meta_load(sr_wal *w, int dir_has_data);
/* Read a group's meta file (it exists); 0, SR_ECORRUPT or SR_EIO. */
int wal_io_meta_read(struct sr_wal_group *g);
/* Replace a group's meta file with (term, vote), durably. */
int wal_io_meta_write(struct sr_wal_group *g, sr_term term, sr_id vote);
int wal_io_lock(sr_wal *w);
/* Zero [from, to) of fd and fdatasync it. */
int wal_io_zero_range(int fd, uint64_t from, uint64_t to);

/* ---- wal_plan.c: where each record goes (host thread) ---- */
/* Room in g->pos[] for n more entries. */
int wal_plan_pos_reserve(struct sr_wal_group *g, size_t n);
/* After a compaction: give back what a much smaller log no longer needs. */
void wal_plan_pos_shrink(struct sr_wal_group *g);
/* The OPEN batch with room for `bytes` more (under mu). */
int wal_plan_open_with_room(sr_wal *w, size_t bytes, struct wal_item **out);
/* Serialize one record into the stream (under mu); *pos_out its place. */
int wal_plan_put_record(sr_wal *w, struct wal_rec *r, uint64_t *pos_out);
/* Room for one more token in it (under mu). */
int wal_plan_token_reserve(sr_wal *w, struct wal_item *it);
/* Append a TRUNCATE, COMPACT, RESET or DROP record of group g to the
 * stream (takes mu). */
int wal_plan_put_marker(struct sr_wal_group *g, uint32_t kind, sr_index index);
/* A HARDSTATE record of g with its current term and vote (under mu). */
int wal_plan_put_hard_state(struct sr_wal_group *g);
/* Queue a DELETE of the segments no entry >= first needs (takes mu). */
int wal_plan_schedule_delete(sr_wal *w);

/* ---- wal_read.c: reading entries back ---- */
/* The term of entry i (first <= i <= last), read and checked. */
int wal_read_term(struct sr_wal_group *g, sr_index i, sr_term *term);
/* The storage vtable's read() (ctx: a struct sr_wal_group *). */
int wal_read_entries(void *ctx, sr_index lo, size_t max_n, size_t max_bytes,
		     sr_entry *out, size_t *n_out);

/* ---- wal_lost.c: protocol-aware repair's lost file ---- */
/* SR_WAL_REPAIR_PEERS: durably raise the group's lost file to `last`
 * (before anything that held those entries is cut or deleted). */
int wal_lost_note(struct sr_wal_group *g, sr_index last);
/* Read the group's lost file, if any (open). */
int wal_lost_load(struct sr_wal_group *g);
/* After the replay: report the lost range, or forget a repaired one. */
int wal_lost_settle(struct sr_wal_group *g);

/* ---- wal_snap.c: snapshot files ---- */
/* Pick the newest valid snapshot of idx[0..n) (sorted), drop the rest. */
int wal_snap_load(struct sr_wal_group *g, const uint64_t *idx, size_t n);
/* Close the snapshot files of a group; discard a partial snapshot. */
void wal_snap_close(struct sr_wal_group *g);
/* Discard a partial snapshot (snap.tmp) of a group, if any. */
void wal_snap_discard(struct sr_wal_group *g);
/* Delete every snapshot file of a group (drop); fsyncs the directory. */
int wal_snap_delete_all(struct sr_wal_group *g);
int wal_snap_begin(void *ctx, sr_index index, sr_term term,
		   const sr_membership *conf);
int wal_snap_write(void *ctx, uint64_t offset, const void *data, size_t len);
int wal_snap_finish(void *ctx, int commit);
int wal_snap_read(void *ctx, uint64_t offset, void *buf, size_t len,
		  size_t *n_out);

/* ---- wal_log.c: the storage vtable ---- */
/* ctx: a struct sr_wal_group * (group 0 is the sr_wal itself). */
extern const sr_storage_ops wal_log_ops;

/* ---- wal_group.c: the group table (and the group API) ---- */
/* The group with that id (0: the WAL's own), or NULL. */
struct sr_wal_group *wal_group_find(sr_wal *w, uint32_t id);
/* A new, empty group in the table (id >= 1, not present). */
struct sr_wal_group *wal_group_add(sr_wal *w, uint32_t id);
/* Remove a group from the table and free it (id >= 1). */
void wal_group_remove(sr_wal *w, struct sr_wal_group *g);
/* Free every group other than 0, and what group 0 holds.  (To loop over
 * the groups other than 0: for (i = 0; i < w->gtab_cap; i++)
 * if ((g = w->gtab[i])) ...; the loop body must not add or remove.) */
void wal_group_free_all(sr_wal *w);
/* Init the fields of a group (id, wal, an empty log). */
void wal_group_init(sr_wal *w, struct sr_wal_group *g, uint32_t id);
/* Free what a group holds (not the struct): pos, snapshot, part. */
void wal_group_release(struct sr_wal_group *g);

/* ---- wal_recover.c: opening ---- */
/* List the directory, load meta and snapshot, replay the segments. */
int wal_recover(sr_wal *w);

/* ---- wal_direct.c: a batch written with direct I/O (posix engine) ---- */
struct wal_direct {
	int on;		     /* direct I/O in use (off for good on EINVAL) */
	int fd;		     /* O_DIRECT | O_DSYNC descriptor of seg, or -1 */
	uint64_t seg;	     /* the segment fd is open on */
	uint64_t tail_end;   /* where the last direct write of seg ended */
	unsigned char *tail; /* the bytes of tail_end's block before it */
	unsigned char *buf;  /* the aligned staging buffer */
	void *mem;	     /* the allocation behind tail and buf */
};
/* Host thread: probe the directory, allocate (SR_ENOMEM); d->on tells
 * whether direct I/O will be used. */
int wal_direct_init(sr_wal *w, struct wal_direct *d);
void wal_direct_free(sr_wal *w, struct wal_direct *d);
/* Direct I/O is in use (the writer's pre-work is off then). */
int wal_direct_active(const struct wal_direct *d);
/* Write batch it durably: 0 done, 1 not done (write it the ordinary
 * way), or the SR_E* code that stops the WAL (fail_msg set). */
int wal_direct_write(sr_wal *w, struct wal_direct *d, struct wal_item *it,
		     int fd, uint64_t seg_size);
/* Before deleting segments up to upto; after a batch written the
 * ordinary way. */
void wal_direct_forget(struct wal_direct *d, uint64_t upto);
void wal_direct_wrote_buffered(struct wal_direct *d);

/* ---- wal_posix.c, wal_uring.c: the I/O engines ---- */
extern const struct wal_engine wal_posix_engine;
#ifdef SR_HAVE_URING
extern const struct wal_engine wal_uring_engine;
/* 1 if io_uring can be set up on this machine. */
int wal_uring_usable(void);
#endif

#endif
