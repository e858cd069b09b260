"""Protocol-aware repair on a live 3-node WAL cluster: bytes flipped in the
middle of a node's acknowledged WAL segment (a follower's, then, in a
second test, the leader's) while it is down.  On restart the node does
not refuse to start and does not silently drop the damage: its WAL cuts
the log before the bad record and reports the lost range, the node
re-fetches the entries from the leader, rejoins, and its data is intact:
every key is read back through it once it leads (CLUSTER TRANSFER), and
no acknowledged write is lost anywhere in the cluster."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Suite, check, eq, wait_for  # noqa: E402

suite = Suite("repair")

N_KEYS = 300
SEGMENT = 1 << 20  # small segments: quick to scan from Python


def write_keys(c, lo, hi):
    """SET k:i v:i for i in [lo, hi) through the leader, pipelined."""
    lead = c.wait_leader()
    conn = c.conn(lead)
    try:
        for b in range(lo, hi, 50):
            cmds = [("SET", "k:%d" % i, "v:%d" % i)
                    for i in range(b, min(b + 50, hi))]
            for r in conn.pipeline(cmds):
                eq(r, "OK", "a write on leader %d" % lead)
    finally:
        conn.close()


def segments(node):
    out = []
    for root, _, files in os.walk(node.dir):
        out += [os.path.join(root, f) for f in files if f.endswith(".wal")]
    return sorted(out)


def write_tail(c, n=20):
    """n single writes, each awaited: the log then ends in small batches,
    so a flip 40% into a segment cannot land in its last batch (a damaged
    last batch reads as a torn write and is cut, not repaired)."""
    lead = c.wait_leader()
    conn = c.conn(lead)
    try:
        for i in range(n):
            eq(conn.call("SET", "tail:%d" % i, "t"), "OK", "a tail write")
    finally:
        conn.close()


def corrupt_middle(node):
    """Flip 16 bytes 40% into the written part of the node's biggest
    segment: acknowledged records, far from the last batch."""
    segs = segments(node)
    check(segs, "no WAL segment under %s" % node.dir)
    best, data = None, b""
    for p in segs:
        with open(p, "rb") as f:
            d = f.read().rstrip(b"\0")
        if len(d) > len(data):
            best, data = p, d
    check(len(data) > 4096, "segment %s holds only %d bytes" % (best, len(data)))
    off = len(data) * 2 // 5
    check(off + 16 < len(data) - 1024,
          "segment %s too short to flip far from its tail" % best)
    with open(best, "r+b") as f:
        f.seek(off)
        old = f.read(16)
        f.seek(off)
        f.write(bytes(b ^ 0x5A for b in old))
    return best, off


def log_text(node):
    with open(node.log, "rb") as f:
        return f.read().decode(errors="replace")


def repaired(c, nid):
    """The node's repair is over and it applied what the leader commits."""
    lead = c.wait_leader()
    commit = int(c.info(lead)["commit_index"])
    inf = c.info(nid)
    return (inf.get("repair_index") == "0"
            and int(inf["last_applied"]) >= commit) and inf


def read_all_through(c, nid):
    """Make nid the leader, then GET every key on it directly."""
    def lead_is_nid():
        lead = c.wait_leader()
        if lead == nid:
            return True
        conn = c.conn(lead)
        try:
            conn.call("CLUSTER", "TRANSFER", str(nid))
        finally:
            conn.close()
        time.sleep(0.3)
        return c.wait_leader() == nid
    wait_for(lead_is_nid, 30, "node %d to lead" % nid, step=0.2)
    conn = c.conn(nid)
    try:
        for b in range(0, N_KEYS, 100):
            idx = range(b, min(b + 100, N_KEYS))
            vals = conn.pipeline([("GET", "k:%d" % i) for i in idx])
            eq(vals, [("v:%d" % i).encode() for i in idx],
               "keys %d.. read through node %d" % (b, nid))
    finally:
        conn.close()


def no_write_lost(c):
    for i in range(N_KEYS):
        r, _ = c.follow("GET", "k:%d" % i)
        eq(r, ("v:%d" % i).encode(), "k:%d cluster-wide" % i)


