/*
 * count_alloc.h — sr_alloc hooks that count: live bytes, the peak and the
 * number of calls, so tests can assert that memory stays bounded and that
 * nothing was allocated where nothing should be.  Each block carries its
 * size in a 16-byte prefix.
 */
#ifndef SR_TEST_COUNT_ALLOC_H
#define SR_TEST_COUNT_ALLOC_H

#include <stdlib.h>
#include <string.h>

#include "seshat/types.h"

struct count_alloc {
	size_t live, peak, calls, blocks;
	sr_alloc hooks;
};

#define CA_HDR 16

static void *ca_realloc(void *ctx, void *p, size_t size)
{
	struct count_alloc *ca = ctx;
	size_t old = 0;
	unsigned char *b = p ? (unsigned char *)p - CA_HDR : NULL;
	if (b)
		memcpy(&old, b, sizeof(old));
	unsigned char *n = realloc(b, size + CA_HDR);
	if (!n)
		return NULL;
	memcpy(n, &size, sizeof(size));
	ca->live = ca->live - old + size;
	if (!b)
		ca->blocks++;
	if (ca->live > ca->peak)
		ca->peak = ca->live;
	ca->calls++;
	return n + CA_HDR;
}

static void *ca_malloc(void *ctx, size_t size)
{
	return ca_realloc(ctx, NULL, size);
}

static void ca_free(void *ctx, void *p)
{
	struct count_alloc *ca = ctx;
	if (!p)
		return;
	unsigned char *b = (unsigned char *)p - CA_HDR;
	size_t old;
	memcpy(&old, b, sizeof(old));
	ca->live -= old;
	ca->blocks--;
	free(b);
}

static inline void count_alloc_init(struct count_alloc *ca)
{
	memset(ca, 0, sizeof(*ca));
	ca->hooks.malloc = ca_malloc;
	ca->hooks.realloc = ca_realloc;
	ca->hooks.free = ca_free;
	ca->hooks.ctx = ca;
}

#endif
