/*
 * seshat/wal.h — the durable log store: a write-ahead log in a directory.
 *
 * sr_wal implements every slot of sr_storage_ops on files:
 *
 *   <dir>/LOCK                   held with flock() while a WAL is open
 *   <dir>/meta                   term and vote (replaced atomically)
 *   <dir>/<seq>.wal              log segments, preallocated, 16 hex digits
 *   <dir>/<index>.snap           the snapshot, 16 hex digits
 *   <dir>/g<id>.meta             group <id>'s term and vote (8 hex digits)
 *   <dir>/g<id>-<index>.snap     group <id>'s snapshot
 *
 * docs/storage-format.md gives the byte layout and the recovery rules.
 *
 * Appends are asynchronous and group-committed.  append() serializes the
 * entries into the WAL's own buffer and returns; each record's CRC32C is
 * computed by the I/O engine (the posix writer thread; with io_uring, on
 * submission) and the entries are made durable later, off the engine's
 * thread, together with every other append that arrived while the
 * previous write was in progress: one durable write per batch (one
 * O_DIRECT | O_DSYNC write, or a write and an fdatasync; direct_io
 * below).  When a batch is durable the WAL signals a file descriptor (an
 * eventfd); the host, on its own thread, sees it readable and calls
 * sr_wal_process(), which calls the done callback for every append of the
 * batch, in the order they were made.  A host wires the callback to the
 * engine:
 *
 *   static void on_done(void *ctx, uint64_t token, int status)
 *   {
 *           sr_node_storage_done(ctx, token, status);
 *   }
 *   ...
 *   sr_wal_options o;
 *   sr_wal_options_init(&o, "/var/lib/app/raft");
 *   rv = sr_wal_open(&o, &wal);          // recovers what is on disk
 *   cfg.storage = sr_wal_storage_ops();
 *   cfg.storage_ctx = wal;
 *   sr_node_create(&cfg, &node);
 *   sr_wal_set_done(wal, on_done, node);
 *   ... poll sr_wal_fd(wal) for reading; when readable: sr_wal_process(wal)
 *   ...
 *   sr_node_destroy(node);               // no completion is delivered after
 *   sr_wal_close(wal);                   //   this point (see sr_wal_close)
 *
 * Two I/O engines, chosen in the options:
 *
 *   SR_WAL_POSIX  a writer thread writes each batch with one O_DIRECT |
 *                 O_DSYNC pwrite() (direct_io, the default) or with
 *                 pwrite() + fdatasync().  Batches are
 *                 written and synced whether or not the host calls
 *                 sr_wal_process(); only the callbacks wait for it.
 *                 After each batch the thread may spin for at most
 *                 0.1 ms waiting for the next one before it sleeps,
 *                 trading that CPU time for a thread wake-up per batch;
 *                 the budget adapts (spins that catch nothing shrink it
 *                 to nothing), and with two online CPUs or fewer it
 *                 never spins.
 *   SR_WAL_URING  io_uring (when the library was built with liburing): no
 *                 thread; the engine thread submits each batch as one linked
 *                 chain (write, fdatasync) and sr_wal_process() reaps the
 *                 completions and submits the next batch, so the host must
 *                 call sr_wal_process() whenever sr_wal_fd() is readable.
 *
 * Either way at most one batch is being written at a time, and a batch is
 * written only after the previous one is durable: recovery relies on it to
 * tell a torn tail from corruption (docs/storage-format.md).
 *
 * Durability contract (what load() sees after a crash).  The durable state
 * is always the result of a prefix of the operations append(), truncate()
 * and compact() in the order they were called, and that prefix includes
 * every append whose completion reported status 0 (and so every operation
 * called before it).  set_hard_state() and snapshot_finish(commit=1) are
 * durable when they return; snapshot_finish() first waits until every
 * earlier append, truncate and compact is durable.  read() and load() see
 * every operation at once, durable or not.
 *
 * Errors.  A failed write, fdatasync or fallocate (EIO, ENOSPC, ...)
 * stops the WAL: the batch being written and every later one complete with
 * SR_EIO or SR_ENOSPC (fdatasync is never retried: after a failure the
 * WAL cannot know what reached the disk, so it never reports those entries
 * durable), and every later append(), truncate(), compact(),
 * set_hard_state() and snapshot call returns that error at once.  Nothing
 * on disk is left inconsistent: reopening the directory (after freeing
 * space) recovers every append that was reported durable.  The reason goes
 * to the log hook, naming the file and the offset.
 *
 * Threads and callbacks.  Every function here and every storage op runs on
 * the host's (engine's) thread; a WAL is used by one thread at a time.
 * The done callback and the log hook are called only on that thread, from
 * inside sr_wal_process(), sr_wal_sync() and the storage ops (the log
 * hook), never from the writer thread.  The done callback may call the
 * storage ops (the engine appends from its completion path) but must not
 * call sr_wal_process(), sr_wal_sync() or sr_wal_close().  The allocation
 * hooks are called only on the host's thread too: the writer thread never
 * allocates or frees.
 *
 * Memory.  Bytes appended but not yet durable are bounded by
 * max_pending_bytes; past it append() blocks until the disk catches up
 * (SR_WAL_BLOCK, the default) or returns SR_EBUSY (SR_WAL_EBUSY).  One
 * append larger than the limit is still accepted when nothing else is
 * pending.  The WAL also keeps 8 bytes per log entry (where each entry is)
 * and one open file descriptor per segment, and with direct_io (below)
 * a staging buffer of about 1 MiB and one more descriptor, on the
 * segment being written.
 */
