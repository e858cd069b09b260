/*
 * slots.c — the Redis Cluster protocol on top of the Raft groups.
 *
 * Redis Cluster clients (redis-py RedisCluster, ioredis Cluster,
 * redis-cli -c / --cluster, redis-benchmark --cluster) learn the cluster
 * from CLUSTER SLOTS, SHARDS or NODES, hash every key to one of 16384
 * slots (CRC16/XMODEM of the key, or of its {hash tag}) and send the
 * command to the master of that slot; a wrong guess is corrected with
 * "-MOVED <slot> <host:port>".
 *
 * Each Raft group (groups.c) holds one contiguous slot range: the
 * range's master is the group's leader, its replicas the other members
 * (learners are replicas flagged "nofailover").  With --groups 1 that is
 * one shard holding all 16384 slots.  Every node answers from its own
 * view of each group; nodes agree as soon as they agree on the leaders.
 * While a group's leader is unknown a node names itself master of that
 * range, so that a client's next command lands on a live node and is told
 * CLUSTERDOWN or TRYAGAIN there rather than dialling a dead address.
 *
 * CLUSTER SLOTS and SHARDS list one entry per group.  CLUSTER NODES has
 * one line per process, and Redis gives a process one role: a process
 * that leads some groups is a master holding their ranges; one that
 * leads none is shown as a replica of group 0's master.
 *
 * Node ids are the 40 hex digits Redis uses, derived from the cluster id
 * and the Raft id (16 + 24 digits), so they are stable across restarts
 * and the same on every node.
 *
 * A follower that has not heard from its leader for half an election
 * timeout (the engine's leader_age_ms) answers "-TRYAGAIN" instead of
 * MOVED: the leader is probably gone and an election is near, and a
 * client should retry here instead of hammering a closed port.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kvnode.h"

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), bitwise:
 * slot computations are rare enough (once per keyed command) that a
 * table buys nothing measurable. */
static uint16_t crc16(const char *p, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)((unsigned char)p[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021
						      : crc << 1);
	}
	return crc;
}

unsigned kv_key_slot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len);

	/* A hash tag: the bytes between the first '{' and the first '}'
	 * after it, if there is at least one. */
	if (open) {
		size_t from = (size_t)(open - key) + 1;
		const char *close = memchr(open + 1, '}', len - from);
		if (close && close > open + 1)
			return crc16(open + 1, (size_t)(close - open - 1)) &
			       (KV_SLOTS - 1);
	}
	return crc16(key, len) & (KV_SLOTS - 1);
}

void kv_node_name(const struct kv_server *s, sr_id id, char out[41])
{
	snprintf(out, 41, "%016llx%024llx",
		 (unsigned long long)s->opt.cluster_id, (unsigned long long)id);
}

/* Split "host:port" / "[v6]:port"; 0 or -1. */
static int hostport(const char *addr, char *host, size_t hcap, int *port)
{
	const char *colon = strrchr(addr, ':');
	size_t hl;

	if (!colon)
		return -1;
	hl = (size_t)(colon - addr);
	if (hl >= 2 && addr[0] == '[' && colon[-1] == ']') {
		addr++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hcap)
		return -1;
	memcpy(host, addr, hl);
	host[hl] = 0;
	*port = atoi(colon + 1);
	return 0;
}

/* One member as the cluster commands show it. */
struct node_view {
	sr_id id;
	char name[41];
	char host[SR_ADDR_MAX];
	int port, bus_port;
	int master, learner, self;
};

/* The leader of group g as this node names it: itself while unknown. */
static sr_id group_master(const struct kv_group *g)
{
	sr_status st;

	sr_node_status(g->node, &st);
	return st.leader ? st.leader : g->s->opt.id;
}

