/*
 * conf_track.c — the configuration in effect (thesis §4.1: a server uses the
 * latest configuration in its log, committed or not), and the ones it
 * may have to fall back to.  "conf" here and in node.h's conf_* fields
 * always means a Raft configuration (a membership, membership.c), never
 * the node's settings (sr_config).
 *
 * Because an appended configuration takes effect at once, a truncation
 * that removes it must roll back to the previous one.  So conf_track.c tracks
 * two things and never searches the log:
 *
 *   conf_applied    the configuration at the applied index (the latest
 *                   configuration entry at or below it, or the
 *                   snapshot's), kept by value as entries are applied;
 *   conf_pending    the indexes of the configuration entries above it,
 *                   in order; the last is the one in effect.
 *
 * Entries above the applied index are always in the log cache (apply.c
 * evicts only applied ones), so rolling back decodes one cached entry.
 * A truncation never reaches applied entries (they are committed).
 *
 * Every change of the configuration in effect goes through conf_set(),
 * which rebuilds the per-peer progress records (progress.c) and tells the
 * host.
 */
#include <string.h>

#include "node.h"

static void conf_set(sr_node *n, const sr_membership *conf, sr_index index)
{
	if (&n->conf != conf)
		n->conf = *conf;
	n->conf_index = index;
	progress_rebuild(n);
	if (n->cfg.host.conf_changed)
		n->cfg.host.conf_changed(n->cfg.host_ctx, &n->conf);
}

int conf_check_given(sr_node *n, const sr_membership *conf, const char *what)
{
	uint32_t voters = 0;
	if (n->started)
		return SR_ESTATE;
	if (n->have_bootstrap || n->have_recover) {
		node_log(n, SR_LOG_ERROR,
			 "%s: a configuration was given already", what);
		return SR_EEXIST;
	}
	if (!conf || conf->n == 0 || conf->n > SR_MAX_MEMBERS) {
		node_log(n, SR_LOG_ERROR, "configuration: %u members",
			 conf ? conf->n : 0);
		return SR_EINVAL;
	}
	for (uint32_t i = 0; i < conf->n; i++) {
		const sr_member *m = &conf->members[i];
		if (m->id == 0 || m->new_role ||
		    (m->role != SR_ROLE_VOTER && m->role != SR_ROLE_LEARNER &&
		     m->role != SR_ROLE_REMOVED)) {
			node_log(n, SR_LOG_ERROR,
				 "configuration: member %u has id %llu, "
				 "role %u",
				 i, (unsigned long long)m->id, m->role);
			return SR_EINVAL;
		}
		if (m->role == SR_ROLE_VOTER)
			voters++;
		for (uint32_t j = 0; j < i; j++)
			if (conf->members[j].id == m->id) {
				node_log(n, SR_LOG_ERROR,
					 "configuration: id %llu twice",
					 (unsigned long long)m->id);
				return SR_EINVAL;
			}
	}
	if (voters == 0) {
		node_log(n, SR_LOG_ERROR, "configuration: no voter");
		return SR_EINVAL;
	}
	return 0;
}

static int conf_pending_push(sr_node *n, sr_index index)
{
	if (n->conf_pending_n == n->conf_pending_cap) {
		uint32_t ncap = n->conf_pending_cap ? n->conf_pending_cap * 2
						    : 8;
		sr_index *p = hook_realloc(n->alloc, n->conf_pending,
					   ncap * sizeof(*p));
		if (!p)
			return SR_ENOMEM;
		n->conf_pending = p;
		n->conf_pending_cap = ncap;
	}
	n->conf_pending[n->conf_pending_n++] = index;
	return 0;
}

/* Decode the cached configuration entry at index. */
static int conf_read(sr_node *n, sr_index index, sr_membership *out)
{
	const struct log_slot *s = log_cached(&n->log, index);
	if (!s || s->type != SR_ENTRY_CONFIG ||
	    sr_membership_decode(out, s->data, s->len)) {
		node_stop(n, SR_ECORRUPT, "reading a configuration entry");
		return SR_ECORRUPT;
	}
	return 0;
}

