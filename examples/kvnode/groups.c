/*
 * groups.c — the slot ranges and their Raft groups.
 *
 * --groups N splits the 16384 Redis Cluster slots into N contiguous
 * ranges, group i holding [i*16384/N, (i+1)*16384/N - 1], and every
 * kvnode process hosts a member of every group.  A process is one Redis
 * Cluster "node" address; it is the master of the ranges whose group it
 * leads, so clients send each key straight to its group's leader.  The
 * map is fixed by N alone: every process computes the same one, and a
 * restart with the same N finds its slots where they were.
 *
 * A keyed command runs in its key's group (cmds.c).  A command without
 * keys (DBSIZE, KEYS, SCAN, RANDOMKEY, WAIT) runs in the home group: the
 * first group this process leads, so that it is answered where it is
 * asked, over that group's slots only.
 *
 * Balancing.  Group i prefers the (i mod V)-th voter by id (V voters), so
 * with as many groups as processes each process leads one.  Elections do
 * not know that: after start-up or a failover one process may lead
 * several groups.  Every KV_BALANCE_MS a leader hands each group it
 * leads but does not prefer to the preferred member (a leadership
 * transfer, thesis §3.10), once that member is live and caught up.  A
 * transfer to a member that is down would pause the group's writes for
 * an election timeout, hence the liveness test; a member that comes
 * back gets its groups back the same way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kvnode.h"

#define KV_BALANCE_MS 1000

unsigned kv_group_first_slot(unsigned idx, unsigned n)
{
	return (unsigned)((uint64_t)idx * KV_SLOTS / n);
}

struct kv_group *kv_group_of_slot(struct kv_server *s, unsigned slot)
{
	unsigned n = s->ngroups;
	unsigned g = (unsigned)((uint64_t)slot * n / KV_SLOTS);

	/* the estimate is off by at most one either way */
	while (g > 0 && slot < s->groups[g].first_slot)
		g--;
	while (g + 1 < n && slot > s->groups[g].last_slot)
		g++;
	return &s->groups[g];
}

int kv_cmd_is_leader(struct kv_group *g)
{
	sr_status st;

	if (!g->node)
		return 0;
	sr_node_status(g->node, &st);
	return st.role == SR_LEADER;
}

struct kv_group *kv_group_home(struct kv_server *s)
{
	for (unsigned i = 0; i < s->ngroups; i++)
		if (kv_cmd_is_leader(&s->groups[i]))
			return &s->groups[i];
	return &s->groups[0];
}

int kv_groups_init(struct kv_server *s)
{
	unsigned n = s->opt.groups ? s->opt.groups : 1;

	s->groups = calloc(n, sizeof(*s->groups));
	if (!s->groups)
		return -1;
	s->ngroups = n;
	for (unsigned i = 0; i < n; i++) {
		struct kv_group *g = &s->groups[i];
		g->s = s;
		g->idx = i;
		g->first_slot = kv_group_first_slot(i, n);
		g->last_slot = kv_group_first_slot(i + 1, n) - 1;
		if (kv_map_init(&g->fsm.map))
			return -1;
	}
	return 0;
}

void kv_groups_free(struct kv_server *s)
{
	for (unsigned i = 0; s->groups && i < s->ngroups; i++) {
		struct kv_group *g = &s->groups[i];
		kv_map_free(&g->fsm.map);
		if (g->fsm.sessions.b)
			kv_map_free(&g->fsm.sessions);
	}
	free(s->groups);
	s->groups = NULL;
	s->ngroups = 0;
}

/*
 * The slot map follows from N alone, so data written with one N is
 * misplaced under another (keys in the wrong group).  DIR/groups records
 * N (absent: 1); a start with another N is refused.
 */
