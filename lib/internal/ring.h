/*
 * internal/ring.h — a FIFO kept in an array used as a ring: the one copy
 * of the index arithmetic behind the engine's queues (proposals awaiting
 * their outcome, store writes in flight, reads, a follower's in-flight
 * appends).
 *
 * The elements stay in the owner's typed array; struct ring holds where
 * the queue starts (head), how many it holds (count) and the array's
 * capacity (cap, a power of two, so that a position is a mask and not a
 * division: these sit on the engine's per-entry path).  Position i of the
 * queue is element ring_pos(r, i).  Growth doubles the array and unwraps
 * the queue to its start, so a queue's positions survive it.  Sorted queues (proposals and applied
 * reads are kept by index) find their place from the back and open a gap
 * there with ring_insert().
 *
 * Not installed; static inline, so it adds no symbol to the library.
 */
#ifndef SR_INTERNAL_RING_H
#define SR_INTERNAL_RING_H

#include <stdint.h>
#include <string.h>

#include "alloc.h"

struct ring {
	uint32_t head, count, cap;
};

/* The array index of queue position i (i < cap). */
static inline uint32_t ring_pos(const struct ring *r, uint32_t i)
{
	return (r->head + i) & (r->cap - 1);
}

static inline void *ring_elem(const struct ring *r, void *base, size_t size,
			      uint32_t i)
{
	return (unsigned char *)base + (size_t)ring_pos(r, i) * size;
}

/* The array index of the first element (count > 0). */
static inline uint32_t ring_first(const struct ring *r)
{
	return r->head;
}

static inline int ring_full(const struct ring *r)
{
	return r->count == r->cap;
}

/*
 * Make room for one more element when the ring is full (ring_full(): the
 * callers test it first, it is on their per-entry path).  base is the
 * owner's array; the queue moves to the start of an array of twice the capacity
 * (the first time, first_cap rounded up to a power of two), which is
 * returned in its place.  NULL when that allocation failed or the
 * capacity would pass 2^31: the queue and base are as they were.
 */
static inline void *ring_grow(struct ring *r, void *base, size_t size,
			      uint32_t first_cap, const sr_alloc *alloc)
{
	uint32_t ncap, tail;
	unsigned char *nb;

	if (r->count < r->cap)
		return base;
	if (r->cap >= UINT32_C(1) << 31 || first_cap > UINT32_C(1) << 31)
		return NULL;
	ncap = r->cap ? r->cap * 2 : 1;
	while (ncap < first_cap)
		ncap *= 2;
	nb = (unsigned char *)hook_malloc(alloc, (size_t)ncap * size);
	if (!nb)
		return NULL;
	if (r->count && base) { /* (count > 0 implies base) */
		/* [head, cap) then [0, head): a full ring wraps at head. */
		tail = r->cap - r->head;
		memcpy(nb, (unsigned char *)base + (size_t)r->head * size,
		       (size_t)tail * size);
		memcpy(nb + (size_t)tail * size, base, (size_t)r->head * size);
	}
	hook_free(alloc, base);
	r->cap = ncap;
	r->head = 0;
	return nb;
}

/* Position of a new last element (room must have been reserved). */
static inline uint32_t ring_push(struct ring *r)
{
	return ring_pos(r, r->count++);
}

/* Open a gap at queue position pos (<= count) by moving the elements
 * after it back by one; returns the array index of the gap.  Room must
 * have been reserved. */
static inline uint32_t ring_insert(struct ring *r, void *base, size_t size,
				   uint32_t pos)
{
	for (uint32_t i = r->count; i > pos; i--)
		memcpy(ring_elem(r, base, size, i),
		       ring_elem(r, base, size, i - 1), size);
	r->count++;
	return ring_pos(r, pos);
}

/* Take back the element ring_push() just added. */
static inline void ring_unpush(struct ring *r)
{
	r->count--;
}

/* Drop the first element. */
static inline void ring_pop(struct ring *r)
{
	r->head = (r->head + 1) & (r->cap - 1);
	r->count--;
}

static inline void ring_clear(struct ring *r)
{
	r->head = 0;
	r->count = 0;
}

#endif