def run(victim_is_leader):
    name = "repair-leader" if victim_is_leader else "repair-follower"
    c = suite.cluster(name, n=3,
                      extra=["--wal-segment-bytes", str(SEGMENT)])
    c.start_all()
    lead = c.wait_leader()
    write_keys(c, 0, N_KEYS)
    write_tail(c)
    commit = int(c.info(lead)["commit_index"])
    for i in (1, 2, 3):
        c.wait_applied(i, commit)
    victim = lead if victim_is_leader else next(
        i for i in (1, 2, 3) if i != lead)
    c.stop(victim)
    seg, off = corrupt_middle(c.nodes[victim])
    if victim_is_leader:
        c.wait_leader(timeout=15)  # the others elect a new leader
    c.start(victim)
    # The WAL found the damage and reported the range; the node said so.
    text = log_text(c.nodes[victim])
    check("REPAIR" in text and "lost" in text,
          "no repair reported in node %d's log" % victim)
    inf = wait_for(lambda: repaired(c, victim), 30,
                   "node %d to repair and catch up" % victim)
    wait_for(lambda: "repaired:" in log_text(c.nodes[victim]), 10,
             "the engine's repair line")
    # The cluster still takes writes, then reads everything back through
    # the repaired node once it leads.
    write_keys(c, N_KEYS, N_KEYS + 20)
    read_all_through(c, victim)
    no_write_lost(c)
    lost = [l.strip() for l in text.splitlines() if "to be fetched" in l]
    check(lost, "no lost range in node %d's log" % victim)
    print("  node %d: %s flipped at offset %d; %s; repaired, log now "
          "%s..%s" % (victim, os.path.basename(seg), off,
                      lost[-1].split("wal: ", 1)[-1],
                      inf["first_log_index"], inf["last_log_index"]))


@suite.test
def test_follower_with_corrupt_acknowledged_segment_repairs_from_leader():
    run(victim_is_leader=False)


@suite.test
def test_leader_with_corrupt_acknowledged_segment_repairs_and_leads_again():
    run(victim_is_leader=True)


@suite.test
def test_wal_repair_none_refuses_and_truncate_forgets():
    """--wal-repair none: a damaged WAL stops the start.  --wal-repair
    truncate, the operator's override for a group that cannot elect while
    a node waits for entries no electable peer holds: the lost range is
    forgotten, loudly, and the node votes at once.  Here the other two
    hold every write, so nothing is lost."""
    c = suite.cluster("repair-modes", n=3,
                      extra=["--wal-segment-bytes", str(SEGMENT)])
    c.start_all()
    lead = c.wait_leader()
    write_keys(c, 0, N_KEYS)
    write_tail(c)
    commit = int(c.info(lead)["commit_index"])
    for i in (1, 2, 3):
        c.wait_applied(i, commit)
    victim = next(i for i in (1, 2, 3) if i != lead)
    others = [i for i in (1, 2, 3) if i != victim]
    for i in (1, 2, 3):
        c.stop(i)
    corrupt_middle(c.nodes[victim])
    refused = False
    try:
        c.start(victim, extra=["--wal-repair", "none"])
    except RuntimeError:
        refused = True
    check(refused, "node %d started on a damaged WAL with --wal-repair "
          "none" % victim)
    check("SR_ECORRUPT" in log_text(c.nodes[victim]) or
          "corrupt" in log_text(c.nodes[victim]).lower(),
          "no corruption named in node %d's log" % victim)
    # Alone, the default mode records the range and waits for a leader.
    c.start(victim)
    eq(c.info(victim)["repair_index"] != "0", True, "a lost range")
    c.stop(victim)
    c.start(victim, extra=["--wal-repair", "truncate"])
    text = log_text(c.nodes[victim])
    check("forgetting the lost range" in text and "MAY BE LOST" in text,
          "no override warning in node %d's log" % victim)
    eq(c.info(victim)["repair_index"], "0", "the range is forgotten")
    for i in others:
        c.start(i)
    c.wait_leader(timeout=15)
    no_write_lost(c)


suite.main()