#ifndef SESHAT_WAL_H
#define SESHAT_WAL_H

#include "raft.h"
#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sr_wal sr_wal;

/*
 * An append finished: status is 0 (the entries are durable) or a negative
 * SR_E* code (SR_EIO, SR_ENOSPC: they are not, and never will be).  Called
 * once per accepted append, in the order of the appends, on the host's
 * thread from inside sr_wal_process() or sr_wal_sync().
 */
typedef void (*sr_wal_done_fn)(void *ctx, uint64_t token, int status);

enum {
	SR_WAL_POSIX = 0, /* writer thread, direct I/O or pwrite + fdatasync
			   * (default) */
	SR_WAL_URING = 1, /* io_uring (SR_EINVAL if built without liburing) */
	SR_WAL_AUTO = 2	  /* io_uring if built in and usable, else posix */
};

enum {
	SR_WAL_BLOCK = 0, /* append() waits for room (default) */
	SR_WAL_EBUSY = 1  /* append() returns SR_EBUSY when full */
};

enum {
	SR_WAL_REPAIR_NONE = 0, /* corruption fails sr_wal_open */
	/*
	 * Truncate the log at the first bad record (or missing segment, or
	 * index gap) and open.  Every entry from that point on is dropped,
	 * which MAY LOSE ACKNOWLEDGED (committed) ENTRIES: use it only to
	 * bring back a node whose data the cluster can replace.  A corrupt
	 * snapshot file is deleted (falling back to an older valid one); a
	 * corrupt meta file is never repaired.  A lost range an earlier
	 * _PEERS open recorded is forgotten (with a warning): the operator's
	 * override when a group cannot elect while this node waits for
	 * entries no electable peer holds (docs/operations.md).  The term
	 * and vote of groups other than 0 are records in the log: cutting
	 * it MAY LOSE A VOTE too (which can elect two leaders).
	 */
	SR_WAL_REPAIR_TRUNCATE = 1,
	/*
	 * Protocol-aware repair (the default): cut the log at the first bad
	 * record as _TRUNCATE does (a damaged snapshot is deleted too), but
	 * remember the highest index the damaged part held, in the file
	 * <dir>/lost (written before anything is cut), and report the range
	 * through load() (sr_durable.lost_first/lost_last) at every open
	 * until the log reaches it again.  The engine then fetches the
	 * entries from the leader and neither votes nor campaigns meanwhile,
	 * so no acknowledged entry is lost (docs/storage-format.md).  Term
	 * and vote are kept; a corrupt meta file still fails the open, and
	 * so does damage to be cut from a log that holds groups other than
	 * 0 (their terms and votes are records in it, never repaired).
	 */
	SR_WAL_REPAIR_PEERS = 2
};

