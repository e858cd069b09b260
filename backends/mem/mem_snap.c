/*
 * mem_snap.c — snapshot storage of the in-memory store.
 *
 * A snapshot is written in chunks into `part` (begin, write at offsets
 * that never leave a gap, finish) and replaces the current one, `snap`,
 * only on finish(commit = 1); finish(0) or a crash discards `part`.
 * snapshot_read() reads `snap`, never a snapshot being written.  Both are
 * durable the moment finish() returns: the store has no disk to lose
 * them on.
 */
#include "mem_int.h"

void mem_snap_clear(sr_mem *m, struct mem_snap *s)
{
	mem_free(m, s->data);
	memset(s, 0, sizeof(*s));
}

int mem_snap_begin(void *ctx, sr_index index, sr_term term,
		   const sr_membership *conf)
{
	sr_mem *m = ctx;

	mem_snap_clear(m, &m->part);
	m->part.active = 1;
	m->part.index = index;
	m->part.term = term;
	if (conf)
		m->part.conf = *conf;
	return 0;
}

int mem_snap_write(void *ctx, uint64_t offset, const void *data, size_t len)
{
	sr_mem *m = ctx;
	struct mem_snap *p = &m->part;
	size_t cap;
	int rv;

	if (!p->active)
		return SR_ESTATE;
	if (offset > p->size || (len && !data))
		return SR_EINVAL;
	if (offset + len > SIZE_MAX / 2)
		return SR_ETOOBIG;
	cap = (size_t)p->cap;
	rv = mem_grow(m, (void **)&p->data, &cap, (size_t)(offset + len), 1);
	if (rv)
		return rv;
	p->cap = cap;
	if (len)
		memcpy(p->data + offset, data, len);
	if (offset + len > p->size)
		p->size = offset + len;
	return 0;
}

int mem_snap_finish(void *ctx, int commit)
{
	sr_mem *m = ctx;

	if (!m->part.active)
		return SR_ESTATE;
	if (commit) {
		mem_snap_clear(m, &m->snap);
		m->snap = m->part;
		memset(&m->part, 0, sizeof(m->part));
	} else {
		mem_snap_clear(m, &m->part);
	}
	return 0;
}

int mem_snap_read(void *ctx, uint64_t offset, void *buf, size_t len,
		  size_t *n_out)
{
	sr_mem *m = ctx;
	uint64_t n;

	*n_out = 0;
	if (!m->snap.active)
		return SR_ENOTFOUND;
	if (offset > m->snap.size)
		return SR_EINVAL;
	n = m->snap.size - offset;
	if (n > len)
		n = len;
	if (n)
		memcpy(buf, m->snap.data + offset, (size_t)n);
	*n_out = (size_t)n;
	return 0;
}
