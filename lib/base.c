/*
 * base.c — what every engine file uses, and which uses no engine file:
 * the log line, sending a message, stopping on a storage error, telling
 * the host about a role change, and the checks an entry point makes
 * before it acts (is the node running; may this leader act now).
 *
 * It is the bottom of the engine's module graph (docs/design.md §2):
 * nothing here calls another engine file, so any file may call it.
 */
#include <stdarg.h>
#include <stdio.h>

#include "node.h"

void node_log(sr_node *n, int level, const char *fmt, ...)
{
	char line[512];
	int off;
	va_list ap;

	if (!n->cfg.host.log || level < n->cfg.log_level)
		return;
	off = snprintf(line, sizeof(line),
		       "raft[%llu] t%llu %s: ", (unsigned long long)n->cfg.id,
		       (unsigned long long)n->term, sr_role_name(n->role));
	if (off < 0 || (size_t)off >= sizeof(line))
		off = 0;
	va_start(ap, fmt);
	vsnprintf(line + off, sizeof(line) - (size_t)off, fmt, ap);
	va_end(ap);
	n->cfg.host.log(n->cfg.host_ctx, level, line);
}

void node_send(sr_node *n, sr_msg *m)
{
	if (n->role == SR_STOPPED)
		return;
	m->group = n->cfg.group;
	m->from = n->cfg.id;
	if (m->term == 0)
		m->term = n->term;
	/* A failed send is a lost message: Raft retries on its own. */
	(void)n->cfg.transport->send(n->cfg.transport_ctx, m);
}

void node_notify(sr_node *n)
{
	if (n->cfg.host.state_changed)
		n->cfg.host.state_changed(n->cfg.host_ctx, n->role, n->term,
					  n->role == SR_LEADER ? n->cfg.id
							       : n->leader);
}

void node_stop(sr_node *n, int err, const char *what)
{
	if (n->role == SR_STOPPED)
		return;
	node_log(n, SR_LOG_ERROR, "stopping: %s failed: %s", what,
		 sr_strerror(err));
	n->stop_error = err;
	n->role = SR_STOPPED;
	n->leader = 0;
	node_notify(n);
}

/*
 * One answer to "may this leader act now?" for every leader operation:
 * it must be running and leading, not handing leadership over, and (for
 * what appends) not holding entries the store refused (persist.c).  A
 * configuration change also waits until the previous one committed and
 * the leader committed an entry of its own term (Ongaro's 2015 fix of
 * single-server changes); a joint change is one change until the
 * configuration that leaves it is committed.
 */
int node_leader_ready(const sr_node *n, int act)
{
	int rv = node_check_running(n);
	if (rv)
		return rv;
	if (n->role != SR_LEADER)
		return SR_ENOTLEADER;
	if (n->transfer_target)
		return SR_ETRANSFER;
	if (act == LEADER_TRANSFER)
		return 0;
	if (n->backlog)
		return SR_EBUSY; /* the store refused an append (persist.c) */
	if (act == LEADER_CHANGE &&
	    (n->conf_index > n->commit || n->commit < n->term_start ||
	     quorum_is_joint(&n->quorum)))
		return SR_ECONFPENDING;
	return 0;
}
