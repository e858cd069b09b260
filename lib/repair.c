/*
 * repair.c — a node whose store lost acknowledged entries (protocol-aware
 * recovery, after Alagappan et al., "Protocol-Aware Recovery for
 * Consensus-Based Storage", FAST'18).
 *
 * When a store finds corruption in the middle of its log it does not
 * refuse to start and does not quietly drop the damage: it cuts the log
 * before the first bad entry, keeps term and vote, and reports through
 * load() the highest index the damaged part held (sr_durable.lost_last).
 * Entries up to there may have been acknowledged, and an acknowledged
 * entry may be committed, counted by its leader on this node's word.
 *
 * How it must vote.  Raft's election restriction (§5.4.1) keeps
 * committed entries because every quorum of voters meets the quorum that
 * holds the entry, and a voter holding it refuses a candidate whose log
 * is behind.  A voter that lost the entry and compared candidates with
 * its shortened log would grant such a vote: with three servers, an
 * entry held by A and B, B's copy damaged, C (without it) could win with
 * B's vote and overwrite it.  So while the range is missing the node
 * never campaigns (it would count its own vote), and it grants a vote or
 * a pre-vote only to a candidate whose log is at least as up-to-date as
 * its log *was* before the damage: last index >= lost_last with a last
 * term >= the term it had durably then (repair_term, an upper bound of
 * the damaged last entry's term; higher is stricter, so the store keeps
 * the term of when it found the loss, sr_durable.lost_term, rather than
 * the one of a later restart, which elections the node could not win
 * may have raised past every candidate's last term).  That is the
 * very check a voter that kept its log would make, so the proof of
 * Leader Completeness (§5.4.3) goes through unchanged: a candidate whose
 * last term is higher got it from a leader that held every entry
 * committed before, and one with the same last term and a log at least
 * as long holds the same entry at lost_last, hence (log matching) all
 * before it.  The check against the current log applies too.  Refusing
 * every vote would be safe as well, but a cluster of three with one
 * repairing node and one that cannot count its own vote (a leader that
 * removed itself, §4.2.2) would then elect no one.  Its earlier
 * acknowledgements stay valid: the leader counted them when the entries
 * were durable.
 *
 * How it repairs.  Nothing new on the wire: the node is a follower with
 * a shorter log.  The leader's next append does not match; the
 * rejection's hint names the node's last index and the leader backs up
 * and re-sends (a rejection at or below the leader's match index, which
 * only a store that lost entries sends, lowers that match: see
 * repl_handle_append_resp).  A snapshot the store discarded comes back
 * through the ordinary snapshot transfer.  Repair is complete when an
 * append of the current leader has verified this log up to lost_last
 * (n->verified: the log equals the leader's up to there, by the log
 * matching property of §5.3, so it holds every committed entry the node
 * ever acknowledged, Leader Completeness §5.4) and the store holds it
 * durably.  From then on the node votes as any other.
 *
 * Superseded.  Repair is also complete once the log durably holds an
 * entry whose term is above repair_term, wherever it stands.  Such an
 * entry came from the leader of its term, whose log holds every entry
 * committed before that term (Leader Completeness) and equals this log
 * up to that entry (Log Matching, §5.3).  A committed lost entry, of a
 * term at most repair_term, sits in that leader's log at its own index;
 * from our entry on the leader's terms are all higher (terms never fall
 * along a log), so it sits before, where this log equals the leader's:
 * it is back.  Whatever else the damaged range held was never committed
 * (a later leader overwrote it), and waiting for it would be waiting for
 * ever: a node whose lost entries no one else held, with the longest log
 * of a two-voter configuration, refused every candidate and never
 * campaigned (simulator seed 700417 with --churn 1).  It is the rule
 * repair_vote_ok() applies to candidates, applied to this node's own log.
 *
 * A node that is the only voter has no one to repair from: it refuses to
 * start (SR_ECORRUPT) instead of serving a log without committed entries.
 */
#include "node.h"

int repair_start(sr_node *n, const sr_durable *d)
{
	if (!d->lost_last)
		return 0;
	n->repair_until = d->lost_last;
	/* the bound from when the loss was found (sr_durable.lost_term):
	 * today's term may have risen in elections this node could not
	 * win, and with it a bound no candidate meets */
	n->repair_term = d->lost_term && d->lost_term < d->term ? d->lost_term
								: d->term;
	node_log(n, SR_LOG_WARN,
		 "store lost entries %llu..%llu: fetching them from the "
		 "leader; no vote until they are back",
		 (unsigned long long)d->lost_first,
		 (unsigned long long)d->lost_last);
	if (progress_self_decides(n)) {
		node_log(n, SR_LOG_ERROR,
			 "store lost entries up to %llu and this node is the "
			 "only voter: no peer holds them",
			 (unsigned long long)d->lost_last);
		return SR_ECORRUPT;
	}
	return 0;
}

int repair_vote_ok(const sr_node *n, sr_index last_index, sr_term last_term)
{
	if (!n->repair_until)
		return 1;
	return last_term > n->repair_term ||
	       (last_term == n->repair_term && last_index >= n->repair_until);
}

/* The term of the last durable entry when it is above repair_term (see
 * "superseded" above), else 0. */
static sr_term repair_superseded(sr_node *n)
{
	int err = 0;
	sr_term t;

	if (n->durable == 0 || n->durable < log_snap_index(&n->log))
		return 0;
	t = log_term(&n->log, n->durable, &err);
	return !err && t > n->repair_term ? t : 0;
}

void repair_check(sr_node *n)
{
	sr_term t;

	if (!n->repair_until)
		return;
	if (n->role == SR_FOLLOWER && n->verified >= n->repair_until &&
	    n->durable >= n->repair_until)
		node_log(n, SR_LOG_INFO,
			 "repaired: the log matches leader %llu up to %llu; "
			 "voting again",
			 (unsigned long long)n->leader,
			 (unsigned long long)n->repair_until);
	else if ((t = repair_superseded(n)) != 0)
		node_log(n, SR_LOG_INFO,
			 "repaired: the log holds entry %llu of term %llu, "
			 "above the lost entries' %llu, so what was lost up to "
			 "%llu and is not in it was never committed; voting "
			 "again",
			 (unsigned long long)n->durable, (unsigned long long)t,
			 (unsigned long long)n->repair_term,
			 (unsigned long long)n->repair_until);
	else
		return;
	n->repair_until = 0;
}