typedef struct sr_wal_options {
	const char *dir; /* the data directory; created (mode 0700) if absent */
	uint64_t segment_size;	    /* default 64 MiB; 64 KiB .. 1 GiB */
	uint64_t max_pending_bytes; /* default 64 MiB (see Memory above) */
	int backpressure;	    /* SR_WAL_BLOCK (default) or SR_WAL_EBUSY */
	int engine;		    /* SR_WAL_POSIX (default), _URING, _AUTO */
	int repair; /* SR_WAL_REPAIR_PEERS (default), _NONE, _TRUNCATE */
	/* 1 (default): with SR_WAL_POSIX, a thread writes the next segment's
	 * zeros while the current one fills ("spare.tmp", renamed into place
	 * when needed), so that a batch's fdatasync does not also write the
	 * inode (fallocate'd space is "unwritten": docs/storage-format.md);
	 * the directory then holds up to one more segment.  0: segments are
	 * only fallocate'd, as with SR_WAL_URING. */
	int zero_ahead;
	/* 1 (default): with SR_WAL_POSIX, a batch is written through an
	 * O_DIRECT | O_DSYNC descriptor, one write that returns once the
	 * bytes are durable, instead of pwrite + fdatasync (same bytes and
	 * format; docs/storage-format.md, "Writing a batch").  Used only if
	 * the filesystem takes O_DIRECT; batches over 1 MiB, and every
	 * batch after O_DIRECT is refused, go the ordinary way.  0: always
	 * pwrite + fdatasync. */
	int direct_io;
	sr_wal_done_fn done; /* may be NULL until sr_wal_set_done() */
	void *done_ctx;
	sr_log_fn log; /* the log hook; may be NULL */
	void *log_ctx;
	int log_level;	       /* default SR_LOG_INFO */
	const sr_alloc *alloc; /* NULL: libc; must outlive the WAL */
} sr_wal_options;

/* Fill *opts with the defaults for directory dir (borrowed, not copied). */
SR_API void sr_wal_options_init(sr_wal_options *opts, const char *dir);

/*
 * Open the WAL in opts->dir: take the directory lock, recover what is on
 * disk (every segment is read and every record checked; a torn tail is
 * cut off; docs/storage-format.md) and start the I/O engine.  opts and
 * the strings it points to are copied.
 * Errors: SR_EINVAL (bad options), SR_ELOCKED (another process or another
 * sr_wal holds the directory), SR_ECORRUPT (a damaged meta or lost
 * file, or, with SR_WAL_REPAIR_NONE, any damage that is not a torn tail;
 * the log hook names the file and offset), SR_EIO, SR_ENOSPC,
 * SR_ENOMEM.
 */
SR_API int sr_wal_open(const sr_wal_options *opts, sr_wal **out);

/*
 * Close: finish writing and syncing every accepted append (best effort:
 * an error is logged), release the lock, free everything.  Completions
 * not yet delivered are dropped without a callback: call sr_wal_sync()
 * first to have them delivered.  NULL is a no-op.  If anything was
 * written since the newest segment began (and no error stopped the WAL),
 * a clean close also begins the next segment, empty, and syncs it: then
 * the last batch is no longer the last thing on disk, and damage in it
 * found at the next open is reported as corruption (repaired from peers,
 * or SR_ECORRUPT), not cut like a torn write.  The next open continues in
 * that segment.
 */
SR_API void sr_wal_close(sr_wal *wal);

/* The storage vtable; pass the sr_wal as storage_ctx. */
SR_API const sr_storage_ops *sr_wal_storage_ops(void);

/* Rewire the done callback (a node is created after the WAL it uses). */
SR_API void sr_wal_set_done(sr_wal *wal, sr_wal_done_fn done, void *ctx);

/*
 * A file descriptor that is readable when sr_wal_process() has work to
 * do.  Owned by the WAL; poll it, never read or close it.
 */
SR_API int sr_wal_fd(const sr_wal *wal);

/*
 * Deliver the completions of finished appends (and, with io_uring, reap
 * finished I/O and start the next batch).  Never blocks.  Returns the
 * number of done callbacks made.  Call it when sr_wal_fd() is readable;
 * extra calls are harmless.
 */
SR_API int sr_wal_process(sr_wal *wal);

/*
 * Writing on the host's thread.  sr_wal_hold() makes the appends that
 * follow queue without waking the I/O engine; sr_wal_write_now() then
 * ends the hold and, if the engine is idle (the posix writer asleep,
 * nothing else queued, the batch not starting a new segment), writes and
 * fdatasyncs the batch on the calling thread and delivers its
 * completions as sr_wal_process() does, before returning; otherwise it
 * wakes the engine as an append would have.  The calling thread blocks
 * for one fdatasync.  Meant for a host with nothing better to do until
 * the appends are durable — a Raft follower, whose acknowledgement waits
 * for them anyway — which saves two thread hand-offs per batch: waking
 * the writer, and its completion waking the host.  Returns the number of
 * done callbacks made (0 when the engine was woken instead).  Every
 * sr_wal_hold() must be followed by sr_wal_write_now() on the same
 * thread before it sleeps: while held, nothing is written.
 */
