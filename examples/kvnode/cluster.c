/*
 * cluster.c — what kvnode tells about itself (INFO, CLUSTER NODES,
 * CLUSTER INFO) and the commands that change the cluster (CLUSTER ADD,
 * REMOVE, PROMOTE, TRANSFER) or its storage (CLUSTER SNAPSHOT).
 *
 * Every member's address in the Raft configuration is the string
 * "RAFTHOST:PORT/CLIENTHOST:PORT": the engine treats it as opaque, the
 * transport dials the first half, and MOVED redirects name the second.
 *
 * Membership changes go one at a time through the leader (thesis §4.1):
 * CLUSTER ADD makes the new node a learner that the leader promotes to
 * voter once it has caught up (sr_node_add with auto_promote), so adding
 * a node never weakens the quorum while it copies the data.  +OK means
 * the change was proposed; CLUSTER NODES shows when it took effect.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kvnode.h"

static const char *role_text(const struct kv_group *g, const sr_status *st)
{
	const struct kv_server *s = g->s;
	const sr_member *me = sr_membership_find(&g->conf, s->opt.id);

	if (me && me->role == SR_ROLE_REMOVED)
		return "removed";
	switch (st->role) {
	case SR_LEADER:
		return "leader";
	case SR_CANDIDATE:
	case SR_PRECANDIDATE:
		return "candidate";
	case SR_STOPPED:
		return "stopped";
	default:
		return kv_raft_is_learner(s) ? "learner" : "follower";
	}
}

static const char *member_role(uint32_t role)
{
	return role == SR_ROLE_VOTER	 ? "voter"
	       : role == SR_ROLE_LEARNER ? "learner"
					 : "removed";
}

static const char *progress_state(uint32_t st)
{
	return st == SR_PROGRESS_PROBE	     ? "probe"
	       : st == SR_PROGRESS_REPLICATE ? "replicate"
	       : st == SR_PROGRESS_SNAPSHOT  ? "snapshot"
					     : "-";
}

static const sr_peer_status *find_peer(const sr_peer_status *ps, size_t n,
				       sr_id id)
{
	for (size_t i = 0; i < n; i++)
		if (ps[i].id == id)
			return &ps[i];
	return NULL;
}

/* One line per group: where its slots are served from. */
static void info_groups(struct kv_server *s, struct kv_buf *o)
{
	unsigned led = 0;

	for (unsigned i = 0; i < s->ngroups; i++)
		led += kv_cmd_is_leader(&s->groups[i]);
	kv_buf_printf(o, "groups:%u\r\ngroups_led:%u\r\n", s->ngroups, led);
	for (unsigned i = 0; i < s->ngroups; i++) {
		struct kv_group *g = &s->groups[i];
		const char *laddr;
		sr_status st;
		sr_node_status(g->node, &st);
		laddr = st.leader ? kv_raft_client_addr(g, st.leader) : NULL;
		kv_buf_printf(o,
			      "group_%u:slots=%u-%u,role=%s,term=%llu,"
			      "leader_id=%llu,leader_client_addr=%s,"
			      "commit_index=%llu,last_applied=%llu,"
			      "keys=%zu,transfers=%llu\r\n",
			      i, g->first_slot, g->last_slot, role_text(g, &st),
			      (unsigned long long)st.term,
			      (unsigned long long)st.leader, laddr ? laddr : "",
			      (unsigned long long)st.commit_index,
			      (unsigned long long)st.applied_index,
			      g->fsm.map.count,
			      (unsigned long long)g->n_transfers);
	}
}

/* The WAL's counters (the one WAL every group shares): batches are
 * fdatasyncs, so batches / appends is the group commit a benchmark sees. */