int conf_append(sr_node *n, const sr_membership *c, sr_index *index_out)
{
	unsigned char buf[CONF_MAX_BYTES];
	sr_index index = log_last(&n->log) + 1;
	struct log_buf *b;
	int len = sr_membership_encode(c, buf, sizeof(buf)), rv;

	if (len < 0)
		return len;
	b = log_buf_new(n->alloc, (size_t)len, 1);
	if (!b)
		return SR_ENOMEM;
	memcpy(b->data, buf, (size_t)len);
	rv = log_push(&n->log, n->term, SR_ENTRY_CONFIG, b, b->data,
		      (uint32_t)len);
	if (rv) {
		hook_free(n->alloc, b);
		return rv;
	}
	rv = conf_pending_push(n, index);
	if (rv) {
		log_truncate(&n->log, index);
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
	rv = conf_pending_push(n, index);
	if (rv) {
		node_stop(n, rv, "configuration change");
		return rv;
	}
	conf_set(n, &c, index);
	return 0;
}

void conf_entry_applied(sr_node *n, sr_index index, const void *data,
			size_t len)
{
	if (n->conf_pending_n && n->conf_pending[0] == index) {
		n->conf_pending_n--;
		memmove(n->conf_pending, n->conf_pending + 1,
			n->conf_pending_n * sizeof(*n->conf_pending));
	}
	if (n->conf_index == index)
		n->conf_applied = n->conf;
	else if (sr_membership_decode(&n->conf_applied, data, len))
		node_stop(n, SR_ECORRUPT, "applying a configuration entry");
	n->conf_applied_index = index;
}

void conf_rollback(sr_node *n, sr_index from)
{
	sr_membership c;
	if (n->conf_index < from)
		return;
	while (n->conf_pending_n &&
	       n->conf_pending[n->conf_pending_n - 1] >= from)
		n->conf_pending_n--;
	if (n->conf_pending_n) {
		sr_index i = n->conf_pending[n->conf_pending_n - 1];
		if (conf_read(n, i, &c))
			return;
		node_log(n, SR_LOG_INFO,
			 "configuration rolled back to entry %llu",
			 (unsigned long long)i);
		conf_set(n, &c, i);
		return;
	}
	/* No entry above the applied index is left. */
	c = n->conf_applied;
	conf_set(n, &c, n->conf_applied_index);
}

void conf_snapshot_installed(sr_node *n, const sr_membership *c, sr_index index)
{
	uint32_t drop = 0;
	while (drop < n->conf_pending_n && n->conf_pending[drop] <= index)
		drop++;
	/* drop == 0 also covers a node that never had a pending entry,
	 * whose array is still NULL (memmove must not see it). */
	if (drop) {
		n->conf_pending_n -= drop;
		memmove(n->conf_pending, n->conf_pending + drop,
			n->conf_pending_n * sizeof(*n->conf_pending));
	}
	n->conf_applied = *c;
	n->conf_applied_index = index;
	if (n->conf_index <= index)
		conf_set(n, c, index);
}

void conf_start(sr_node *n, const sr_membership *c, sr_index index)
{
	n->conf_pending_n = 0;
	n->conf_applied = *c;
	n->conf_applied_index = index;
	if (index)
		conf_set(n, c, index);
}

void conf_previous(sr_node *n, sr_membership *out)
{
	memset(out, 0, sizeof(*out));
	if (n->conf_pending_n >= 2)
		(void)conf_read(n, n->conf_pending[n->conf_pending_n - 2], out);
	else
		*out = n->conf_applied;
}

void conf_free(sr_node *n)
{
	hook_free(n->alloc, n->conf_pending);
	n->conf_pending = NULL;
	n->conf_pending_n = n->conf_pending_cap = 0;
}
