/*
 * wal_recover.c — opening a WAL: replay and check everything on disk.
 *
 * Order: list the directory (segments, snapshots, leftover temporaries),
 * read the meta file, load the newest snapshot, then replay the segments
 * in sequence order, reading every record and checking its CRC, its
 * batch numbering and its index against the replay state.
 *
 * The replay of each segment, and how a bad record is judged (torn tail
 * or corruption), is wal_replay.c's; this file lists the directory,
 * loads each group's files, drives the replay segment by segment, and
 * decides what a bad record costs: under SR_WAL_REPAIR_NONE corruption
 * fails the open with SR_ECORRUPT and a log line naming the file and
 * offset; the other modes cut the log at the first bad record.
 *
 * Protocol-aware repair (SR_WAL_REPAIR_PEERS, the default; after
 * Alagappan et al., FAST'18).  Cutting the log can drop entries this node
 * acknowledged, and a node that votes without an entry it acknowledged can
 * help elect a leader that lacks a committed entry.  So before anything is
 * cut, the damaged part is surveyed for the highest index it held (every
 * record with a valid CRC past the cut, every later segment header), and
 * that index, lost_last, is written to the `lost` file.  load() reports
 * the range until the log holds an entry past lost_last (an entry there
 * was appended after the cut, so an append's consistency check matched
 * the whole log before it with a leader's, Raft §5.3) or a snapshot
 * covers it; then the file is deleted at the next open.  The engine does
 * the rest (lib/repair.c): it does not vote until a leader has verified
 * its log up to lost_last.  The lost file is written before the cut
 * (and before a damaged snapshot is deleted), so a crash in the middle of
 * a repair finds it again.
 *
 * Reconciling with the snapshot (Raft §7): entries at or below the
 * snapshot index are covered by it; if the log holds the snapshot's
 * index with another term, or ends before it, the log is dropped and
 * restarts after the snapshot (the TRUNCATE/COMPACT records that say so
 * are queued, so that the segment headers written later agree with the
 * replay).
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal_replay.h"

/* ------------------------------------------------------------------ */
/* The directory                                                      */
/* ------------------------------------------------------------------ */

struct list {
	uint64_t *v;
	size_t n, cap;
};

static int list_add(sr_wal *w, struct list *l, uint64_t v)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint64_t *p = wal_mem_realloc(w, l->v, cap * sizeof(*p));

		if (!p)
			return SR_ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = v;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static const char hexdigits[] = "0123456789abcdef";

/* "<16 hex digits><suffix>" -> *v (non-zero). */
static int parse_name(const char *name, const char *suffix, uint64_t *v)
{
	char *end;

	if (strlen(name) != 16 + strlen(suffix) || strcmp(name + 16, suffix))
		return 0;
	for (int i = 0; i < 16; i++)
		if (!strchr(hexdigits, name[i]))
			return 0;
	*v = strtoull(name, &end, 16);
	return *v != 0;
}

/* A file of a group other than 0 (wal_group.c names them). */
enum { GF_META = 0, GF_LOST = 1, GF_SNAP = 2 };

struct gfile {
	uint32_t gid, kind;
	uint64_t idx; /* GF_SNAP: the snapshot's index */
};

struct glist {
	struct gfile *v;
	size_t n, cap;
};

static int glist_add(sr_wal *w, struct glist *l, uint32_t gid, uint32_t kind,
		     uint64_t idx)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct gfile *p = wal_mem_realloc(w, l->v, cap * sizeof(*p));

		if (!p)
			return SR_ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n].gid = gid;
	l->v[l->n].kind = kind;
	l->v[l->n++].idx = idx;
	return 0;
}