static void info_wal(struct kv_server *s, struct kv_buf *o)
{
	sr_wal *w = s->opt.storage_wal ? sr_server_wal(s->groups[0].srv) : NULL;
	sr_wal_stats ws;

	if (!w)
		return;
	sr_wal_get_stats(w, &ws);
	kv_buf_printf(o,
		      "wal_engine:%s\r\nwal_appends:%llu\r\n"
		      "wal_batches:%llu\r\nwal_bytes_written:%llu\r\n"
		      "wal_segments:%llu\r\nwal_pending_bytes:%llu\r\n"
		      "wal_segments_created:%llu\r\n"
		      "wal_segments_zeroed:%llu\r\n"
		      "wal_direct_batches:%llu\r\n",
		      ws.engine == SR_WAL_URING ? "io_uring" : "posix",
		      (unsigned long long)ws.appends,
		      (unsigned long long)ws.batches,
		      (unsigned long long)ws.bytes_written,
		      (unsigned long long)ws.segments,
		      (unsigned long long)ws.pending_bytes,
		      (unsigned long long)ws.segments_created,
		      (unsigned long long)ws.segments_zeroed,
		      (unsigned long long)ws.direct_batches);
}

/* The fields of group 0 (the only one without --groups), then every
 * group's line. */
static void info_raft(struct kv_server *s, struct kv_buf *o)
{
	struct kv_group *g = &s->groups[0];
	const sr_membership *conf = sr_node_membership(g->node);
	sr_peer_status ps[SR_MAX_MEMBERS];
	size_t np = sr_node_peer_status(g->node, ps, SR_MAX_MEMBERS);
	const char *laddr;
	uint64_t now = kv_now_ms(s);
	sr_status st;

	sr_node_status(g->node, &st);
	if (np > SR_MAX_MEMBERS)
		np = SR_MAX_MEMBERS;
	laddr = st.leader ? kv_raft_client_addr(g, st.leader) : NULL;
	kv_buf_printf(o,
		      "# Raft\r\nrole:%s\r\nengine_role:%s\r\nnode_id:%llu\r\n"
		      "term:%llu\r\nvoted_for:%llu\r\nleader_id:%llu\r\n"
		      "leader_client_addr:%s\r\ncommit_index:%llu\r\n"
		      "last_applied:%llu\r\nfirst_log_index:%llu\r\n"
		      "last_log_index:%llu\r\ndurable_index:%llu\r\n"
		      "snapshot_index:%llu\r\nuncommitted_bytes:%llu\r\n"
		      "storage:%s\r\nstorage_error:%s\r\n"
		      "snapshots_taken:%llu\r\nsnapshots_restored:%llu\r\n"
		      "last_restore_index:%llu\r\nrepair_index:%llu\r\n",
		      role_text(g, &st), sr_role_name(st.role),
		      (unsigned long long)st.id, (unsigned long long)st.term,
		      (unsigned long long)st.vote,
		      (unsigned long long)st.leader, laddr ? laddr : "",
		      (unsigned long long)st.commit_index,
		      (unsigned long long)st.applied_index,
		      (unsigned long long)st.first_index,
		      (unsigned long long)st.last_index,
		      (unsigned long long)st.durable_index,
		      (unsigned long long)st.snapshot_index,
		      (unsigned long long)st.uncommitted_bytes,
		      s->opt.storage_wal ? "wal" : "mem",
		      st.error ? sr_strerror(st.error) : "none",
		      (unsigned long long)g->fsm.n_snapshots,
		      (unsigned long long)g->fsm.n_restores,
		      (unsigned long long)g->fsm.last_restore_index,
		      (unsigned long long)st.repair_index);
	kv_buf_printf(o,
		      "snapshot_fork:%s\r\nsnapshot_in_progress:%d\r\n"
		      "snapshots_forked:%llu\r\nsnapshots_failed:%llu\r\n"
		      "snapshot_last_ms:%llu\r\nsnapshot_fork_us:%llu\r\n",
		      g->fsm.loop ? "yes" : "no", g->fsm.snap_pid != 0,
		      (unsigned long long)g->fsm.n_snap_forked,
		      (unsigned long long)g->fsm.n_snap_failed,
		      (unsigned long long)(g->fsm.last_snap_us / 1000),
		      (unsigned long long)g->fsm.last_fork_us);
	info_wal(s, o);
	kv_buf_printf(o, "members:%u\r\n", conf ? conf->n : 0);
	for (uint32_t i = 0; conf && i < conf->n; i++) {
		const sr_member *m = &conf->members[i];
		const sr_peer_status *p = find_peer(ps, np, m->id);
		kv_buf_printf(o, "member_%llu:role=%s,addr=%s,self=%d",
			      (unsigned long long)m->id, member_role(m->role),
			      m->addr, m->id == s->opt.id);
		if (p && st.role == SR_LEADER)
			kv_buf_printf(
				o,
				",match=%llu,next=%llu,state=%s,inflight="
				"%u,"
				"last_heard_ms_ago=%llu,auto_promote=%d",
				(unsigned long long)p->match,
				(unsigned long long)p->next,
				progress_state(p->state), p->inflight_msgs,
				(unsigned long long)(now > p->last_heard_ms
							     ? now - p->last_heard_ms
							     : 0),
				p->auto_promote);
		kv_buf_put(o, "\r\n", 2);
	}
	info_groups(s, o);
}

