/*
 * server_peers.c — the transport's peer table, shared by every group.
 *
 * One TCP connection per peer process carries every group's messages, so
 * the transport knows each peer once, whatever the number of groups that
 * name it.  The table here counts, for each peer, the groups whose
 * configuration names it (each group remembers which peers it holds a
 * reference on, g->tpeer); the transport learns a peer at its first
 * reference and forgets it (closing its connections) when the last group
 * naming it lets go — a member removed from one group keeps its
 * connection while another group still has it.
 *
 * Addresses.  A member's address string (mapped by transport_addr) is
 * where it is reached.  Every group of a cluster should agree on it; if
 * two configurations disagree, the newest sync wins and a warning names
 * the peer (a member that moved is reached at its new address once any
 * group's configuration says so).
 *
 * When.  The engine reports each new configuration (conf_changed) from
 * inside a call; the table is brought in line after the call returns (a
 * deferred call per group), so the transport is never changed under the
 * engine's feet.  The table has one slot per peer process (a handful), so
 * the linear scans here cost nothing next to a configuration change.
 */
#include "internal/alloc.h"
#include "server_int.h"

#include <stdio.h>
#include <string.h>

static struct server_peer *peer_find(sr_server *s, sr_id id)
{
	for (uint32_t i = 0; i < s->n_peers; i++)
		if (s->peers[i].id == id)
			return &s->peers[i];
	return NULL;
}

static int group_holds(const sr_group *g, sr_id id)
{
	for (uint32_t i = 0; i < g->n_tpeers; i++)
		if (g->tpeer[i] == id)
			return (int)i;
	return -1;
}

/* The transport address of member m, or a negative code (logged). */
static int member_addr(sr_server *s, const sr_member *m, char *addr)
{
	int rc = 0;

	if (s->cfg.transport_addr) {
		addr[0] = 0;
		rc = s->cfg.transport_addr(s->cfg.host_ctx, m, addr,
					   SR_ADDR_MAX);
		addr[SR_ADDR_MAX - 1] = 0;
	} else {
		snprintf(addr, SR_ADDR_MAX, "%s", m->addr);
	}
	return rc;
}

/* Add a reference from g on member m (or update its address). */
static void peer_ref(sr_group *g, const sr_member *m)
{
	sr_server *s = g->srv;
	char addr[SR_ADDR_MAX];
	struct server_peer *p;
	int held = group_holds(g, m->id) >= 0;
	int rc = member_addr(s, m, addr);

	p = peer_find(s, m->id);
	if (rc == 0 && (!p || strcmp(p->addr, addr) != 0)) {
		if (p && p->refs > (uint32_t)held)
			server_log(s, SR_LOG_WARN,
				   "group %u: member %llu at '%s', other "
				   "groups said '%s': using the new one",
				   g->id, (unsigned long long)m->id, addr,
				   p->addr);
		rc = sr_tcp_set_peer(s->tcp, m->id, addr);
	}
	if (rc) {
		server_log(s, SR_LOG_WARN,
			   "member %llu: cannot reach address '%s': %s",
			   (unsigned long long)m->id, m->addr, sr_strerror(rc));
		return;
	}
	if (!p) {
		if (s->n_peers == s->cap_peers) {
			uint32_t cap = s->cap_peers ? s->cap_peers * 2 : 8;
			struct server_peer *t = hook_realloc(
				s->cfg.alloc, s->peers, cap * sizeof(*t));
			if (!t) {
				sr_tcp_remove_peer(s->tcp, m->id);
				server_log(s, SR_LOG_ERROR,
					   "member %llu: out of memory",
					   (unsigned long long)m->id);
				return;
			}
			s->peers = t;
			s->cap_peers = cap;
		}
		p = &s->peers[s->n_peers++];
		memset(p, 0, sizeof(*p));
		p->id = m->id;
	}
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	if (!held && g->n_tpeers < SR_MAX_MEMBERS) {
		g->tpeer[g->n_tpeers++] = m->id;
		p->refs++;
	}
}

/* Drop g's reference on its i-th peer; the last one removes the peer. */
static void peer_unref(sr_group *g, uint32_t i)
{
	sr_server *s = g->srv;
	sr_id id = g->tpeer[i];
	struct server_peer *p = peer_find(s, id);

	g->tpeer[i] = g->tpeer[--g->n_tpeers];
	if (!p || --p->refs > 0)
		return;
	if (s->tcp) { /* NULL once sr_server_destroy() closed it */
		sr_tcp_remove_peer(s->tcp, id);
		server_log(s, SR_LOG_INFO,
			   "member %llu left every group: peer dropped",
			   (unsigned long long)id);
	}
	*p = s->peers[--s->n_peers];
}

void server_peers_sync(sr_group *g, const sr_membership *conf, int drop)
{
	sr_server *s = g->srv;

	for (uint32_t i = 0; i < conf->n; i++) {
		const sr_member *m = &conf->members[i];
		if (m->id != s->cfg.id && m->role != SR_ROLE_REMOVED)
			peer_ref(g, m);
	}
	if (!drop)
		return;
	for (uint32_t i = 0; i < g->n_tpeers;) {
		const sr_member *m = sr_membership_find(conf, g->tpeer[i]);
		if (m && m->role != SR_ROLE_REMOVED)
			i++;
		else
			peer_unref(g, i);
	}
}

void server_peers_release(sr_group *g)
{
	while (g->n_tpeers)
		peer_unref(g, g->n_tpeers - 1);
}

static void peers_deferred(sr_loop *loop, void *ctx)
{
	sr_group *g = ctx;

	(void)loop;
	g->conf_pending = 0;
	server_peers_sync(g, &g->conf, 1);
}

void server_peers_defer(sr_group *g)
{
	if (!g->conf_pending &&
	    sr_loop_defer(g->srv->loop, peers_deferred, g) == 0)
		g->conf_pending = 1;
}

void server_peers_cancel(sr_group *g)
{
	if (g->conf_pending)
		sr_loop_defer_cancel(g->srv->loop, peers_deferred, g);
	g->conf_pending = 0;
}