/* Group g's members (removed ones left out) with the master first. */
static size_t view(struct kv_group *g, struct node_view *v, size_t cap)
{
	struct kv_server *s = g->s;
	const sr_membership *conf = sr_node_membership(g->node);
	sr_id master;
	sr_status st;
	size_t n = 0;

	sr_node_status(g->node, &st);
	master = st.leader ? st.leader : s->opt.id;
	for (uint32_t i = 0; conf && i < conf->n && n < cap; i++) {
		const sr_member *m = &conf->members[i];
		char raft[SR_ADDR_MAX], client[SR_ADDR_MAX], rhost[SR_ADDR_MAX];
		struct node_view *nv = &v[n];
		if (m->role == SR_ROLE_REMOVED ||
		    kv_addr_split(m->addr, raft, sizeof(raft), client,
				  sizeof(client)) ||
		    hostport(client, nv->host, sizeof(nv->host), &nv->port))
			continue;
		if (hostport(raft, rhost, sizeof(rhost), &nv->bus_port))
			nv->bus_port = 0;
		nv->id = m->id;
		kv_node_name(s, m->id, nv->name);
		nv->master = m->id == master;
		nv->learner = m->role == SR_ROLE_LEARNER;
		nv->self = m->id == s->opt.id;
		if (nv->master && n > 0) { /* the master goes first */
			struct node_view t = *nv;
			*nv = v[0];
			v[0] = t;
		}
		n++;
	}
	return n;
}

/* One group's shard (1), or nothing when its members are unknown (0). */
static int shard_entry(struct kv_cmdctx *ctx, struct kv_group *g)
{
	struct node_view v[SR_MAX_MEMBERS];
	size_t n = view(g, v, SR_MAX_MEMBERS);
	int r3 = kv_server_conn_resp3(ctx->c);
	sr_status st;

	if (n == 0)
		return 0;
	sr_node_status(g->node, &st);
	kv_reply_map(ctx->out, 2, r3);
	kv_reply_cstr(ctx->out, "slots");
	kv_reply_array(ctx->out, 2);
	kv_reply_int(ctx->out, g->first_slot);
	kv_reply_int(ctx->out, g->last_slot);
	kv_reply_cstr(ctx->out, "nodes");
	kv_reply_array(ctx->out, n);
	for (size_t i = 0; i < n; i++) {
		kv_reply_map(ctx->out, 7, r3);
		kv_reply_cstr(ctx->out, "id");
		kv_reply_cstr(ctx->out, v[i].name);
		kv_reply_cstr(ctx->out, "port");
		kv_reply_int(ctx->out, v[i].port);
		kv_reply_cstr(ctx->out, "ip");
		kv_reply_cstr(ctx->out, v[i].host);
		kv_reply_cstr(ctx->out, "endpoint");
		kv_reply_cstr(ctx->out, v[i].host);
		kv_reply_cstr(ctx->out, "role");
		kv_reply_cstr(ctx->out, v[i].master ? "master" : "replica");
		kv_reply_cstr(ctx->out, "replication-offset");
		kv_reply_int(ctx->out, (long long)st.commit_index);
		kv_reply_cstr(ctx->out, "health");
		kv_reply_cstr(ctx->out, "online");
	}
	return 1;
}

/* CLUSTER SLOTS: [[first, last, [host, port, id], replicas...], ...],
 * one entry per group whose members are known. */
static void cluster_slots(struct kv_cmdctx *ctx)
{
	struct kv_server *s = ctx->s;
	struct kv_buf body = { 0 };
	size_t entries = 0;

	for (unsigned gi = 0; gi < s->ngroups; gi++) {
		struct kv_group *g = &s->groups[gi];
		struct node_view v[SR_MAX_MEMBERS];
		size_t n = view(g, v, SR_MAX_MEMBERS);
		if (n == 0)
			continue;
		entries++;
		kv_reply_array(&body, 2 + n);
		kv_reply_int(&body, g->first_slot);
		kv_reply_int(&body, g->last_slot);
		for (size_t i = 0; i < n; i++) {
			kv_reply_array(&body, 3);
			kv_reply_cstr(&body, v[i].host);
			kv_reply_int(&body, v[i].port);
			kv_reply_cstr(&body, v[i].name);
		}
	}
	kv_reply_array(ctx->out, entries);
	kv_buf_put(ctx->out, body.p, body.len);
	kv_buf_free(&body);
}

