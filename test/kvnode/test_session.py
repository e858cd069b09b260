"""Exactly-once writes with client sessions (SESSION id seq command...).

A client increments a counter 200 times, each INCR named by (session id,
sequence number) and retried unchanged on any failure (-TIMEOUT, MOVED,
TRYAGAIN, CLUSTERDOWN, a dropped connection) until it gets a reply, while
the leader is SIGKILLed and restarted three times and nodes snapshot every
50 entries (so session tables travel through snapshots and restarts).  The
counter must end at exactly 200 and every reply must be the value that
INCR produced the first time.
"""

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Closed, Err, Suite, check, eq  # noqa: E402

suite = Suite("session")


def session_call(c, args, tries=400):
    """Send args to some node until a real reply comes; follow MOVED."""
    nid = random.choice(c.live())
    last = None
    for _ in range(tries):
        if not c.nodes[nid].alive():
            nid = random.choice(c.live())
        try:
            conn = c.conn(nid, timeout=3)
            try:
                r = conn.call(*args)
            finally:
                conn.close()
        except (OSError, Closed) as e:
            last = e
            nid = random.choice(c.live())
            time.sleep(0.05)
            continue
        last = r
        if isinstance(r, Err):
            if r.startswith("MOVED"):
                nid = c.by_client_port(int(r.rsplit(":", 1)[1]))
                continue
            if r.split()[0] in ("TIMEOUT", "TRYAGAIN", "CLUSTERDOWN"):
                time.sleep(0.05)
                continue
        return r
    raise AssertionError("no reply to %r: %r" % (args, last))


@suite.test
def test_incr_retried_through_leader_kills_applies_once():
    c = suite.cluster("session", n=3, extra=["--snapshot-entries", "50",
                                             "--snapshot-trailing", "10"])
    c.start_all()
    c.wait_leader()
    sid = str(random.randrange(1, 1 << 62))
    total = 200
    kills = {50, 110, 160}
    retried = 0
    for seq in range(1, total + 1):
        if seq in kills:
            victim = c.wait_leader()
            c.kill(victim)
            c.start(victim)
        args = ("SESSION", sid, str(seq), "INCR", "counter")
        r = session_call(c, args)
        eq(r, seq, "INCR #%d" % seq)
        # Retrying a write already applied answers its reply again and
        # changes nothing.
        if seq % 25 == 0:
            eq(session_call(c, args), seq)
            retried += 1
    leader = c.wait_leader()
    conn = c.conn(leader)
    eq(conn.call("GET", "counter"), str(total).encode())
    # An older sequence number is refused, not applied.
    r = conn.call("SESSION", sid, "3", "INCR", "counter")
    check(isinstance(r, Err) and "older" in r, r)
    eq(conn.call("GET", "counter"), str(total).encode())
    # Every node (some restored from snapshots) agrees, sessions included:
    # the last write's retry answers the same reply on a restarted node.
    applied = int(c.info(leader)["last_applied"])
    for i in c.live():
        c.wait_applied(i, applied)
    # A node restarted from its snapshot (which holds the session table)
    # and made leader answers the retry from its own table.
    victim = [i for i in c.live() if i != leader][0]
    c.kill(victim)
    c.start(victim)
    c.wait_applied(victim, applied)
    check(int(c.info(victim)["snapshot_index"]) > 0, c.info(victim))
    eq(conn.call("CLUSTER", "TRANSFER", str(victim)), "OK")
    conn.close()
    deadline = time.time() + 10
    while c.wait_leader() != victim and time.time() < deadline:
        time.sleep(0.05)
    eq(c.wait_leader(), victim)
    conn = c.conn(victim)
    eq(conn.call("SESSION", sid, str(total), "INCR", "counter"), total)
    eq(conn.call("GET", "counter"), str(total).encode())
    # Other write commands and sessions are independent.
    eq(conn.call("SESSION", "9", "1", "MSET", "a", "1", "{a}b", "2"), "OK")
    eq(conn.call("SESSION", "9", "1", "MSET", "a", "x", "{a}b", "y"), "OK")
    eq(conn.call("GET", "a"), b"1")
    r = conn.call("SESSION", "9", "2", "MSET", "a", "1", "b", "2")
    check(isinstance(r, Err) and r.startswith("CROSSSLOT"), r)
    r = conn.call("SESSION", "9", "2", "GET", "a")
    check(isinstance(r, Err), r)
    conn.close()
    print("  %d retries of applied writes answered from the session table"
          % retried)


if __name__ == "__main__":
    suite.main()
