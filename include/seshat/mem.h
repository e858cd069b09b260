/*
 * seshat/mem.h — a log store that lives in memory.
 *
 * sr_mem implements every slot of sr_storage_ops (log, hard state,
 * compaction and chunked snapshots) without touching a disk.  It serves
 * three kinds of users:
 *
 *   - programs that want Raft without persistence (caches, tests, the
 *     examples): SR_MEM_SYNC reports every append durable from inside
 *     append(), so the engine never waits;
 *   - tests of the engine's asynchronous paths: SR_MEM_ASYNC queues the
 *     completions until the host delivers them with sr_mem_flush() or, one
 *     at a time and in any order, with sr_mem_complete();
 *   - the deterministic simulator: the store keeps apart what it reported
 *     durable from what it did not, and sr_mem_crash() turns the store into
 *     what a disk would hold after a power cut.  The store is the "disk": it
 *     outlives the sr_node that uses it, and a new node started on it after
 *     a crash sees only what survived.
 *
 * The store does not know the engine.  It reports a finished append through
 * the sr_mem_done_fn given at creation; a host wires it to
 * sr_node_storage_done():
 *
 *   static void on_done(void *ctx, uint64_t token, int status)
 *   {
 *           sr_node_storage_done(ctx, token, status);
 *   }
 *   ...
 *   sr_mem_config mc = { .mode = SR_MEM_SYNC, .done = on_done };
 *   sr_mem_create(&mc, &mem);
 *   cfg.storage = sr_mem_ops();
 *   cfg.storage_ctx = mem;
 *   sr_node_create(&cfg, &node);
 *   sr_mem_set_done(mem, on_done, node);
 *
 * Durability model.  set_hard_state() and snapshot_finish() are durable
 * when they return.  append(), truncate() and compact() change what read()
 * and load() see at once, but in SR_MEM_ASYNC mode they are durable only
 * once a later completion covers them: reporting an append durable makes
 * it and every operation issued before it durable (like an fsync on a
 * log: a log cannot hold a later record and miss an earlier one).
 * Completions may still be *delivered* out of order.  A crash keeps the
 * durable operations and a random prefix of the others; the first write it
 * drops takes every later one with it, and the last append it keeps may be
 * torn (only a prefix of its entries survives).
 *
 * Threads: none.  Every function runs on the caller's thread; a store is
 * used by one thread at a time.  Allocation goes through the sr_alloc hooks
 * given at creation.
 */
#ifndef SESHAT_MEM_H
#define SESHAT_MEM_H

#include "raft.h"
#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sr_mem sr_mem;

/*
 * An append finished: status is 0 (durable) or a negative SR_E* code.
 * Called from inside append() in SR_MEM_SYNC mode and from inside
 * sr_mem_flush()/sr_mem_complete() in SR_MEM_ASYNC mode.  The callee may
 * call back into the store (the engine appends from its completion path).
 */
typedef void (*sr_mem_done_fn)(void *ctx, uint64_t token, int status);

/* A source of random 64-bit numbers, for sr_mem_crash(). */
typedef uint64_t (*sr_mem_rand_fn)(void *ctx);

enum {
	SR_MEM_SYNC = 0, /* append() is durable and completes before it returns */
	SR_MEM_ASYNC = 1 /* completions wait for sr_mem_flush/sr_mem_complete */
};

typedef struct sr_mem_config {
	int mode;	     /* SR_MEM_SYNC or SR_MEM_ASYNC */
	sr_mem_done_fn done; /* may be NULL until sr_mem_set_done() */
	void *done_ctx;
	const sr_alloc *alloc; /* NULL: libc; must outlive the store */
} sr_mem_config;

/*
 * Create an empty store (term 0, no vote, no entries, no snapshot).
 * cfg is copied.  Errors: SR_EINVAL (bad mode), SR_ENOMEM.
 */
SR_API int sr_mem_create(const sr_mem_config *cfg, sr_mem **out);

/*
 * Free the store and everything it holds.  Undelivered completions are
 * dropped without a callback.  NULL is a no-op.
 */
SR_API void sr_mem_destroy(sr_mem *mem);

/* The storage vtable; pass the sr_mem as storage_ctx. */
SR_API const sr_storage_ops *sr_mem_ops(void);

/* Rewire the completion callback (a new node on the same store). */
SR_API void sr_mem_set_done(sr_mem *mem, sr_mem_done_fn done, void *ctx);

/* ------------------------------------------------------------------ */
/* Asynchronous completions (SR_MEM_ASYNC)                            */
/* ------------------------------------------------------------------ */