/* CLUSTER SHARDS: one shard per group, its slot range and its nodes. */
static void cluster_shards(struct kv_cmdctx *ctx)
{
	struct kv_server *s = ctx->s;
	struct kv_buf body = { 0 };
	struct kv_buf *out = ctx->out;
	size_t shards = 0;

	ctx->out = &body;
	for (unsigned gi = 0; gi < s->ngroups; gi++)
		shards += shard_entry(ctx, &s->groups[gi]);
	ctx->out = out;
	kv_reply_array(out, shards);
	kv_buf_put(out, body.p, body.len);
	kv_buf_free(&body);
}

/*
 * CLUSTER NODES in Redis's format, one line per node:
 *   <id> <ip:port@bus-port> <flags> <master-id|-> <ping-sent> <pong-recv>
 *   <config-epoch> <link-state> [<slot range>]
 * The bus port is the Raft port.  The config epoch is group 0's Raft
 * term.  A master lists the ranges of the groups it leads, adjacent ones
 * merged.
 */
static void cluster_nodes(struct kv_server *s, struct kv_buf *o)
{
	struct node_view v[SR_MAX_MEMBERS];
	size_t n = view(&s->groups[0], v, SR_MAX_MEMBERS);
	sr_id masters[KV_MAX_GROUPS];
	struct timespec ts;
	unsigned long long now_ms;
	sr_status st;

	for (unsigned g = 0; g < s->ngroups; g++)
		masters[g] = group_master(&s->groups[g]);
	sr_node_status(s->groups[0].node, &st);
	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (unsigned long long)ts.tv_sec * 1000 +
		 (unsigned long long)ts.tv_nsec / 1000000;
	for (size_t i = 0; i < n; i++) {
		int master = 0;
		for (unsigned g = 0; g < s->ngroups; g++)
			master |= masters[g] == v[i].id;
		kv_buf_printf(o, "%s %s:%d@%d %s%s%s %s 0 %llu %llu connected",
			      v[i].name, v[i].host, v[i].port, v[i].bus_port,
			      v[i].self ? "myself," : "",
			      master ? "master" : "slave",
			      v[i].learner ? ",nofailover" : "",
			      master ? "-" : v[0].name,
			      v[i].self ? 0ULL : now_ms,
			      (unsigned long long)st.term);
		for (unsigned g = 0; g < s->ngroups; g++) {
			unsigned last = g;
			if (masters[g] != v[i].id)
				continue;
			while (last + 1 < s->ngroups &&
			       masters[last + 1] == v[i].id)
				last++;
			kv_buf_printf(o, " %u-%u", s->groups[g].first_slot,
				      s->groups[last].last_slot);
			g = last;
		}
		kv_buf_put(o, "\n", 1);
	}
}

/* COUNTKEYSINSLOT / GETKEYSINSLOT: a scan of this node's map. */
static void keys_in_slot(struct kv_cmdctx *ctx, int get)
{
	const struct kv_map *m;
	const struct kv_ent *e = NULL;
	struct kv_buf body = { 0 };
	long long slot, count = LLONG_MAX, n = 0;
	size_t bucket = 0;

	if (ctx->argc != (size_t)(get ? 4 : 3) ||
	    kv_parse_ll(ctx->argv[2], ctx->lens[2], &slot) ||
	    (get && kv_parse_ll(ctx->argv[3], ctx->lens[3], &count))) {
		kv_reply_error(ctx->out, "ERR Invalid slot or number of keys");
		return;
	}
	if (slot < 0 || slot >= KV_SLOTS || count < 0) {
		kv_reply_error(ctx->out, "ERR Invalid slot or number of keys");
		return;
	}
	m = &kv_group_of_slot(ctx->s, (unsigned)slot)->fsm.map;
	while (n < count && (e = kv_map_next(m, &bucket, e)) != NULL) {
		if (kv_key_slot(kv_ent_key(e), e->klen) != (unsigned)slot)
			continue;
		if (get)
			kv_reply_bulk(&body, kv_ent_key(e), e->klen);
		n++;
	}
	if (get) {
		kv_reply_array(ctx->out, (size_t)n);
		kv_buf_put(ctx->out, body.p, body.len);
	} else {
		kv_reply_int(ctx->out, n);
	}
	kv_buf_free(&body);
}