/* An estimate of the heap the map holds: entries, their headers, and the
 * bucket array (malloc's own overhead is not counted). */
static uint64_t kv_used_memory(const struct kv_server *s)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < s->ngroups; i++) {
		const struct kv_map *m = &s->groups[i].fsm.map;
		n += m->bytes + (uint64_t)m->count * sizeof(struct kv_ent) +
		     (uint64_t)m->nb * sizeof(struct kv_ent *);
	}
	return n;
}

/* Keys, keys with a time to live, and key and value bytes, over every
 * group this node hosts. */
static void totals(const struct kv_server *s, size_t *keys, size_t *ttls,
		   uint64_t *bytes)
{
	*keys = *ttls = 0;
	*bytes = 0;
	for (unsigned i = 0; i < s->ngroups; i++) {
		const struct kv_map *m = &s->groups[i].fsm.map;
		*keys += m->count;
		*ttls += kv_map_ttl_count(m);
		*bytes += m->bytes;
	}
}

void kv_info(struct kv_server *s, const char *section, struct kv_buf *o)
{
	int all = !strcasecmp(section, "all") ||
		  !strcasecmp(section, "default") ||
		  !strcasecmp(section, "everything");
	size_t keys, ttls;
	uint64_t bytes;

	totals(s, &keys, &ttls, &bytes);
	if (all || !strcasecmp(section, "server"))
		kv_buf_printf(
			o,
			"# Server\r\nredis_version:7.0.0\r\n"
			"kvnode_version:%d.%d.%d\r\nredis_mode:%s\r\n"
			"process_id:%ld\r\nclient_addr:%s\r\nraft_addr:%s\r\n"
			"uptime_in_seconds:%llu\r\n\r\n",
			SR_VERSION_MAJOR, SR_VERSION_MINOR, SR_VERSION_PATCH,
			s->opt.plain ? "standalone" : "cluster", (long)getpid(),
			s->opt.client_addr, s->opt.raft_addr,
			(unsigned long long)(kv_now_ms(s) - s->started_ms) /
				1000);
	if (all || !strcasecmp(section, "clients"))
		kv_buf_printf(o,
			      "# Clients\r\nconnected_clients:%u\r\n"
			      "maxclients:%u\r\n\r\n",
			      s->n_conns, s->opt.max_clients);
	if (all || !strcasecmp(section, "memory"))
		kv_buf_printf(o,
			      "# Memory\r\nused_memory:%llu\r\n"
			      "used_memory_human:%.2fM\r\n"
			      "used_memory_dataset:%llu\r\n"
			      "maxmemory:0\r\nmaxmemory_policy:"
			      "noeviction\r\n\r\n",
			      (unsigned long long)kv_used_memory(s),
			      (double)kv_used_memory(s) / (1024.0 * 1024.0),
			      (unsigned long long)bytes);
	if (all || !strcasecmp(section, "stats"))
		kv_buf_printf(o,
			      "# Stats\r\ntotal_connections_received:%llu\r\n"
			      "rejected_connections:%llu\r\n"
			      "total_commands_processed:%llu\r\nwrites:%llu\r\n"
			      "write_batches:%llu\r\nwrite_batch_waits:%llu\r\n"
			      "write_batches_in_flight_max:%llu\r\n"
			      "reads:%llu\r\nredirects:%llu\r\ntimeouts:%"
			      "llu\r\n"
			      "protocol_errors:%llu\r\n"
			      "client_output_buffer_limit_disconnections:%llu"
			      "\r\nclient_query_buffer_limit_disconnections:"
			      "%llu\r\nclient_idle_timeout_disconnections:%llu"
			      "\r\n\r\n",
			      (unsigned long long)s->n_accepted,
			      (unsigned long long)s->n_rejected_conns,
			      (unsigned long long)s->n_commands,
			      (unsigned long long)s->n_writes,
			      (unsigned long long)s->n_wbatches,
			      (unsigned long long)s->n_wbatch_waits,
			      (unsigned long long)s->n_wbatch_inflight_max,
			      (unsigned long long)s->n_reads,
			      (unsigned long long)s->n_moved,
			      (unsigned long long)s->n_timeouts,
			      (unsigned long long)s->n_proto_errors,
			      (unsigned long long)s->n_obuf_disconnects,
			      (unsigned long long)s->n_qbuf_disconnects,
			      (unsigned long long)s->n_idle_disconnects);
	if (all || !strcasecmp(section, "replication")) {
		sr_status st;
		sr_node_status(kv_group_home(s)->node, &st);
		kv_buf_printf(o,
			      "# Replication\r\nrole:%s\r\nconnected_slaves:%u"
			      "\r\nmaster_repl_offset:%llu\r\n\r\n",
			      st.role == SR_LEADER ? "master" : "slave",
			      st.role == SR_LEADER ? st.n_peers : 0,
			      (unsigned long long)st.commit_index);
	}
	if (all || !strcasecmp(section, "cluster"))
		kv_buf_printf(o, "# Cluster\r\ncluster_enabled:%d\r\n\r\n",
			      !s->opt.plain);
	if (all || !strcasecmp(section, "raft")) {
		info_raft(s, o);
		kv_buf_put(o, "\r\n", 2);
	}
	if (all || !strcasecmp(section, "peerauth")) {
		sr_tcp_auth_stats a;
		sr_tcp_auth_stats_get(sr_server_tcp(s->groups[0].srv), &a);
		kv_buf_printf(o,
			      "# PeerAuth\r\npeer_auth:%s\r\n"
			      "peer_auth_ok:%llu\r\npeer_auth_failures:%llu\r\n"
			      "peer_auth_bad_proof:%llu\r\n"
			      "peer_auth_replayed:%llu\r\n"
			      "peer_auth_no_auth:%llu\r\n"
			      "peer_auth_unexpected:%llu\r\n"
			      "peer_auth_malformed:%llu\r\n"
			      "peer_auth_abandoned:%llu\r\n\r\n",
			      a.enabled ? "on" : "off",
			      (unsigned long long)a.ok,
			      (unsigned long long)a.failures,
			      (unsigned long long)a.bad_proof,
			      (unsigned long long)a.replayed,
			      (unsigned long long)a.no_auth,
			      (unsigned long long)a.unexpected,
			      (unsigned long long)a.malformed,
			      (unsigned long long)a.abandoned);
	}
	if (all || !strcasecmp(section, "keyspace")) {
		kv_buf_printf(o, "# Keyspace\r\n");
		if (keys)
			kv_buf_printf(o,
				      "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n",
				      keys, ttls);
	}
}

