/*
 * wal_group.c — many Raft groups on one WAL: the group table and the
 * group API of seshat/wal.h.
 *
 * Every group has its own log view (first, last, pos[]), hard state,
 * snapshot (g<id>-<index>.snap) and lost file; the records of all
 * groups share one stream of segments and batches, so one fdatasync
 * covers the appends of every group in a batch, and the term and vote
 * changes too: they are HARDSTATE records in the same stream (group 0
 * keeps the meta file; so do groups created before format version 3,
 * until their first change, the log's record then winning).  Group 0
 * is the WAL's own (sr_wal_open + sr_wal_storage_ops), embedded at the
 * start of sr_wal; the others live here, in an open-addressing table by
 * id (linear probing, at most half full, backward-shift deletion).
 *
 * A group exists on disk exactly when its meta file exists: open()
 * creates it, empty (term 0, no vote), and the I/O engine fsyncs the
 * directory before it writes the next batch, so the file is durable
 * before any record of the group can be (many groups created together
 * share that one fsync); drop() deletes it first, then writes a DROP
 * record (which makes recovery forget every earlier record of the
 * group, its hard state included) and waits for it to be durable, then
 * deletes the snapshot and lost files.  A crash in the
 * middle of a drop leaves records or snapshots of a group without a meta
 * file; recovery finishes the drop (wal_recover.c).
 *
 * Memory per group: the struct (about 200 bytes), pos[] (8 bytes per
 * entry it holds, grown by doubling from 16), and the membership of its
 * snapshot sized to its members.  A closed group keeps its in-memory
 * index until it is dropped or the WAL closes: reopening it costs
 * nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wal_int.h"

/* ------------------------------------------------------------------ */
/* The table                                                          */
/* ------------------------------------------------------------------ */

static size_t slot_of(const sr_wal *w, uint32_t id)
{
	return (size_t)((id * 2654435761u) & (uint32_t)(w->gtab_cap - 1));
}

struct sr_wal_group *wal_group_find(sr_wal *w, uint32_t id)
{
	if (id == 0)
		return &w->g0;
	if (!w->gtab_cap)
		return NULL;
	for (size_t i = slot_of(w, id);; i = (i + 1) & (w->gtab_cap - 1)) {
		struct sr_wal_group *g = w->gtab[i];

		if (!g || g->id == id)
			return g;
	}
}

static void table_put(sr_wal *w, struct sr_wal_group *g)
{
	size_t i = slot_of(w, g->id);

	while (w->gtab[i])
		i = (i + 1) & (w->gtab_cap - 1);
	w->gtab[i] = g;
}

static int table_grow(sr_wal *w)
{
	size_t old_cap = w->gtab_cap, cap = old_cap ? old_cap * 2 : 16;
	struct sr_wal_group **old = w->gtab;
	struct sr_wal_group **t = wal_mem_alloc(w, cap * sizeof(*t));

	if (!t)
		return SR_ENOMEM;
	memset(t, 0, cap * sizeof(*t));
	w->gtab = t;
	w->gtab_cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i])
			table_put(w, old[i]);
	wal_mem_free(w, old);
	return 0;
}

void wal_group_init(sr_wal *w, struct sr_wal_group *g, uint32_t id)
{
	memset(g, 0, sizeof(*g));
	g->wal = w;
	g->id = id;
	g->snap.fd = -1;
	g->first = 1;
	g->known = 1;
}

struct sr_wal_group *wal_group_add(sr_wal *w, uint32_t id)
{
	struct sr_wal_group *g;

	if ((w->n_groups + 1) * 2 > w->gtab_cap && table_grow(w))
		return NULL;
	g = wal_mem_alloc(w, sizeof(*g));
	if (!g)
		return NULL;
	wal_group_init(w, g, id);
	table_put(w, g);
	w->n_groups++;
	return g;
}

void wal_group_release(struct sr_wal_group *g)
{
	wal_snap_close(g);
	wal_mem_free(g->wal, g->pos);
	g->pos = NULL;
	g->pos_off = g->pos_n = g->pos_cap = 0;
}

void wal_group_remove(sr_wal *w, struct sr_wal_group *g)
{
	size_t mask = w->gtab_cap - 1, i = slot_of(w, g->id), j;

	while (w->gtab[i] != g)
		i = (i + 1) & mask;
	w->gtab[i] = NULL;
	/* backward shift: move later members of the run into the hole when
	 * their home slot is not between the hole and them */
	for (j = (i + 1) & mask; w->gtab[j]; j = (j + 1) & mask) {
		size_t home = slot_of(w, w->gtab[j]->id);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			w->gtab[i] = w->gtab[j];
			w->gtab[j] = NULL;
			i = j;
		}
	}
	w->n_groups--;
	wal_group_release(g);
	wal_mem_free(w, g);
}

