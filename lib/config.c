/*
 * config.c — the configuration in effect (thesis §4.1: a server uses the
 * latest configuration in its log, committed or not).
 *
 * Because an appended configuration takes effect at once, a truncation
 * that removes it must roll back to the previous one: conf_rollback()
 * looks for the latest configuration entry below the truncation point,
 * falling back to the snapshot's.  The progress array (one record per
 * member other than this node and removed ids) follows every change,
 * keeping the state of members that stay.
 */
#include <string.h>

#include "node.h"

static void conf_rebuild_progress(sr_node *n)
{
	struct progress *np = NULL;
	uint32_t k = 0;

	if (n->conf.n) {
		np = sr_malloc(n->alloc, n->conf.n * sizeof(*np));
		if (!np) {
			node_stop(n, SR_ENOMEM, "configuration change");
			return;
		}
	}
	for (uint32_t i = 0; i < n->conf.n; i++) {
		const sr_member *m = &n->conf.members[i];
		struct progress *old;
		if (m->id == n->cfg.id || m->role == SR_ROLE_REMOVED)
			continue;
		old = node_progress(n, m->id);
		if (old) {
			np[k] = *old;
			old->infl = NULL; /* moved */
		} else {
			memset(&np[k], 0, sizeof(np[k]));
			np[k].id = m->id;
			repl_reset_progress(n, &np[k]);
			np[k].last_heard = n->now;
		}
		np[k].role = m->role;
		k++;
	}
	for (uint32_t i = 0; i < n->n_prs; i++)
		repl_free_progress(n, &n->prs[i]);
	sr_free(n->alloc, n->prs);
	n->prs = np;
	n->n_prs = k;
}

void conf_set(sr_node *n, const sr_membership *conf, sr_index index)
{
	if (&n->conf != conf)
		n->conf = *conf;
	n->conf_index = index;
	conf_rebuild_progress(n);
	if (n->cfg.host.conf_changed)
		n->cfg.host.conf_changed(n->cfg.host_ctx, &n->conf);
}

int conf_append(sr_node *n, const sr_membership *c, sr_index *index_out)
{
	unsigned char buf[2 + SR_MAX_MEMBERS * (10 + SR_ADDR_MAX)];
	sr_index index = sr_log_last(&n->log) + 1;
	struct log_buf *b;
	int len = sr_membership_encode(c, buf, sizeof(buf)), rv;

	if (len < 0)
		return len;
	b = sr_log_buf_new(n->alloc, (size_t)len, 1);
	if (!b)
		return SR_ENOMEM;
	memcpy(b->data, buf, (size_t)len);
	rv = sr_log_push(&n->log, n->term, SR_ENTRY_CONFIG, b, b->data,
			 (uint32_t)len);
	if (rv) {
		sr_free(n->alloc, b);
		return rv;
	}
	conf_set(n, c, index);
	if (index_out)
		*index_out = index;
	return persist_append(n, index, 1);
}

int conf_entry_appended(sr_node *n, sr_index index, const void *data,
			size_t len)
{
	sr_membership c;
	int rv = sr_membership_decode(&c, data, len);
	if (rv) {
		node_log(n, SR_LOG_ERROR,
			 "configuration entry %llu is malformed",
			 (unsigned long long)index);
		return SR_ECORRUPT;
	}
	conf_set(n, &c, index);
	return 0;
}

int conf_rollback(sr_node *n, sr_index from)
{
	sr_membership c;
	if (n->conf_index < from)
		return 0;
	for (sr_index i = from - 1; i >= n->log.first && i > 0; i--) {
		sr_entry e;
		size_t got = 0;
		if (sr_log_get(&n->log, i, 1, UINT64_MAX, &e, &got) || got != 1)
			break;
		if (e.type != SR_ENTRY_CONFIG)
			continue;
		if (sr_membership_decode(&c, e.data, e.len))
			break;
		node_log(n, SR_LOG_INFO,
			 "configuration rolled back to entry %llu",
			 (unsigned long long)i);
		conf_set(n, &c, i);
		return 0;
	}
	/* No earlier entry: the snapshot's configuration, or none. */
	memset(&c, 0, sizeof(c));
	if (n->log.snap_index)
		c = n->snap_conf;
	conf_set(n, &c, n->log.snap_index);
	return 0;
}

void conf_at(sr_node *n, sr_index index, sr_membership *out)
{
	if (n->conf_index <= index) {
		*out = n->conf;
		return;
	}
	for (sr_index i = index; i >= n->log.first && i > n->log.snap_index;
	     i--) {
		sr_entry e;
		size_t got = 0;
		if (sr_log_get(&n->log, i, 1, UINT64_MAX, &e, &got) || got != 1)
			break;
		if (e.type == SR_ENTRY_CONFIG &&
		    sr_membership_decode(out, e.data, e.len) == 0)
			return;
	}
	*out = n->snap_conf;
}