/*
 * CLUSTER MEMBERS (kvnode's own view; CLUSTER NODES is Redis's format, in
 * slots.c): one line per member,
 *   <id> <raft-addr> <client-addr> <role>[,myself][,leader] <match> <next> <state>
 * match/next/state are the leader's view of that member ("-" elsewhere).
 */
static void cluster_nodes(struct kv_server *s, struct kv_buf *o)
{
	const sr_node *node = s->groups[0].node;
	const sr_membership *conf = sr_node_membership(node);
	sr_peer_status ps[SR_MAX_MEMBERS];
	size_t np = sr_node_peer_status(node, ps, SR_MAX_MEMBERS);
	sr_status st;

	sr_node_status(node, &st);
	if (np > SR_MAX_MEMBERS)
		np = SR_MAX_MEMBERS;
	for (uint32_t i = 0; conf && i < conf->n; i++) {
		const sr_member *m = &conf->members[i];
		const sr_peer_status *p = find_peer(ps, np, m->id);
		char raft[SR_ADDR_MAX], client[SR_ADDR_MAX];
		if (kv_addr_split(m->addr, raft, sizeof(raft), client,
				  sizeof(client))) {
			snprintf(raft, sizeof(raft), "%s", m->addr);
			snprintf(client, sizeof(client), "-");
		}
		kv_buf_printf(o, "%llu %s %s %s%s%s", (unsigned long long)m->id,
			      raft, client, member_role(m->role),
			      m->id == s->opt.id ? ",myself" : "",
			      m->id == st.leader ? ",leader" : "");
		if (m->id == s->opt.id && st.role == SR_LEADER)
			kv_buf_printf(o, " %llu %llu self\n",
				      (unsigned long long)st.last_index,
				      (unsigned long long)st.last_index + 1);
		else if (p && st.role == SR_LEADER)
			kv_buf_printf(o, " %llu %llu %s\n",
				      (unsigned long long)p->match,
				      (unsigned long long)p->next,
				      progress_state(p->state));
		else
			kv_buf_printf(o, " - - -\n");
	}
}