void wal_group_free_all(sr_wal *w)
{
	for (size_t i = 0; i < w->gtab_cap; i++) {
		if (w->gtab[i]) {
			wal_group_release(w->gtab[i]);
			wal_mem_free(w, w->gtab[i]);
		}
	}
	wal_mem_free(w, w->gtab);
	w->gtab = NULL;
	w->gtab_cap = w->n_groups = 0;
	wal_group_release(&w->g0);
}

/* ------------------------------------------------------------------ */
/* The API                                                            */
/* ------------------------------------------------------------------ */

int sr_wal_group_open(sr_wal *w, uint32_t id, sr_wal_group **out)
{
	struct sr_wal_group *g;
	int rv;

	if (out)
		*out = NULL;
	if (!w || !out || id == 0) {
		if (w)
			wal_io_logf(w, SR_LOG_ERROR,
				    "wal: group id %u refused: group ids "
				    "start at 1 (0 is the WAL's own log)",
				    id);
		return SR_EINVAL;
	}
	if ((rv = wal_queue_failed(w)))
		return rv;
	g = wal_group_find(w, id);
	if (g && g->is_open) {
		wal_io_logf(w, SR_LOG_ERROR, "wal: group %u is already open",
			    id);
		return SR_ESTATE;
	}
	if (!g && !(g = wal_group_add(w, id)))
		return SR_ENOMEM;
	if (!g->has_meta) {
		/* the group exists on disk from here on (see the top) */
		if ((rv = wal_io_meta_create(g))) {
			wal_group_remove(w, g);
			wal_queue_stop(w, rv);
			return rv;
		}
		g->has_meta = 1;
	}
	g->is_open = 1;
	*out = g;
	return 0;
}

const sr_storage_ops *sr_wal_group_storage_ops(void)
{
	return &wal_log_ops;
}

void sr_wal_group_set_done(sr_wal_group *g, sr_wal_done_fn done, void *ctx)
{
	g->done = done;
	g->done_ctx = ctx;
}

void sr_wal_group_close(sr_wal_group *g)
{
	if (!g || g->id == 0)
		return;
	g->is_open = 0;
	g->done = NULL;
	g->done_ctx = NULL;
	wal_snap_discard(g);
}

uint32_t sr_wal_group_id(const sr_wal_group *g)
{
	return g->id;
}

int sr_wal_group_drop(sr_wal *w, uint32_t id)
{
	struct sr_wal_group *g;
	char name[48];
	int rv;

	if (!w || id == 0)
		return SR_EINVAL;
	g = wal_group_find(w, id);
	if (!g)
		return SR_ENOTFOUND;
	if (g->is_open) {
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: group %u is open: close it before dropping "
			    "it",
			    id);
		return SR_ESTATE;
	}
	if ((rv = wal_queue_failed(w)))
		return rv;
	/* 1. the meta file: from here on the group is being dropped */
	wal_io_group_name(name, sizeof(name), id, "meta");
	if ((unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT) ||
	    fsync(w->dirfd) != 0) {
		rv = wal_io_error_code(errno);
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: dropping group %u: deleting %s/%s: %s", id,
			    w->dir, name, strerror(errno));
		wal_queue_stop(w, rv);
		return rv;
	}
	g->has_meta = 0;
	/* 2. forget its records and its hard state, durably */
	if ((rv = wal_plan_put_marker(g, WAL_REC_DROP, 0)) ||
	    (rv = wal_queue_drain(w)))
		return rv;
	/* 3. its snapshot and lost files */
	if ((rv = wal_snap_delete_all(g))) {
		wal_queue_stop(w, rv);
		return rv;
	}
	wal_queue_forget_group(w, g);
	wal_group_remove(w, g);
	wal_io_logf(w, SR_LOG_INFO, "wal: group %u dropped", id);
	/* it may have pinned segments nobody else needs */
	rv = wal_plan_schedule_delete(w);
	w->eng->kick(w);
	return rv;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int sr_wal_groups(const sr_wal *cw, uint32_t *ids, size_t cap, size_t *n)
{
	const sr_wal *w = cw;
	size_t k = 0;

	for (size_t i = 0; i < w->gtab_cap; i++) {
		const struct sr_wal_group *g = w->gtab[i];

		if (g && g->has_meta) {
			if (k < cap)
				ids[k] = g->id;
			k++;
		}
	}
	if (k > 1 && ids)
		qsort(ids, k < cap ? k : cap, sizeof(*ids), cmp_u32);
	*n = k;
	return k > cap ? SR_ETOOBIG : 0;
}
