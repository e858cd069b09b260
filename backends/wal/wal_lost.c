/*
 * wal_lost.c — protocol-aware repair's record of entries lost to
 * corruption: each group's `lost` file (g<id>.lost for the groups other
 * than 0; docs/storage-format.md has its layout).
 *
 * Recovery (wal_recover.c) or the snapshot loader (wal_snap.c), before
 * it cuts damaged records or deletes a damaged snapshot, raises the
 * group's lost file to the highest index those held (wal_lost_note), so
 * that a crash in the middle of a repair finds the range again.  With it
 * goes a bound of their terms: the group's durable term when the loss
 * was found, kept from the first loss on.  At open the file is read
 * (wal_lost_load) and, after the replay, settled (wal_lost_settle): the
 * range is reported by load() until the log holds an entry past it or a
 * snapshot covers it (then the file is deleted), or forgotten at once
 * under SR_WAL_REPAIR_TRUNCATE.  The engine does the rest (lib/repair.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wal_int.h"

int wal_lost_note(struct sr_wal_group *g, sr_index last)
{
	sr_wal *w = g->wal;
	unsigned char buf[WAL_LOST_SIZE];
	char name[32], label[32];
	int rv;

	/* Every entry the group held has a term <= its durable term (a term
	 * is durable before anything of it is appended), so that term
	 * bounds the lost ones; kept from the first loss on, raised only by
	 * a later loss (an entry re-fetched since may carry a higher term).
	 * Not the term of a later restart: terms rise while the node cannot
	 * vote, and a rising bound would refuse every candidate. */
	sr_term term = g->term > g->lost_term ? g->term : g->lost_term;

	if (w->repair != SR_WAL_REPAIR_PEERS)
		return 0;
	if (last < g->lost_last)
		last = g->lost_last;
	if (!last || (last == g->lost_last && term == g->lost_term))
		return 0;
	wal_io_group_name(name, sizeof(name), g->id, "lost");
	wal_fmt_lost_encode(buf, last, term);
	if ((rv = wal_io_write_atomic(w, name, buf, sizeof(buf))))
		return rv;
	g->lost_last = last;
	g->lost_term = term;
	wal_io_logf(w, SR_LOG_WARN,
		    "wal: REPAIR: %s%s may have lost acknowledged entries up "
		    "to %llu; the node re-fetches them from the leader and "
		    "does not vote until it has",
		    w->dir, wal_io_group_label(g, label, sizeof(label)),
		    (unsigned long long)last);
	return 0;
}

int wal_lost_load(struct sr_wal_group *g)
{
	sr_wal *w = g->wal;
	unsigned char buf[WAL_LOST_SIZE + 1];
	const char *why;
	char name[32];
	size_t n;
	int rv;

	wal_io_group_name(name, sizeof(name), g->id, "lost");
	rv = wal_io_read_small(w, name, buf, sizeof(buf), 1, &n);
	if (rv == SR_ENOTFOUND)
		return 0;
	if (rv)
		return rv;
	if (wal_fmt_lost_decode(buf, n, &g->lost_last, &g->lost_term, &why) !=
	    WALFMT_OK) {
		/* without it the node could vote without entries it
		 * acknowledged: never guess */
		wal_io_logf(w, SR_LOG_ERROR,
			    "wal: refusing to open %s: the lost file is "
			    "damaged (%s)",
			    w->dir, name);
		return SR_ECORRUPT;
	}
	return 0;
}

/* After the replay: report the lost range, or forget a repaired one (or,
 * with SR_WAL_REPAIR_TRUNCATE, any). */
int wal_lost_settle(struct sr_wal_group *g)
{
	sr_wal *w = g->wal;
	char name[32], label[32];

	if (!g->lost_last)
		return 0;
	wal_io_group_label(g, label, sizeof(label));
	if (g->last > g->lost_last || g->snap.index >= g->lost_last) {
		wal_io_logf(w, SR_LOG_INFO,
			    "wal: the entries lost up to %llu%s were fetched "
			    "again: repair complete",
			    (unsigned long long)g->lost_last,
			    g->id ? label : "");
	} else if (w->repair == SR_WAL_REPAIR_TRUNCATE) {
		/* The operator's override for a group that cannot elect
		 * while this node waits for entries no electable peer holds
		 * (docs/operations.md): forget the range, vote as if the
		 * entries had never been here. */
		wal_io_logf(w, SR_LOG_WARN,
			    "wal: REPAIR: %s%s: forgetting the lost range "
			    "up to %llu (repair mode truncate): this node "
			    "now votes without the entries it lost, and "
			    "acknowledged entries MAY BE LOST",
			    w->dir, g->id ? label : "",
			    (unsigned long long)g->lost_last);
	} else {
		g->lost_first = g->last + 1 < g->lost_last ? g->last + 1
							   : g->lost_last;
		wal_io_logf(w, SR_LOG_WARN,
			    "wal: %s%s: entries %llu..%llu are to be fetched "
			    "from the leader (the log ends at %llu)",
			    w->dir, g->id ? label : "",
			    (unsigned long long)g->lost_first,
			    (unsigned long long)g->lost_last,
			    (unsigned long long)g->last);
		return 0;
	}
	g->lost_first = g->lost_last = 0;
	g->lost_term = 0;
	wal_io_group_name(name, sizeof(name), g->id, "lost");
	if (unlinkat(w->dirfd, name, 0) != 0 || fsync(w->dirfd) != 0)
		return SR_EIO;
	return 0;
}