static void cluster_info(struct kv_server *s, struct kv_buf *o)
{
	const sr_membership *conf = sr_node_membership(s->groups[0].node);
	uint32_t voters = 0, known = 0, slots_ok = 0, nmasters = 0;
	sr_id masters[KV_MAX_GROUPS];
	sr_status st;

	/* Slots are ok where their group has a leader; the cluster's size
	 * is the number of distinct leaders (Redis: masters with slots). */
	for (unsigned i = 0; i < s->ngroups; i++) {
		const struct kv_group *g = &s->groups[i];
		uint32_t k;
		sr_node_status(g->node, &st);
		if (!st.leader)
			continue;
		slots_ok += g->last_slot - g->first_slot + 1;
		for (k = 0; k < nmasters && masters[k] != st.leader; k++)
			;
		if (k == nmasters)
			masters[nmasters++] = st.leader;
	}
	sr_node_status(s->groups[0].node, &st);
	for (uint32_t i = 0; conf && i < conf->n; i++) {
		if (conf->members[i].role != SR_ROLE_REMOVED)
			known++;
		if (conf->members[i].role == SR_ROLE_VOTER)
			voters++;
	}
	/* Redis's fields first, then kvnode's (cluster_leader and
	 * cluster_commit_index: group 0's). */
	kv_buf_printf(o,
		      "cluster_state:%s\r\ncluster_slots_assigned:16384\r\n"
		      "cluster_slots_ok:%u\r\ncluster_slots_pfail:0\r\n"
		      "cluster_slots_fail:%u\r\ncluster_known_nodes:%u\r\n"
		      "cluster_size:%u\r\ncluster_current_epoch:%llu\r\n"
		      "cluster_my_epoch:%llu\r\ncluster_my_id:%llu\r\n"
		      "cluster_leader:%llu\r\ncluster_voters:%u\r\n"
		      "cluster_commit_index:%llu\r\n",
		      slots_ok == KV_SLOTS ? "ok" : "fail", slots_ok,
		      KV_SLOTS - slots_ok, known, nmasters,
		      (unsigned long long)st.term, (unsigned long long)st.term,
		      (unsigned long long)s->opt.id,
		      (unsigned long long)st.leader, voters,
		      (unsigned long long)st.commit_index);
}

/* ------------------------------------------------------------------ */
/* CLUSTER                                                            */
/* ------------------------------------------------------------------ */

static int arg_is(const struct kv_cmdctx *ctx, size_t i, const char *s)
{
	return ctx->lens[i] == strlen(s) &&
	       strncasecmp(ctx->argv[i], s, ctx->lens[i]) == 0;
}