/* Appends whose completion has not been delivered yet. */
SR_API size_t sr_mem_pending(const sr_mem *mem);

/*
 * Deliver the completion of the i-th undelivered append (0 = the oldest)
 * with `status`.  Status 0 makes that append and every operation issued
 * before it durable.  A negative status is a failed write: it and
 * everything after it will never become durable, and every later
 * completion reports that error too (the store stays failed until
 * sr_mem_crash()).  The done callback runs before this returns.
 * Errors: SR_ENOTFOUND (no such completion), SR_EINVAL (status > 0).
 */
SR_API int sr_mem_complete(sr_mem *mem, size_t i, int status);

/*
 * Deliver up to max completions, oldest first, with status 0 (or the
 * store's failure).  When none is left undelivered, truncations and
 * compactions issued after the last append become durable too.  Returns
 * the number of callbacks made.
 */
SR_API size_t sr_mem_flush(sr_mem *mem, size_t max);

/* ------------------------------------------------------------------ */
/* Crash and fault injection (the simulator's disk)                   */
/* ------------------------------------------------------------------ */

/*
 * Power cut.  Call after the node using the store is destroyed.  Keeps
 * the durable state; of the operations not yet durable keeps a random
 * prefix chosen with rnd(rctx) (the last kept append possibly torn), drops
 * the rest, forgets every undelivered completion (no callback) and any
 * partial snapshot, and clears an injected or reported failure.  With
 * rnd == NULL every non-durable operation is dropped.  Afterwards the
 * store holds exactly what it holds durably.
 */
SR_API void sr_mem_crash(sr_mem *mem, sr_mem_rand_fn rnd, void *rctx);

enum {
	SR_MEM_FAIL_APPEND = 1,	    /* the next append() returns err */
	SR_MEM_FAIL_HARD_STATE = 2, /* the next set_hard_state() returns err */
	SR_MEM_FAIL_TRUNCATE = 3,   /* the next truncate() returns err */
	SR_MEM_FAIL_READ = 4	    /* the next read() returns err */
};

/*
 * Make the next call of one operation fail with err (negative), leaving
 * the store unchanged.  Errors: SR_EINVAL.
 */
SR_API int sr_mem_inject(sr_mem *mem, int op, int err);

/* ------------------------------------------------------------------ */
/* Preloading and inspection (tests)                                  */
/* ------------------------------------------------------------------ */

/*
 * Set term and vote directly (durable, no callback).  Tests use it with
 * sr_mem_preload() to build a log before sr_node_start().
 */
SR_API void sr_mem_set_hard_state(sr_mem *mem, sr_term term, sr_id vote);

/*
 * Append entries durably without any callback.  entries[0].index must be
 * last_index + 1 and the indexes consecutive; terms, types and data are
 * the caller's choice (data is copied).  The bootstrap configuration is
 * not added: a test that skips sr_node_bootstrap() preloads an
 * SR_ENTRY_CONFIG entry (sr_membership_encode) itself.
 * Errors: SR_EINVAL, SR_ENOMEM.
 */
SR_API int sr_mem_preload(sr_mem *mem, const sr_entry *entries, size_t n);

typedef struct sr_mem_info {
	sr_term term; /* hard state (always durable) */
	sr_id vote;
	sr_index first_index; /* what read() and load() see now */
	sr_index last_index;
	sr_index durable_first; /* what a crash with rnd == NULL keeps */
	sr_index durable_last;
	sr_index snapshot_index; /* 0: none */
	sr_term snapshot_term;
	uint64_t snapshot_size;
	size_t pending;	    /* undelivered completions */
	size_t pending_ops; /* operations not yet durable */
	int failed;	    /* the failure completions report, or 0 */
	uint64_t n_appends; /* counters since creation */
	uint64_t n_truncates;
	uint64_t n_compacts;
	uint64_t n_hard_states;
} sr_mem_info;

/* Fill *out with the store's state.  Never fails. */
SR_API void sr_mem_get_info(const sr_mem *mem, sr_mem_info *out);

/*
 * The entry at index as read() would return it (durable = 0) or as a
 * crash with rnd == NULL would keep it (durable = 1).  out->data points
 * into the store until its next change.  Errors: SR_ENOTFOUND,
 * SR_ECOMPACTED.
 */
SR_API int sr_mem_entry(const sr_mem *mem, sr_index index, int durable,
			sr_entry *out);

#ifdef __cplusplus
}
#endif
#endif
