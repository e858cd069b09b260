"""Membership on a loaded 3-node WAL cluster: a 4th node joins and catches
up by snapshot (the log behind it was compacted), is promoted to voter,
takes over leadership by transfer; an old member is removed; a restarted
node recovers its map from its own snapshot plus log."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Err, Suite, check, eq, parse_info, wait_for  # noqa: E402

suite = Suite("members")

SNAP = ["--snapshot-entries", "500", "--snapshot-trailing", "100"]
NKEYS = 200000


def load(c, leader, n, prefix="key"):
    """n keys in MSETs of 100 (one log entry each), pipelined.

    On a loaded machine leadership may move during the load: a refused
    batch (CLUSTERDOWN, TRYAGAIN, MOVED, TIMEOUT) is sent again to the
    leader of the moment (MSET is idempotent).  Other errors fail."""
    conn = c.conn(leader, timeout=60)
    cmds = []
    for base in range(0, n, 100):
        args = ["MSET"]
        for i in range(base, min(n, base + 100)):
            args += ["%s:%d" % (prefix, i), "value-%d" % i]
        cmds.append(args)
    retryable = ("CLUSTERDOWN", "TRYAGAIN", "MOVED", "TIMEOUT")
    for i in range(0, len(cmds), 200):
        todo = cmds[i:i + 200]
        for attempt in range(20):
            replies = conn.pipeline(todo)
            again = [cmd for cmd, r in zip(todo, replies) if r != "OK"]
            for r in replies:
                if r != "OK":
                    check(str(r).startswith(retryable),
                          "MSET refused: %r" % (r,))
            if not again:
                break
            conn.close()
            leader = c.wait_leader(timeout=30)
            conn = c.conn(leader, timeout=60)
            todo = again
        else:
            check(False, "MSET batch still refused after 20 tries")
    conn.close()


def keys_of(c, nid):
    db = c.info(nid, "keyspace").get("db0", "keys=0")
    return int(db.split(",")[0].split("=")[1])


def member_role(c, nid, of):
    return c.info(nid).get("member_%d" % of, "")


@suite.test
def test_add_transfer_remove_on_a_loaded_cluster():
    # Plain mode: the load's MSETs mix keys of every slot.
    c = suite.cluster("members", n=3, max_nodes=4,
                      extra=SNAP + ["--cluster-mode", "no"])
    c.start_all()
    leader = c.wait_leader()
    t0 = time.time()
    load(c, leader, NKEYS)
    print("  loaded %d keys in %.1fs" % (NKEYS, time.time() - t0))
    inf = c.info(leader)
    check(int(inf["snapshots_taken"]) >= 1, "no snapshot on the leader")
    check(int(inf["first_log_index"]) > 1, "the log was not compacted")

    # Node 4 starts with an empty directory and no --peers: it waits to
    # be added, and learns the members from the leader.
    c.start(4, peers=False)
    n4 = c.nodes[4]
    r, _ = c.follow("CLUSTER", "ADD", "4", "127.0.0.1:%d" % n4.raft_port,
                    "127.0.0.1:%d" % n4.client_port)
    eq(r, "OK")
    t0 = time.time()
    wait_for(lambda: "role=voter" in member_role(c, c.wait_leader(), 4), 30,
             "node 4 promoted to voter")
    commit = int(c.info(c.wait_leader())["commit_index"])
    inf4 = c.wait_applied(4, commit, timeout=30)
    check(int(inf4["snapshots_restored"]) >= 1,
          "node 4 did not catch up by snapshot: %r" % inf4)
    eq(keys_of(c, 4), NKEYS)
    print("  node 4 caught up in %.1fs (snapshot at %s)"
          % (time.time() - t0, inf4["last_restore_index"]))
    # The same id cannot be added twice.
    r, _ = c.follow("CLUSTER", "ADD", "4", "127.0.0.1:1", "127.0.0.1:2")
    check(isinstance(r, Err), r)

    # Leadership moves to the new node.
    old = c.wait_leader()
    eq(c.follow("CLUSTER", "TRANSFER", "4", start=old)[0], "OK")
    wait_for(lambda: c.wait_leader() == 4, 10, "node 4 leads")
    eq(c.follow("SET", "after-transfer", "1")[1], 4)
    eq(c.follow("GET", "key:12345")[0], b"value-12345")

    # Remove an old member; the other three carry on.
    gone = 1
    eq(c.follow("CLUSTER", "REMOVE", str(gone))[0], "OK")
    wait_for(lambda: "role=removed" in member_role(c, 4, gone), 10,
             "node %d removed" % gone)
    c.stop(gone)
    nodes = c.conn(4).call("CLUSTER", "MEMBERS").decode()
    check(" removed" in nodes, nodes)
    for i in range(50):
        eq(c.follow("SET", "after-remove-%d" % i, "x")[0], "OK")
    # Two of the three remaining voters are a majority: kill one more and
    # writes still go through.
    other = [i for i in (2, 3) if i != c.wait_leader()][0]
    c.kill(other)
    eq(c.follow("SET", "two-of-three", "ok")[0], "OK")
    c.start(other)

    # A node restarted from its own snapshot and log has every key.
    victim = [i for i in (2, 3, 4) if i != c.wait_leader()][0]
    c.kill(victim)
    c.start(victim)
    lead = c.wait_leader()
    c.wait_applied(victim, int(c.info(lead)["commit_index"]))
    eq(keys_of(c, victim), keys_of(c, lead))
    eq(c.follow("GET", "two-of-three")[0], b"ok")


@suite.test
def test_cluster_commands_validate_arguments():
    c = suite.cluster("clcmd", n=3)
    c.start_all()
    leader = c.wait_leader()
    conn = c.conn(leader)
    for args in (("CLUSTER", "ADD", "0", "127.0.0.1:1", "127.0.0.1:2"),
                 ("CLUSTER", "ADD", "9", "nohost", "127.0.0.1:2"),
                 ("CLUSTER", "ADD", "9", "127.0.0.1:1/x", "127.0.0.1:2"),
                 ("CLUSTER", "ADD", "9", "127.0.0.1:1"),
                 ("CLUSTER", "REMOVE", "77"),
                 ("CLUSTER", "REMOVE", "x"),
                 ("CLUSTER", "TRANSFER", "77"),
                 ("CLUSTER", "TRANSFER", str(leader)),
                 ("CLUSTER", "BOGUS")):
        r = conn.call(*args)
        check(isinstance(r, Err) and not r.startswith("MOVED"),
              "%r -> %r" % (args, r))
    eq(conn.call("CLUSTER", "MYID"), b"%016x%024x" % (1, leader))
    conn.close()


if __name__ == "__main__":
    suite.main()