SR_API void sr_wal_hold(sr_wal *wal);
SR_API int sr_wal_write_now(sr_wal *wal);
/* End a hold by waking the I/O engine, as an append would have. */
SR_API void sr_wal_release(sr_wal *wal);

/*
 * Wait until every append accepted so far, and every group created so
 * far, is durable (or failed), then
 * deliver the completions as sr_wal_process() does.  Returns 0 or the
 * error that stopped the WAL.  For tests, tools and shutdown.
 */
SR_API int sr_wal_sync(sr_wal *wal);

typedef struct sr_wal_stats {
	int engine;		 /* SR_WAL_POSIX or SR_WAL_URING */
	int error;		 /* the error that stopped the WAL, or 0 */
	uint64_t appends;	 /* accepted append() calls */
	uint64_t batches;	 /* batches written (one durable write each) */
	uint64_t direct_batches; /* of batches: one O_DIRECT | O_DSYNC write
				  * each, instead of pwrite + fdatasync */
	uint64_t bytes_written;	 /* record bytes written to segments */
	uint64_t segments;	 /* segment files now */
	uint64_t segments_created;
	uint64_t segments_deleted;
	uint64_t pending_bytes; /* appended, not yet durable */
	uint64_t torn_bytes;	/* torn tail cut off at open */
	sr_index lost_first;	/* corruption found at open: the entries */
	sr_index lost_last;	/*   load() reports lost (0, 0: none) */
	sr_index first_index;	/* the log as read() sees it */
	sr_index last_index;
	uint64_t segments_zeroed;  /* of segments_created: zero-filled ahead */
	uint64_t snapshots;	   /* made durable by snapshot_finish(1) */
	uint64_t snapshots_reread; /* of those: data read back for its CRC
				    * (a chunk rewrote earlier bytes) */
} sr_wal_stats;

/* Fill *out.  Never fails. */
SR_API void sr_wal_get_stats(const sr_wal *wal, sr_wal_stats *out);

/* Name of an engine ("posix", "io_uring"). */
SR_API const char *sr_wal_engine_name(int engine);

/*
 * Many Raft groups on one WAL.
 *
 * A WAL holds any number of groups, each a complete log store of its own
 * (log, term and vote, snapshot, repair state), sharing the segments,
 * the batches and the I/O engine: the records of every group are tagged
 * with its id, and one batch (one write, one fdatasync) carries the
 * appends of all groups that arrived together, so N groups cost one
 * fdatasync per batch, not N.  A group's append completes (its done
 * callback, from sr_wal_process() as above) only once the fdatasync
 * covering it has succeeded.  The durability contract above holds per
 * group, and across groups: after a crash the durable state is a prefix
 * of the operations of all groups in the order they were called.
 *
 * Group 0 is the WAL's own log (sr_wal_storage_ops() with the sr_wal as
 * ctx); the others are opened by id.  sr_wal_fd(), sr_wal_process(),
 * sr_wal_sync(), sr_wal_hold()/sr_wal_write_now() drive every group.
 *
 * Segments are shared, so a segment file is deleted only when no group
 * needs it any more: when every group's log starts after it (each
 * group's compact() moves its own start).  A group that never compacts
 * keeps every segment from its first live entry on: compact each group
 * after its snapshots as with a single log.  snapshot_finish() stays
 * synchronous per call (a file per group).
 *
 * Term and vote.  A group's set_hard_state() writes a record to the
 * shared log (group 0 keeps its meta file) and, by default, waits for
 * the batch that holds it: one fdatasync, shared with whatever else is
 * in the batch.  A host that drives many groups on one thread can do
 * better with sr_wal_defer_hard_state(): set_hard_state() then returns
 * at once, and the host calls sr_wal_sync_hard_state() once (one
 * fdatasync for the changes of every group) before ANY message that
 * depends on a change leaves the process: Raft's safety rests on it
 * (a vote sent and then forgotten in a crash can elect two leaders).
 * The log's records keep the usual prefix guarantee: an append made
 * after a set_hard_state() is never durable without it.  Creating a
 * group costs no fsync of its own: its meta file (empty) is made
 * durable by one directory fsync before the next batch, for every group
 * created since the last one.
 *
 * Typical host (the storage ctx of group g is the handle):
 *
 *   sr_wal_open(&o, &wal);                          // recovers every group
 *   sr_wal_groups(wal, ids, cap, &n);               // the groups on disk
 *   sr_wal_group_open(wal, id, &g);
 *   cfg.storage = sr_wal_group_storage_ops();
 *   cfg.storage_ctx = g;
 *   sr_node_create(&cfg, &node);
 *   sr_wal_group_set_done(g, on_done, node);
 *   ...
 *   sr_node_destroy(node);
 *   sr_wal_group_close(g);                          // or sr_wal_group_drop
 *
 * Memory per group: about 200 bytes, 8 bytes per entry it holds (the
 * index grows and shrinks with its log), its snapshot's membership.
 *
 * Every function here runs on the host's thread, as the rest of this
 * header; none may be called from a done callback.
 */