static int cmp_gfile(const void *a, const void *b)
{
	const struct gfile *x = a, *y = b;

	if (x->gid != y->gid)
		return x->gid < y->gid ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* "g<8 hex digits>..." -> *gid (non-zero) and *rest (after the digits). */
static int parse_group(const char *name, uint32_t *gid, const char **rest)
{
	uint32_t v = 0;

	if (name[0] != 'g')
		return 0;
	for (int i = 1; i <= 8; i++) {
		const char *d = name[i] ? strchr(hexdigits, name[i]) : NULL;

		if (!d)
			return 0;
		v = v * 16 + (uint32_t)(d - hexdigits);
	}
	*gid = v;
	*rest = name + 9;
	return v != 0;
}

/* One directory entry of a group: listed, deleted (temporary) or not ours. */
static int list_group_file(sr_wal *w, const char *name, struct glist *gl)
{
	const char *rest;
	uint32_t gid;
	uint64_t v;

	if (!parse_group(name, &gid, &rest))
		return 0;
	if (!strcmp(rest, ".meta"))
		return glist_add(w, gl, gid, GF_META, 0);
	if (!strcmp(rest, ".lost"))
		return glist_add(w, gl, gid, GF_LOST, 0);
	if (rest[0] == '-' && parse_name(rest + 1, ".snap", &v))
		return glist_add(w, gl, gid, GF_SNAP, v);
	if (!strcmp(rest, ".meta.tmp") || !strcmp(rest, ".snap.tmp") ||
	    !strcmp(rest, ".lost.tmp"))
		unlinkat(w->dirfd, name, 0); /* half-written */
	return 0;
}

static int list_dir(sr_wal *w, struct list *segs, struct list *snaps,
		    struct glist *gl)
{
	int fd = dup(w->dirfd), rv = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	uint64_t v;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return SR_EIO;
	}
	rewinddir(d);
	while (!rv && (de = readdir(d))) {
		if (parse_name(de->d_name, ".wal", &v))
			rv = list_add(w, segs, v);
		else if (parse_name(de->d_name, ".snap", &v))
			rv = list_add(w, snaps, v);
		else if (!strcmp(de->d_name, "meta.tmp") ||
			 !strcmp(de->d_name, "snap.tmp") ||
			 !strcmp(de->d_name, "lost.tmp") ||
			 !strcmp(de->d_name, "spare.tmp"))
			unlinkat(w->dirfd, de->d_name, 0); /* half-written */
		else
			rv = list_group_file(w, de->d_name, gl);
	}
	closedir(d);
	if (segs->n > 1)
		qsort(segs->v, segs->n, sizeof(uint64_t), cmp_u64);
	if (snaps->n > 1)
		qsort(snaps->v, snaps->n, sizeof(uint64_t), cmp_u64);
	if (gl->n > 1)
		qsort(gl->v, gl->n, sizeof(*gl->v), cmp_gfile);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Protocol-aware repair: the survey                                  */
/* ------------------------------------------------------------------ */

/*
 * Before the cut: how far did the damaged part of the log reach, for
 * each group?  The group a damaged record belonged to is inside the
 * damaged bytes, so every group is marked: at least up to its last
 * entry before the cut (nothing known missing, but a lost TRUNCATE
 * could have been its), and up to its highest entry past the cut.
 */
static int survey(struct replay *s, const struct list *l)
{
	sr_wal *w = s->w;
	int rv;

	if (w->repair != SR_WAL_REPAIR_PEERS)
		return 0; /* _TRUNCATE reports nothing */
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i] < s->stop_seq)
			continue;
		rv = wal_replay_survey_segment(
			s, l->v[i], l->v[i] == s->stop_seq ? s->stop_off : 0);
		if (rv)
			return rv;
	}
	for (size_t i = 0; i <= w->gtab_cap; i++) {
		struct sr_wal_group *g = i < w->gtab_cap ? w->gtab[i] : &w->g0;

		if (!g || !g->has_meta)
			continue;
		rv = wal_lost_note(g, g->survey_max > g->last ? g->survey_max
							      : g->last);
		if (rv)
			return rv;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The groups' files                                                  */
/* ------------------------------------------------------------------ */

/* Files of a group without a meta file: a crash interrupted its drop
 * (wal_group.c deletes the meta file first).  Finish it. */
static int group_files_unlink(sr_wal *w, const struct glist *l, size_t i,
			      size_t j)
{
	char name[48];

	wal_io_logf(w, SR_LOG_INFO,
		    "wal: group %u has files but no meta file: a crash "
		    "interrupted its drop; finishing it",
		    l->v[i].gid);
	for (; i < j; i++) {
		if (l->v[i].kind == GF_SNAP)
			wal_io_snap_name(name, sizeof(name), l->v[i].gid,
					 l->v[i].idx);
		else
			wal_io_group_name(name, sizeof(name), l->v[i].gid,
					  "lost");
		if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT)
			return SR_EIO;
	}
	return fsync(w->dirfd) != 0 ? SR_EIO : 0;
}