static int sub_is(const struct kv_cmdctx *ctx, const char *s)
{
	return ctx->lens[1] == strlen(s) &&
	       strncasecmp(ctx->argv[1], s, ctx->lens[1]) == 0;
}

int kv_slots_cmd(struct kv_cmdctx *ctx)
{
	char name[41];

	if (sub_is(ctx, "SLOTS")) {
		cluster_slots(ctx);
	} else if (sub_is(ctx, "SHARDS")) {
		cluster_shards(ctx);
	} else if (sub_is(ctx, "NODES")) {
		struct kv_buf text = { 0 };
		cluster_nodes(ctx->s, &text);
		kv_reply_verbatim(ctx->out, text.p ? text.p : "", text.len,
				  kv_server_conn_resp3(ctx->c));
		kv_buf_free(&text);
	} else if (sub_is(ctx, "MYID")) {
		kv_node_name(ctx->s, ctx->s->opt.id, name);
		kv_reply_cstr(ctx->out, name);
	} else if (sub_is(ctx, "KEYSLOT") && ctx->argc == 3) {
		kv_reply_int(ctx->out, kv_key_slot(ctx->argv[2], ctx->lens[2]));
	} else if (sub_is(ctx, "COUNTKEYSINSLOT")) {
		keys_in_slot(ctx, 0);
	} else if (sub_is(ctx, "GETKEYSINSLOT")) {
		keys_in_slot(ctx, 1);
	} else {
		return 0;
	}
	return 1;
}

/*
 * 1 if this process has no connection to the leader's process, either way.
 * Every group shares one connection per peer process, so a leader whose
 * process died is seen at once, even by a group whose engine has not
 * been ticked since (only group 0 is ticked on demand: its leader_age_ms
 * is fresh, the other groups' only as of their last event).
 */
static int leader_unreachable(const struct kv_group *g, sr_id leader)
{
	sr_tcp_peer_info pi;

	if (leader == g->s->opt.id ||
	    sr_tcp_peer_get(sr_server_tcp(g->srv), leader, &pi))
		return 0;
	return pi.state != SR_TCP_UP && !pi.inbound;
}

void kv_slot_redirect(struct kv_server *s, unsigned slot, struct kv_buf *out)
{
	struct kv_group *g = kv_group_of_slot(s, slot);
	uint64_t stale_ms = s->opt.election_ms / 2;
	const char *addr;
	sr_status st;

	/* The engine measures the leader's silence from its last tick. */
	kv_raft_sync_time(s);
	sr_node_status(g->node, &st);
	s->n_moved++;
	if (!st.leader) {
		kv_reply_error(out, "CLUSTERDOWN no leader (an election is "
				    "running or there is no quorum)");
		return;
	}
	if (st.leader_age_ms > stale_ms) {
		kv_reply_errorf(out,
				"TRYAGAIN leader %llu not heard from for %llu "
				"ms",
				(unsigned long long)st.leader,
				(unsigned long long)st.leader_age_ms);
		return;
	}
	if (leader_unreachable(g, st.leader)) {
		kv_reply_errorf(out,
				"TRYAGAIN leader %llu unreachable (no "
				"connection to its process)",
				(unsigned long long)st.leader);
		return;
	}
	addr = kv_raft_client_addr(g, st.leader);
	if (addr)
		kv_reply_errorf(out, "MOVED %u %s", slot, addr);
	else
		kv_reply_error(out, "CLUSTERDOWN the leader's address is "
				    "unknown");
}
