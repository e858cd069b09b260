/*
 * log.c — the in-memory Raft log cache (see log.h for the model).
 *
 * Invariants:
 *   first <= cache.first <= last + 1
 *   snap_index >= first - 1: after a local snapshot the log may keep
 *   `snapshot_trailing` entries the snapshot also covers
 *   every cached slot with len > 0 holds one reference on its buf
 *
 * The ring (internal/logring.h, shared with the in-memory store) grows by
 * doubling and never shrinks below its high-water mark; eviction keeps the
 * cache near the configured size.
 */
#include "log.h"

#include <string.h>

#include "util.h"

void log_init(struct raft_log *log, const sr_alloc *alloc,
	      const sr_storage_ops *storage, void *storage_ctx)
{
	memset(log, 0, sizeof(*log));
	log->alloc = alloc;
	log->storage = storage;
	log->storage_ctx = storage_ctx;
	log->first = 1;
	log->cache.first = 1;
}

void log_close(struct raft_log *log)
{
	log_ring_free(&log->cache, log->alloc);
}

int log_push(struct raft_log *log, sr_term term, uint32_t type,
	     struct log_buf *buf, const unsigned char *data, uint32_t len)
{
	struct log_slot *s;
	int rv = log_ring_reserve(&log->cache, log->alloc, 1);

	if (rv)
		return rv;
	s = log_ring_append(&log->cache);
	s->term = term;
	s->type = type;
	s->len = len;
	s->buf = buf;
	s->data = data;
	log->cache.bytes += len;
	return 0;
}

void log_truncate(struct raft_log *log, sr_index from)
{
	/* below the cache: callers truncate the store too */
	log_ring_truncate(&log->cache, log->alloc, from);
}

void log_evict(struct raft_log *log, sr_index below)
{
	log_ring_drop_front(&log->cache, log->alloc, below);
}

void log_compact(struct raft_log *log, sr_index upto)
{
	log_ring_drop_front(&log->cache, log->alloc, upto + 1);
	log->first = upto + 1;
}

void log_set_snapshot(struct raft_log *log, sr_index index, sr_term term)
{
	log->snap_index = index;
	log->snap_term = term;
}

void log_reset(struct raft_log *log, sr_index first, sr_index snap_index,
	       sr_term snap_term)
{
	log_ring_truncate(&log->cache, log->alloc, log->cache.first);
	log->first = first;
	log->cache.first = first;
	log->snap_index = snap_index;
	log->snap_term = snap_term;
}

const struct log_slot *log_cached(const struct raft_log *log, sr_index index)
{
	return log_ring_get(&log->cache, index);
}

sr_term log_term(struct raft_log *log, sr_index index, int *err)
{
	const struct log_slot *s;
	sr_entry e;
	size_t n = 0;
	int rv;

	if (err)
		*err = 0;
	if (index == 0)
		return 0;
	if (index == log->snap_index)
		return log->snap_term;
	if (index < log->first) {
		if (err)
			*err = SR_ECOMPACTED;
		return 0;
	}
	if (index > log_last(log)) {
		if (err)
			*err = SR_ENOTFOUND;
		return 0;
	}
	s = log_cached(log, index);
	if (s)
		return s->term;
	rv = log->storage->read(log->storage_ctx, index, 1, 0, &e, &n);
	if (rv == 0 && (n != 1 || e.index != index))
		rv = SR_ECORRUPT;
	if (rv) {
		if (err)
			*err = rv;
		return 0;
	}
	return e.term;
}

sr_term log_last_term(struct raft_log *log)
{
	return log_term(log, log_last(log), NULL);
}

int log_get(struct raft_log *log, sr_index lo, size_t max_n, uint64_t max_bytes,
	    sr_entry *out, size_t *n_out)
{
	sr_index last = log_last(log);
	size_t n = 0;
	uint64_t bytes = 0;

	*n_out = 0;
	if (lo < log->first)
		return SR_ECOMPACTED;
	if (lo > last || max_n == 0)
		return 0;
	if (lo < log->cache.first) {
		/* Older than the cache: one read from the store, stopping at
		 * the cache so that the data pointers all come from one call. */
		size_t want = (size_t)(log->cache.first - lo);
		int rv;
		if (want > max_n)
			want = max_n;
		rv = log->storage->read(log->storage_ctx, lo, want,
					(size_t)max_bytes, out, n_out);
		if (rv)
			return rv;
		for (size_t i = 0; i < *n_out; i++)
			if (out[i].index != lo + i)
				return SR_ECORRUPT;
		return 0;
	}
	while (n < max_n && lo + n <= last) {
		const struct log_slot *s = log_ring_at(&log->cache, lo + n);
		if (n > 0 && bytes + s->len > max_bytes)
			break;
		log_slot_entry(s, lo + n, &out[n]);
		bytes += s->len;
		n++;
	}
	*n_out = n;
	return 0;
}