/* A group with a meta file: hard state, lost file, newest snapshot. */
static int group_files_load(sr_wal *w, const struct glist *l, size_t i,
			    size_t j)
{
	struct sr_wal_group *g = wal_group_add(w, l->v[i].gid);
	uint64_t *idx;
	size_t k = i + 1, n = 0;
	int rv;

	if (!g)
		return SR_ENOMEM;
	g->has_meta = 1;
	if ((rv = wal_io_meta_read(g)))
		return rv;
	if (k < j && l->v[k].kind == GF_LOST) {
		if ((rv = wal_lost_load(g)))
			return rv;
		k++;
	}
	if (k == j)
		return 0;
	idx = wal_mem_alloc(w, (j - k) * sizeof(*idx));
	if (!idx)
		return SR_ENOMEM;
	for (; k < j; k++)
		idx[n++] = l->v[k].idx;
	rv = wal_snap_load(g, idx, n);
	wal_mem_free(w, idx);
	return rv;
}

static int groups_load(sr_wal *w, const struct glist *l)
{
	int rv = 0;

	for (size_t i = 0, j; i < l->n && !rv; i = j) {
		for (j = i; j < l->n && l->v[j].gid == l->v[i].gid; j++)
			;
		rv = l->v[i].kind == GF_META ? group_files_load(w, l, i, j)
					     : group_files_unlink(w, l, i, j);
	}
	return rv;
}

/* ------------------------------------------------------------------ */
/* Repair, reconciliation, the planner                                */
/* ------------------------------------------------------------------ */

/* Delete segment files with seq >= from, newest first. */
static int drop_from(struct replay *s, const struct list *l, uint64_t from)
{
	sr_wal *w = s->w;

	for (size_t i = l->n; i-- > 0;) {
		if (l->v[i] < from)
			break;
		wal_io_seg_name(s->name, sizeof(s->name), l->v[i]);
		if (unlinkat(w->dirfd, s->name, 0) != 0 && errno != ENOENT)
			return SR_EIO;
		if (fsync(w->dirfd) != 0)
			return SR_EIO;
	}
	while (w->n_segs && w->segs[w->n_segs - 1].seq >= from) {
		close(w->segs[w->n_segs - 1].fd);
		w->n_segs--;
	}
	return 0;
}

static int repair(struct replay *s, const struct list *l)
{
	uint64_t from = s->stop_off ? s->stop_seq + 1 : s->stop_seq;
	int rv;

	wal_io_seg_name(s->name, sizeof(s->name), s->stop_seq);
	wal_io_logf(s->w, SR_LOG_WARN,
		    "wal: REPAIR: truncating the log of %s at %s offset "
		    "%llu; entries after %llu are dropped, acknowledged ones "
		    "included%s",
		    s->w->dir, s->name, (unsigned long long)s->stop_off,
		    (unsigned long long)s->w->g0.last,
		    s->w->repair == SR_WAL_REPAIR_PEERS ? " (to be fetched "
							  "again from the "
							  "leader)"
							: "");
	if ((rv = drop_from(s, l, from)))
		return rv;
	if (s->stop_off) { /* cut inside the segment; zero the rest */
		s->end = s->stop_off;
		s->zero_to = s->w->segs[s->w->n_segs - 1].size;
	}
	/* else the previous segment, intact, is now the last one */
	return 0;
}

/* Queue the records that make a reconciliation durable, then apply. */
static int reset_after_snapshot(struct sr_wal_group *g)
{
	sr_index S = g->snap.index;
	int rv = 0;

	if (g->id) {
		rv = wal_plan_put_marker(g, WAL_REC_RESET, 0);
	} else {
		/* group 0's replay state is exact (the segment headers) */
		if (g->last > S)
			rv = wal_plan_put_marker(g, WAL_REC_TRUNCATE, S + 1);
		if (!rv && S >= g->first)
			rv = wal_plan_put_marker(g, WAL_REC_COMPACT, S);
	}
	if (rv)
		return rv;
	wal_replay_reset(g);
	return 0;
}

static int reconcile(struct replay *s, struct sr_wal_group *g)
{
	sr_wal *w = s->w;
	sr_index S = g->snap.index;
	char label[32];
	sr_term t;
	int rv;

	wal_io_group_label(g, label, sizeof(label));
	if (g->known > g->first && g->last >= g->first)
		return wal_replay_corrupt(
			s, w->n_segs ? w->segs[0].seq : 0, 0, 1,
			"entries %llu..%llu%s are missing: a segment "
			"before this one was lost",
			(unsigned long long)g->first,
			(unsigned long long)g->known - 1, label);
	if (g->first > S + 1)
		return wal_replay_corrupt(s, w->n_segs ? w->segs[0].seq : 0, 0,
					  1,
					  "the log%s starts at %llu but the "
					  "snapshot "
					  "ends at %llu (snapshot file lost?)",
					  label, (unsigned long long)g->first,
					  (unsigned long long)S);
	if (!S || (g->first == S + 1 && g->last >= S))
		return 0;
	if (g->first <= S && S <= g->last) {
		if ((rv = wal_read_term(g, S, &t)))
			return rv;
		if (t == g->snap.term)
			return 0;
		wal_io_logf(w, SR_LOG_WARN,
			    "wal: entry %llu%s has term %llu but the snapshot "
			    "there has term %llu: dropping the log after it "
			    "(Raft §7)",
			    (unsigned long long)S, label, (unsigned long long)t,
			    (unsigned long long)g->snap.term);
	}
	return reset_after_snapshot(g);
}

