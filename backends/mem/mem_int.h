/*
 * mem_int.h — the in-memory store's private structures, shared by mem.c
 * (the log, its durability and the vtable) and mem_snap.c (snapshot
 * storage).  Not installed; nothing outside backends/mem includes it.
 */
#ifndef MEM_INT_H
#define MEM_INT_H

#include <stdlib.h>
#include <string.h>

#include <seshat/mem.h>

#include "internal/alloc.h"
#include "internal/logring.h"

/* Each image of the log is a struct log_ring (internal/logring.h, the
 * engine's log cache uses the same); entry bytes sit in its blocks. */

enum { OP_APPEND = 1, OP_TRUNCATE = 2, OP_COMPACT = 3 };

struct mem_op {
	int kind;
	uint64_t seq;
	sr_index arg; /* append: first index; truncate: from; compact: upto */
	size_t n;
	struct log_slot *ents; /* append: its entries (one reference each) */
};

struct mem_report {
	uint64_t seq;
	uint64_t token;
};

struct mem_snap {
	int active;
	sr_index index;
	sr_term term;
	sr_membership conf;
	unsigned char *data;
	uint64_t size, cap;
};

struct sr_mem {
	int mode;
	sr_mem_done_fn done;
	void *done_ctx;
	const sr_alloc *alloc;

	sr_term term;
	sr_id vote;
	struct log_ring vis, dur;

	struct mem_op *ops; /* FIFO: ops[ops_off, ops_off + ops_n) */
	size_t ops_off, ops_n, ops_cap;
	struct mem_report *rep;
	size_t rep_n, rep_cap;
	uint64_t next_seq;

	int failed;	   /* sticky completion error, 0 when healthy */
	uint64_t fail_seq; /* first op that may never become durable */
	int inject[5];	   /* SR_MEM_FAIL_*: error for the next call */

	struct mem_snap snap, part;
	uint64_t n_appends, n_truncates, n_compacts, n_hard_states;
};

/* ------------------------------------------------------------------ */
/* Allocation (through the store's hooks: internal/alloc.h)            */
/* ------------------------------------------------------------------ */

static inline void *mem_alloc(const sr_mem *m, size_t size)
{
	return hook_malloc(m->alloc, size);
}

static inline void *mem_realloc(const sr_mem *m, void *p, size_t size)
{
	return hook_realloc(m->alloc, p, size);
}

static inline void mem_free(const sr_mem *m, void *p)
{
	hook_free(m->alloc, p);
}

/* Grow *arr (of elem-sized items, capacity *cap) to hold at least need. */
static inline int mem_grow(sr_mem *m, void **arr, size_t *cap, size_t need,
			   size_t elem)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	p = mem_realloc(m, *arr, ncap * elem);
	if (!p)
		return SR_ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static inline void mem_unref(sr_mem *m, struct log_buf *b)
{
	log_buf_put(m->alloc, b);
}

/* ------------------------------------------------------------------ */
/* mem_snap.c                                                          */
/* ------------------------------------------------------------------ */

void mem_snap_clear(sr_mem *m, struct mem_snap *s);
int mem_snap_begin(void *ctx, sr_index index, sr_term term,
		   const sr_membership *conf);
int mem_snap_write(void *ctx, uint64_t offset, const void *data, size_t len);
int mem_snap_finish(void *ctx, int commit);
int mem_snap_read(void *ctx, uint64_t offset, void *buf, size_t len,
		  size_t *n_out);

#endif
