/*
 * util.h — allocation through the host's hooks, a seeded random number
 * generator, and small helpers shared by the engine's files.
 */
#ifndef SR_UTIL_H
#define SR_UTIL_H

#include <stdlib.h>

#include <seshat/types.h>

static inline void *sr_malloc(const sr_alloc *a, size_t size)
{
	if (a && a->malloc)
		return a->malloc(a->ctx, size);
	return malloc(size);
}

static inline void *sr_realloc(const sr_alloc *a, void *p, size_t size)
{
	if (a && a->realloc)
		return a->realloc(a->ctx, p, size);
	return realloc(p, size);
}

static inline void sr_free(const sr_alloc *a, void *p)
{
	if (!p)
		return;
	if (a && a->free)
		a->free(a->ctx, p);
	else
		free(p);
}

/* splitmix64: small, fast, and good enough for timeouts and jitter. */
static inline uint64_t sr_rand_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#define SR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SR_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