/*
 * A group whose log cannot be kept at all (entries missing at its
 * start): with protocol-aware repair its whole log is lost, the rest of
 * the WAL is kept; a RESET record restarts it after its snapshot.
 */
static int group_restart(struct sr_wal_group *g)
{
	int rv = wal_lost_note(g, g->last);

	if (!rv)
		rv = wal_plan_put_marker(g, WAL_REC_RESET, 0);
	if (!rv)
		wal_replay_reset(g);
	return rv;
}

/* A group met in the log without a meta file: finish its drop (a DROP
 * record, unless its records already end with one, or with the RESET
 * that dropped a group before format version 3, which had no hard-state
 * records to forget). */
static int ghost_finish(sr_wal *w, struct sr_wal_group *g)
{
	int rv = 0;

	if (!g->drop_last && !(g->reset_last && !g->hs_seg)) {
		wal_io_logf(w, SR_LOG_INFO,
			    "wal: group %u has records but no meta file: a "
			    "crash interrupted its drop; finishing it",
			    g->id);
		rv = wal_plan_put_marker(g, WAL_REC_DROP, 0);
	}
	wal_group_remove(w, g);
	return rv;
}

/* Every group other than 0 after the replay. */
static int groups_settle(struct replay *s)
{
	sr_wal *w = s->w;
	struct sr_wal_group *g;
	int rv;

	for (size_t i = 0; i < w->gtab_cap;) {
		g = w->gtab[i];
		if (g && !g->has_meta) {
			/* removing shifts a later group into slot i, or one
			 * from the start of the table (seen again: harmless,
			 * only ghosts are handled here) */
			if ((rv = ghost_finish(w, g)))
				return rv;
			continue;
		}
		i++;
	}
	for (size_t i = 0; i < w->gtab_cap; i++) {
		if (!(g = w->gtab[i]))
			continue;
		if (!g->seen)
			wal_replay_reset(
				g); /* no record: its snapshot says all */
		rv = reconcile(s, g);
		if (rv == SCAN_REPAIR)
			rv = group_restart(g);
		if (rv)
			return rv;
	}
	return 0;
}

/* Set the log view and the planner from the replay. */
static int finish(struct replay *s)
{
	sr_wal *w = s->w;
	struct sr_wal_group *g0 = &w->g0;
	int rv;

	if (!g0->seen)
		wal_replay_reset(g0); /* RESET and nothing after */
	if (g0->last < g0->first)
		g0->pos_off = g0->pos_n = 0;
	w->next_batch = s->max_batch + 1;
	if (w->n_segs) {
		struct wal_seg *g = &w->segs[w->n_segs - 1];

		if (s->zero_to > s->end) {
			wal_io_logf(w, SR_LOG_INFO,
				    "wal: cut a torn tail of %llu bytes at "
				    "%s/%016llx.wal offset %llu",
				    (unsigned long long)(s->zero_to - s->end),
				    w->dir, (unsigned long long)g->seq,
				    (unsigned long long)s->end);
			if (wal_io_zero_range(g->fd, s->end, s->zero_to)) {
				wal_io_logf(w, SR_LOG_ERROR,
					    "wal: zeroing a torn tail: %s",
					    strerror(errno));
				return wal_io_error_code(errno);
			}
			w->st_torn = s->zero_to - s->end;
		}
		g->written = s->end;
		w->plan_seg = g->seq;
		/* new records go to a segment of the current version:
		 * after an older one the next record starts a new one */
		w->plan_off = g->version < WAL_SEG_VERSION ? g->size : s->end;
		w->plan_size = g->size;
	} else {
		w->plan_seg = s->max_seq;
		w->plan_off = w->plan_size = 0;
	}
	rv = reconcile(s, g0);
	if (rv == SCAN_REPAIR && w->n_groups)
		rv = group_restart(g0); /* others' records are kept */
	if (rv || (rv = groups_settle(s)))
		return rv;
	return wal_plan_schedule_delete(w);
}