int kv_groups_check_dir(struct kv_server *s)
{
	char path[4200], raft[4200], old[4200];
	unsigned long had = 1;
	struct stat st;
	int recorded = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/groups", s->opt.data_dir);
	snprintf(raft, sizeof(raft), "%s/raft", s->opt.data_dir);
	snprintf(old, sizeof(old), "%s/raft-g1", s->opt.data_dir);
	if (stat(old, &st) == 0) {
		/* kvnode of 2026-12-06 kept a WAL per group */
		kv_log(s, SR_LOG_ERROR,
		       "%s holds a WAL per group (an earlier kvnode); this "
		       "one keeps every group in %s: start with a new --data "
		       "directory",
		       s->opt.data_dir, raft);
		return -1;
	}
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%lu", &had) != 1)
			had = 0;
		fclose(f);
		recorded = 1;
	} else if (errno != ENOENT) {
		kv_log(s, SR_LOG_ERROR, "cannot read %s: %s", path,
		       strerror(errno));
		return -1;
	} else if (s->ngroups == 1 || stat(raft, &st) == 0) {
		had = 1; /* made before --groups, or with one group */
	} else {
		had = s->ngroups; /* a new data directory */
	}
	if (had != s->ngroups) {
		kv_log(s, SR_LOG_ERROR,
		       "%s holds data of --groups %lu, not %u: the slot map "
		       "would differ (start with --groups %lu, or a new "
		       "--data directory)",
		       s->opt.data_dir, had, s->ngroups, had);
		return -1;
	}
	if (recorded || s->ngroups == 1)
		return 0;
	f = fopen(path, "w");
	if (!f || fprintf(f, "%u\n", s->ngroups) < 0 || fclose(f)) {
		kv_log(s, SR_LOG_ERROR, "cannot write %s", path);
		return -1;
	}
	return 0;
}

/* The voter group g prefers as its leader, or 0 (no voters known). */
static sr_id preferred_leader(const struct kv_group *g)
{
	sr_id ids[SR_MAX_MEMBERS];
	size_t n = 0;

	for (uint32_t i = 0; i < g->conf.n; i++) {
		const sr_member *m = &g->conf.members[i];
		size_t j;
		if (m->role != SR_ROLE_VOTER)
			continue;
		for (j = n; j > 0 && ids[j - 1] > m->id; j--)
			ids[j] = ids[j - 1];
		ids[j] = m->id;
		n++;
	}
	return n ? ids[g->idx % n] : 0;
}

/* 1 if target is a follower of g's leader (this node) that answers and
 * holds every committed entry: a transfer to it completes at once. */
static int ready_for_transfer(struct kv_group *g, sr_id target)
{
	sr_peer_status ps[SR_MAX_MEMBERS];
	size_t np = sr_node_peer_status(g->node, ps, SR_MAX_MEMBERS);
	uint64_t now = kv_now_ms(g->s);
	sr_status st;

	sr_node_status(g->node, &st);
	if (np > SR_MAX_MEMBERS)
		np = SR_MAX_MEMBERS;
	for (size_t i = 0; i < np; i++) {
		if (ps[i].id != target)
			continue;
		return ps[i].state == SR_PROGRESS_REPLICATE &&
		       ps[i].match >= st.commit_index &&
		       now >= ps[i].last_heard_ms &&
		       now - ps[i].last_heard_ms <= g->s->opt.heartbeat_ms * 3;
	}
	return 0;
}

static void balance_tick(sr_loop *loop, uint64_t id, void *ctx)
{
	struct kv_server *s = ctx;

	(void)id;
	s->balance_timer = 0;
	if (s->stopping)
		return;
	kv_raft_sync_time(s);
	for (unsigned i = 0; i < s->ngroups; i++) {
		struct kv_group *g = &s->groups[i];
		sr_id want = preferred_leader(g);
		if (!want || want == s->opt.id || !kv_cmd_is_leader(g) ||
		    !ready_for_transfer(g, want))
			continue;
		if (sr_group_transfer(g->grp, want) == 0) {
			g->n_transfers++;
			kv_log(s, SR_LOG_INFO,
			       "group %u: handing leadership to node %llu "
			       "(its preferred leader)",
			       i, (unsigned long long)want);
		}
	}
	sr_loop_timer_add(loop, KV_BALANCE_MS, balance_tick, s,
			  &s->balance_timer);
}

int kv_balance_start(struct kv_server *s)
{
	if (s->ngroups < 2)
		return 0; /* one group: whoever wins the election leads */
	return sr_loop_timer_add(s->loop, KV_BALANCE_MS, balance_tick, s,
				 &s->balance_timer);
}

void kv_balance_stop(struct kv_server *s)
{
	if (s->balance_timer && s->loop)
		sr_loop_timer_cancel(s->loop, s->balance_timer);
	s->balance_timer = 0;
}
