/*
 * internal/alloc.h — allocation through the host's hooks, the one copy the
 * engine (lib/) and every backend (backends/) share.
 *
 * seshat/types.h promises that every allocation goes through the sr_alloc
 * hooks and that a NULL hooks pointer, or a NULL function in it, means libc.
 * The wrappers below are that rule and nothing more: each function falls
 * back to libc on its own (a host that sets only malloc and free still gets
 * libc's realloc), no size is special-cased (a zero size goes to the hook
 * or to libc as given), and hook_free() ignores NULL so that a hook never sees
 * a NULL pointer.  A backend that wants all three hooks or none (the WAL)
 * checks that in its own configuration.
 *
 * Not installed (make install copies include/seshat/ only) and static
 * inline, so it adds no symbol to the library.
 */
#ifndef SR_INTERNAL_ALLOC_H
#define SR_INTERNAL_ALLOC_H

#include <stdlib.h>

#include <seshat/types.h>

static inline void *hook_malloc(const sr_alloc *a, size_t size)
{
	if (a && a->malloc)
		return a->malloc(a->ctx, size);
	return malloc(size);
}

static inline void *hook_realloc(const sr_alloc *a, void *p, size_t size)
{
	if (a && a->realloc)
		return a->realloc(a->ctx, p, size);
	return realloc(p, size);
}

static inline void hook_free(const sr_alloc *a, void *p)
{
	if (!p)
		return;
	if (a && a->free)
		a->free(a->ctx, p);
	else
		free(p);
}

#endif