static int arg_id(struct kv_cmdctx *ctx, size_t i, sr_id *id)
{
	long long v;

	if (kv_parse_ll(ctx->argv[i], ctx->lens[i], &v) || v < 1) {
		kv_reply_error(ctx->out, "ERR node id must be an integer >= 1");
		return -1;
	}
	*id = (sr_id)v;
	return 0;
}

/* "host:port" with a non-empty host, a numeric port, no '/' or blanks. */
static int addr_ok(const char *p, size_t len)
{
	const char *colon = NULL;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '/' || p[i] <= ' ' || p[i] == 0x7f)
			return 0;
		if (p[i] == ':')
			colon = p + i;
	}
	if (!colon || colon == p || colon == p + len - 1)
		return 0;
	for (const char *q = colon + 1; q < p + len; q++)
		if (*q < '0' || *q > '9')
			return 0;
	return 1;
}

/* Not group g's leader: MOVED to it, or CLUSTERDOWN. */
static void not_leader(struct kv_cmdctx *ctx, struct kv_group *g)
{
	sr_status st;
	const char *addr;

	sr_node_status(g->node, &st);
	ctx->s->n_moved++;
	addr = st.leader && st.leader != ctx->s->opt.id
		       ? kv_raft_client_addr(g, st.leader)
		       : NULL;
	if (addr)
		kv_reply_errorf(ctx->out, "MOVED %u %s", g->first_slot, addr);
	else
		kv_reply_error(ctx->out, "CLUSTERDOWN no leader");
}

static void reply_rc(struct kv_cmdctx *ctx, int rc)
{
	kv_raft_kick(ctx->s);
	switch (rc) {
	case 0:
		kv_reply_simple(ctx->out, "OK");
		break;
	case SR_ENOTLEADER:
		not_leader(ctx, &ctx->s->groups[0]);
		break;
	case SR_EEXIST:
		kv_reply_error(ctx->out, "ERR that node id is in use or was "
					 "used before (ids are never reused)");
		break;
	case SR_ECONFPENDING:
		kv_reply_error(ctx->out, "TRYAGAIN a configuration change is "
					 "still being committed");
		break;
	case SR_ETRANSFER:
		kv_reply_error(ctx->out, "TRYAGAIN a leadership transfer is in "
					 "progress");
		break;
	case SR_ENOTFOUND:
		kv_reply_error(ctx->out, "ERR no such node");
		break;
	default:
		kv_reply_errorf(ctx->out, "ERR %s", sr_strerror(rc));
	}
}

/* Membership changes with one group: on its leader.  With several, each
 * group would need the change on its own leader; not supported yet. */
static int leader_or_moved(struct kv_cmdctx *ctx)
{
	sr_status st;

	if (ctx->s->ngroups > 1) {
		kv_reply_error(ctx->out, "ERR membership changes are not "
					 "supported with --groups > 1");
		return 0;
	}
	kv_raft_sync_time(ctx->s);
	sr_node_status(ctx->s->groups[0].node, &st);
	if (st.role == SR_LEADER)
		return 1;
	not_leader(ctx, &ctx->s->groups[0]);
	return 0;
}

/* CLUSTER TRANSFER id: hand over every group this node leads (with one
 * group: that group, MOVED if this node does not lead it). */
static void cluster_transfer(struct kv_cmdctx *ctx, sr_id id)
{
	struct kv_server *s = ctx->s;
	int rc = 0, any = 0;

	if (s->ngroups == 1) {
		if (!leader_or_moved(ctx))
			return;
		reply_rc(ctx, sr_group_transfer(s->groups[0].grp, id));
		return;
	}
	for (unsigned i = 0; i < s->ngroups && rc == 0; i++) {
		if (!kv_cmd_is_leader(&s->groups[i]))
			continue;
		any = 1;
		rc = sr_group_transfer(s->groups[i].grp, id);
	}
	if (!any)
		kv_reply_error(ctx->out, "ERR this node leads no group");
	else
		reply_rc(ctx, rc);
}

/* CLUSTER SNAPSHOT: start every group's (one a child is already
 * writing will do); the reply waits until they are stored (wait.c). */