/*
 * Term and vote cannot be repaired (a lost vote could elect two
 * leaders), and since format version 3 those of groups other than 0
 * are records in the log: cutting damage out of a version-3 segment
 * may lose one, so protocol-aware repair refuses when groups exist.
 * Only a cut in a segment known to be older, and the last, is safe.
 */
static int hard_state_at_risk(const struct replay *s, const struct list *l)
{
	const struct wal_seg *seg = NULL;

	if (!s->w->n_groups)
		return 0; /* group 0 keeps its term and vote in "meta" */
	for (size_t i = 0; i < s->w->n_segs; i++)
		if (s->w->segs[i].seq == s->stop_seq)
			seg = &s->w->segs[i];
	return !seg || seg->version >= WAL_SEG_VERSION ||
	       l->v[l->n - 1] != s->stop_seq;
}

static int replay(struct replay *s, const struct list *segs)
{
	int rv = 0;

	for (size_t i = 0; i < segs->n && !rv; i++) {
		if (i && segs->v[i] != segs->v[i - 1] + 1) {
			rv = wal_replay_corrupt(
				s, segs->v[i - 1] + 1, 0, 1,
				"segment missing (found %016llx.wal "
				"after %016llx.wal)",
				(unsigned long long)segs->v[i],
				(unsigned long long)segs->v[i - 1]);
			break;
		}
		rv = wal_replay_segment(s, segs->v[i], i + 1 == segs->n);
	}
	if (rv == SCAN_REPAIR && s->w->repair == SR_WAL_REPAIR_PEERS &&
	    hard_state_at_risk(s, segs)) {
		wal_io_logf(s->w, SR_LOG_ERROR,
			    "wal: refusing to open %s: the damaged part of "
			    "the log may hold the term and vote of groups, "
			    "which cannot be repaired (a lost vote could "
			    "elect two leaders); SR_WAL_REPAIR_TRUNCATE cuts "
			    "it anyway",
			    s->w->dir);
		rv = SR_ECORRUPT;
	}
	if (rv == SCAN_REPAIR && !(rv = survey(s, segs)))
		rv = repair(s, segs);
	return rv;
}

/* Group 0 only, its log beyond saving: drop every segment. */
static int drop_whole_log(struct replay *s, const struct list *segs)
{
	sr_wal *w = s->w;
	int rv;

	s->stop_seq = 1;
	s->stop_off = 0;
	if ((rv = wal_lost_note(&w->g0, w->g0.last)) ||
	    (rv = drop_from(s, segs, 0)))
		return rv;
	wal_replay_reset(&w->g0);
	w->plan_seg = s->max_seq;
	w->plan_off = w->plan_size = 0;
	return 0;
}

static int settle_all_lost(sr_wal *w)
{
	int rv = wal_lost_settle(&w->g0);

	for (size_t i = 0; i < w->gtab_cap && !rv; i++)
		if (w->gtab[i])
			rv = wal_lost_settle(w->gtab[i]);
	return rv;
}

int wal_recover(sr_wal *w)
{
	struct list segs = { 0 }, snaps = { 0 };
	struct glist gl = { 0 };
	struct replay s;
	int rv;

	memset(&s, 0, sizeof(s));
	s.w = w;
	s.rd.w = w;
	if ((rv = list_dir(w, &segs, &snaps, &gl)) ||
	    (rv = wal_io_meta_load(w, segs.n || snaps.n || gl.n)) ||
	    (rv = wal_lost_load(&w->g0)) ||
	    (rv = wal_snap_load(&w->g0, snaps.v, snaps.n)) ||
	    (rv = groups_load(w, &gl)))
		goto out;
	s.max_seq = segs.n ? segs.v[segs.n - 1] : 0;
	if (!segs.n)
		wal_replay_reset(&w->g0);
	rv = replay(&s, &segs);
	if (!rv) {
		rv = finish(&s);
		if (rv == SCAN_REPAIR) /* the log cannot be kept at all */
			rv = drop_whole_log(&s, &segs);
	}
	if (!rv)
		rv = settle_all_lost(w);
	if (!rv && w->n_groups)
		wal_io_logf(w, SR_LOG_INFO, "wal: %s: %zu groups besides 0",
			    w->dir, w->n_groups);
out:
	wal_mem_free(w, s.rd.buf);
	wal_mem_free(w, segs.v);
	wal_mem_free(w, snaps.v);
	wal_mem_free(w, gl.v);
	return rv;
}
