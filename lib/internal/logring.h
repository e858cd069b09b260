/*
 * internal/logring.h — a run of Raft log entries held in memory, the one
 * copy the engine's log cache (lib/log.c) and the in-memory store
 * (backends/mem) share.
 *
 * The ring holds entries [first, first + count) in a power-of-two array,
 * so that both ends move in O(1): appends and truncations at the back,
 * eviction (the cache) and compaction (the store) at the front.  Entry
 * bytes sit in reference-counted blocks (struct log_buf): one block
 * carries the data of one proposal, or of every entry one message or one
 * append brought, so the hot path allocates once per batch, not once per
 * entry.  Every slot with len > 0 holds one reference on its block; the
 * ring drops it when the slot goes.
 *
 * Not installed and static inline, so it adds no symbol to the library.
 */
#ifndef SR_INTERNAL_LOGRING_H
#define SR_INTERNAL_LOGRING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <seshat/types.h>

#include "alloc.h"

struct log_buf {
	uint32_t refs;
	uint32_t size;
	unsigned char data[];
};

struct log_slot {
	sr_term term;
	uint32_t type;
	uint32_t len;
	struct log_buf *buf; /* NULL when len == 0 */
	const unsigned char *data;
};

struct log_ring {
	struct log_slot *slot;
	size_t cap;	/* 0 or a power of two */
	size_t head;	/* array position of entry `first` */
	size_t count;	/* entries held */
	sr_index first; /* index of the oldest entry (last + 1 when empty) */
	uint64_t bytes; /* sum of the held entries' len */
};

/* A block of size bytes carrying refs references (NULL: out of memory or
 * larger than an entry can be). */
static inline struct log_buf *log_buf_new(const sr_alloc *alloc, size_t size,
					  uint32_t refs)
{
	struct log_buf *b;

	if (size > UINT32_MAX)
		return NULL;
	b = (struct log_buf *)hook_malloc(alloc, sizeof(*b) + size);
	if (!b)
		return NULL;
	b->refs = refs;
	b->size = (uint32_t)size;
	return b;
}

static inline void log_buf_put(const sr_alloc *alloc, struct log_buf *b)
{
	if (b && --b->refs == 0)
		hook_free(alloc, b);
}

/* Index of the newest entry (first - 1 when empty). */
static inline sr_index log_ring_last(const struct log_ring *r)
{
	return r->first + r->count - 1;
}

/* The slot of entry index, which the caller knows is held. */
static inline struct log_slot *log_ring_at(const struct log_ring *r,
					   sr_index index)
{
	return &r->slot[(r->head + (size_t)(index - r->first)) & (r->cap - 1)];
}

/* The slot of entry index, or NULL when the ring does not hold it. */
static inline const struct log_slot *log_ring_get(const struct log_ring *r,
						  sr_index index)
{
	if (index < r->first || index - r->first >= r->count)
		return NULL;
	return log_ring_at(r, index);
}

/* The entry at index held in slot s (its data stays in the ring). */
static inline void log_slot_entry(const struct log_slot *s, sr_index index,
				  sr_entry *out)
{
	out->term = s->term;
	out->index = index;
	out->type = s->type;
	out->len = s->len;
	out->data = s->data;
}

/* Grow the array to hold count + more entries (log_ring_reserve).  realloc
 * keeps the live run where it is (and large arrays move for free); only
 * the part that had wrapped round to the start moves, past the old end. */
static inline int log_ring_grow(struct log_ring *r, const sr_alloc *alloc,
				size_t more)
{
	size_t ncap = r->cap ? r->cap : 16, wrapped;
	struct log_slot *ns;

	while (ncap < r->count + more) {
		if (ncap > SIZE_MAX / 2 / sizeof(*ns))
			return SR_ENOMEM;
		ncap *= 2;
	}
	ns = (struct log_slot *)hook_realloc(alloc, r->slot,
					     ncap * sizeof(*ns));
	if (!ns)
		return SR_ENOMEM;
	wrapped = r->head + r->count > r->cap ? r->head + r->count - r->cap : 0;
	if (wrapped)
		memcpy(ns + r->cap, ns, wrapped * sizeof(*ns));
	r->slot = ns;
	r->cap = ncap;
	return 0;
}

/* Room for `more` entries at the back; on SR_ENOMEM nothing changed. */
static inline int log_ring_reserve(struct log_ring *r, const sr_alloc *alloc,
				   size_t more)
{
	if (r->count + more <= r->cap)
		return 0;
	return log_ring_grow(r, alloc, more);
}

/* Append one entry (room reserved) and return its slot for the caller to
 * fill; the ring owns the reference on the slot's buf from then on. */
static inline struct log_slot *log_ring_append(struct log_ring *r)
{
	size_t pos = (r->head + r->count) & (r->cap - 1);

	r->count++;
	return &r->slot[pos];
}

/* Append one entry (room reserved), taking the caller's reference on
 * s->buf. */
static inline void log_ring_push(struct log_ring *r, const struct log_slot *s)
{
	*log_ring_append(r) = *s;
	r->bytes += s->len;
}

/* Release the k slots from array position pos on (wrapping). */
static inline void log_ring_release(struct log_ring *r, const sr_alloc *alloc,
				    size_t pos, size_t k)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < k; i++) {
		struct log_slot *s = &r->slot[(pos + i) & (r->cap - 1)];

		bytes += s->len;
		log_buf_put(alloc, s->buf);
		s->buf = NULL;
	}
	r->bytes -= bytes;
}

/* Drop the entries >= from (those below first are not held). */
static inline void log_ring_truncate(struct log_ring *r, const sr_alloc *alloc,
				     sr_index from)
{
	size_t k;

	if (r->count == 0 || from > log_ring_last(r))
		return;
	k = from <= r->first ? r->count : (size_t)(log_ring_last(r) - from + 1);
	log_ring_release(r, alloc, r->head + (r->count - k), k);
	r->count -= k;
}

/* Drop the entries < below from the front; first stops at last + 1. */
static inline void log_ring_drop_front(struct log_ring *r,
				       const sr_alloc *alloc, sr_index below)
{
	size_t k;

	if (r->count == 0 || below <= r->first)
		return;
	k = below - r->first >= r->count ? r->count
					 : (size_t)(below - r->first);
	log_ring_release(r, alloc, r->head, k);
	r->head = (r->head + k) & (r->cap - 1);
	r->count -= k;
	r->first += k;
}

/* Drop every entry and the array; the ring is empty, first unchanged. */
static inline void log_ring_free(struct log_ring *r, const sr_alloc *alloc)
{
	log_ring_truncate(r, alloc, r->first);
	hook_free(alloc, r->slot);
	r->slot = NULL;
	r->cap = 0;
	r->head = 0;
}

#endif