typedef struct sr_wal_group sr_wal_group;

/*
 * Open group id (>= 1) of an open WAL, creating it if it has no data
 * (its meta file, empty: term 0 and no vote; durable with the next batch
 * the WAL writes, before any record of the group; sr_wal_sync() to wait
 * for it).  The returned handle is
 * the ctx of sr_wal_group_storage_ops(): the engine's log storage for
 * that group.  It stays valid until sr_wal_group_close() or
 * sr_wal_close().
 * Errors: SR_EINVAL (id 0, NULL arguments), SR_ESTATE (the group is
 * already open), SR_ENOMEM, and the error that stopped the WAL, or
 * SR_EIO/SR_ENOSPC writing the meta file (which stops the WAL).
 */
SR_API int sr_wal_group_open(sr_wal *wal, uint32_t id, sr_wal_group **out);

/* The storage vtable of a group (the same one sr_wal_storage_ops()
 * returns: the sr_wal is the handle of its group 0). */
SR_API const sr_storage_ops *sr_wal_group_storage_ops(void);

/*
 * Completions of this group's appends are delivered to done (same
 * meaning as sr_wal_set_done), from sr_wal_process() of the owning WAL.
 */
SR_API void sr_wal_group_set_done(sr_wal_group *g, sr_wal_done_fn done,
				  void *ctx);

/*
 * Detach the handle: completions of the group still pending are dropped
 * without a callback, a snapshot being written is discarded.  The data is
 * kept (on disk, and its index in memory, so reopening is immediate).
 * NULL is a no-op.
 */
SR_API void sr_wal_group_close(sr_wal_group *g);

/* The id of a group. */
SR_API uint32_t sr_wal_group_id(const sr_wal_group *g);

/*
 * Delete group id's data durably: its log (a RESET record makes recovery
 * forget its records; the segments go once no other group needs them),
 * its term and vote, its snapshot.  The group must be closed.  Blocks
 * until the WAL has written everything queued so far (one fdatasync).
 * A crash in the middle is finished at the next open.  Errors: SR_EINVAL
 * (id 0), SR_ENOTFOUND (no such group), SR_ESTATE (the group is open),
 * SR_EIO/SR_ENOSPC (the WAL is stopped).
 */
SR_API int sr_wal_group_drop(sr_wal *wal, uint32_t id);

/*
 * Deferred hard states, for a host that drives many groups on one
 * thread (see "Term and vote" above).  With on != 0, set_hard_state()
 * of groups other than 0 writes its record and returns without waiting;
 * with on == 0 (the default) it waits as usual (turning it off first
 * syncs what is pending).  Group 0 is always synchronous.
 */
SR_API void sr_wal_defer_hard_state(sr_wal *wal, int on);

/* 1 if a deferred set_hard_state() is not yet known durable: the host
 * must call sr_wal_sync_hard_state() before sending anything. */
SR_API int sr_wal_hard_state_pending(const sr_wal *wal);

/*
 * Wait until every hard state written so far is durable (one
 * fdatasync, usually on the calling thread when the writer is idle;
 * the batch's completions are then reported through sr_wal_fd() as
 * usual).  Returns 0 at once if none is pending, or the error that
 * stopped the WAL (the changes are then never durable: send nothing
 * that depends on them).  Not from a done callback.
 */
SR_API int sr_wal_sync_hard_state(sr_wal *wal);

/*
 * The ids of the groups (other than 0) that have data on disk, in
 * ascending order, for a host to reopen them at restart: *n is set to
 * their number and min(*n, cap) ids are stored in ids (which may be NULL
 * when cap is 0).  Returns 0, or SR_ETOOBIG when cap < *n (then which
 * ids were stored is unspecified: call again with room for *n).
 */
SR_API int sr_wal_groups(const sr_wal *wal, uint32_t *ids, size_t cap,
			 size_t *n);

#ifdef __cplusplus
}
#endif
#endif