static int snapshot_all(struct kv_server *s)
{
	int rc = 0;

	for (unsigned i = 0; i < s->ngroups && rc == 0; i++) {
		struct kv_group *g = &s->groups[i];
		sr_status st;

		rc = sr_group_snapshot(g->grp);
		if (rc == SR_EBUSY && g->fsm.snap_pid)
			rc = 0;
		if (rc != SR_ESTATE)
			continue;
		sr_node_status(g->node, &st);
		if (st.role != SR_STOPPED && st.snapshot_index &&
		    st.snapshot_index >= st.applied_index)
			rc = 0; /* the last snapshot is up to date */
	}
	return rc;
}

static void cluster_add(struct kv_cmdctx *ctx)
{
	char addr[SR_ADDR_MAX];
	sr_id id;

	if (ctx->argc != 5) {
		kv_reply_error(ctx->out, "ERR usage: CLUSTER ADD id "
					 "raft-host:port client-host:port");
		return;
	}
	if (arg_id(ctx, 2, &id))
		return;
	if (!addr_ok(ctx->argv[3], ctx->lens[3]) ||
	    !addr_ok(ctx->argv[4], ctx->lens[4]) ||
	    ctx->lens[3] + ctx->lens[4] + 2 > sizeof(addr)) {
		kv_reply_error(ctx->out, "ERR addresses must be host:port "
					 "(and shorter than 127 bytes "
					 "together)");
		return;
	}
	if (!leader_or_moved(ctx))
		return;
	snprintf(addr, sizeof(addr), "%.*s/%.*s", (int)ctx->lens[3],
		 ctx->argv[3], (int)ctx->lens[4], ctx->argv[4]);
	reply_rc(ctx, sr_group_add(ctx->s->groups[0].grp, id, addr, 1));
}

static void cluster_text(struct kv_cmdctx *ctx,
			 void (*fn)(struct kv_server *, struct kv_buf *))
{
	struct kv_buf text = { 0 };

	fn(ctx->s, &text);
	kv_reply_verbatim(ctx->out, text.p ? text.p : "", text.len,
			  kv_server_conn_resp3(ctx->c));
	kv_buf_free(&text);
}

void kv_cluster_cmd(struct kv_cmdctx *ctx)
{
	struct kv_server *s = ctx->s;
	sr_id id;

	if (arg_is(ctx, 1, "MEMBERS")) {
		cluster_text(ctx, cluster_nodes);
	} else if (arg_is(ctx, 1, "INFO")) {
		cluster_text(ctx, cluster_info);
	} else if (arg_is(ctx, 1, "ADD")) {
		cluster_add(ctx);
	} else if (arg_is(ctx, 1, "SNAPSHOT")) {
		int rc = snapshot_all(s);
		if (rc)
			reply_rc(ctx, rc);
		else {
			kv_raft_kick(s);
			kv_wait_snapshot(ctx);
		}
	} else if (ctx->argc != 3) {
		kv_reply_error(ctx->out, "ERR unknown CLUSTER subcommand or "
					 "wrong number of "
					 "arguments (ADD, REMOVE, PROMOTE, "
					 "TRANSFER, NODES, "
					 "INFO, MEMBERS, SNAPSHOT, SLOTS, "
					 "SHARDS, "
					 "NODES, MYID, KEYSLOT)");
	} else if (arg_is(ctx, 1, "REMOVE")) {
		if (arg_id(ctx, 2, &id) == 0 && leader_or_moved(ctx))
			reply_rc(ctx, sr_group_remove(s->groups[0].grp, id));
	} else if (arg_is(ctx, 1, "PROMOTE")) {
		if (arg_id(ctx, 2, &id) == 0 && leader_or_moved(ctx))
			reply_rc(ctx, sr_group_promote(s->groups[0].grp, id));
	} else if (arg_is(ctx, 1, "TRANSFER")) {
		if (arg_id(ctx, 2, &id) == 0)
			cluster_transfer(ctx, id);
	} else {
		kv_reply_error(ctx->out, "ERR unknown CLUSTER subcommand");
	}
}
