/*
 * log.h — the engine's in-memory view of the Raft log.
 *
 * The log is [first, last].  Entries [cache.first, last] are held in memory
 * in a ring; older ones ([first, cache.first)) live only in the store and
 * are read back through sr_storage_ops.read() when a slow follower needs
 * them.  Entry data sits in reference-counted blocks (struct log_buf): a
 * block holds the data of one proposal, or of every entry one append
 * message brought, so the hot path allocates once per message, not once
 * per entry.
 *
 * The snapshot (snap_index, snap_term) covers every entry up to snap_index:
 * they are committed.  The log may still hold some of them (the trailing
 * entries kept for slow followers); below `first` only snap_term is known.
 */
#ifndef SR_LOG_H
#define SR_LOG_H

#include <seshat/raft.h>

#include "internal/logring.h"

struct raft_log {
	const sr_alloc *alloc;
	const sr_storage_ops *storage;
	void *storage_ctx;

	/* The cached entries [cache.first, last]; cache.first == last + 1
	 * when none is cached.  internal/logring.h. */
	struct log_ring cache;

	sr_index first; /* first entry in the log */
	sr_index snap_index;
	sr_term snap_term;
};

void log_init(struct raft_log *log, const sr_alloc *alloc,
	      const sr_storage_ops *storage, void *storage_ctx);
void log_close(struct raft_log *log);

static inline sr_index log_last(const struct raft_log *log)
{
	return log_ring_last(&log->cache);
}

/* The log's bounds for the other modules, which read them only here. */
static inline sr_index log_first(const struct raft_log *log)
{
	return log->first;
}

static inline sr_index log_snap_index(const struct raft_log *log)
{
	return log->snap_index;
}

static inline sr_term log_snap_term(const struct raft_log *log)
{
	return log->snap_term;
}

/* How many entries the cache holds (apply.c evicts past cache_entries). */
static inline size_t log_cached_count(const struct raft_log *log)
{
	return log->cache.count;
}

/* Last index and its term. */
sr_term log_last_term(struct raft_log *log);

/*
 * The term of entry `index`: 0 for index 0, snap_term at snap_index, the
 * entry's term inside the log.  Returns 0 and sets *err (if err) to
 * SR_ECOMPACTED below the snapshot or SR_ENOTFOUND past the end; to a
 * storage error if the read failed.
 */
sr_term log_term(struct raft_log *log, sr_index index, int *err);

/* The cached slot for index, or NULL if it is not cached. */
const struct log_slot *log_cached(const struct raft_log *log, sr_index index);

/*
 * Append one entry at last + 1.  buf (may be NULL for len == 0) gains no
 * reference: the caller hands over one of the references it holds.
 */
int log_push(struct raft_log *log, sr_term term, uint32_t type,
	     struct log_buf *buf, const unsigned char *data, uint32_t len);

/* Remove every entry >= from from memory (not from the store). */
void log_truncate(struct raft_log *log, sr_index from);

/* Drop cached entries below `below` from memory (they stay in the store). */
void log_evict(struct raft_log *log, sr_index below);

/*
 * Fill out[] with up to max_n entries starting at lo, at most max_bytes of
 * data (always at least one entry).  Cached entries point into memory;
 * older ones come from the store and are valid until the next store call.
 * *n_out is the count.  Errors: SR_ECOMPACTED, storage errors.
 */
int log_get(struct raft_log *log, sr_index lo, size_t max_n, uint64_t max_bytes,
	    sr_entry *out, size_t *n_out);

/*
 * Entry index, from the cache when it holds it (no copy: out points into
 * memory), otherwise from the store.  Errors as log_get(), and
 * SR_ENOTFOUND past the end.
 */
static inline int log_entry(struct raft_log *log, sr_index index, sr_entry *out)
{
	const struct log_slot *s = log_ring_get(&log->cache, index);
	size_t got = 0;
	int rv;

	if (s) {
		log_slot_entry(s, index, out);
		return 0;
	}
	rv = log_get(log, index, 1, UINT64_MAX, out, &got);
	return rv ? rv : got == 1 ? 0 : SR_ENOTFOUND;
}

/* Entries up to upto left the log (a snapshot covers them). */
void log_compact(struct raft_log *log, sr_index upto);

/* A snapshot now covers the log up to index, whose term is term. */
void log_set_snapshot(struct raft_log *log, sr_index index, sr_term term);

/* Reset to an empty log whose entries start at first (used at start). */
void log_reset(struct raft_log *log, sr_index first, sr_index snap_index,
	       sr_term snap_term);

#endif
