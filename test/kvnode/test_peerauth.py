"""Peer authentication with --cluster-secret-file on real kvnode processes:
a cluster whose nodes share the secret elects a leader and replicates; a
node with the wrong secret cannot join (it hears nothing, and the others
refuse it and count it in INFO peerauth); restarted with the right secret
it catches up; a node with no secret is refused too; a rotation (new
secret as the second line, then first) keeps the cluster up; and kvnode
refuses to start on an unreadable, empty, short or world-readable file."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Suite, check, eq, wait_for  # noqa: E402

suite = Suite("peerauth")

GOOD = "a-cluster-secret-for-the-peerauth-test-0123456789"
OTHER = "a-different-secret-that-must-not-work-9876543210"


def secret_file(c, name, text, mode=0o600):
    path = os.path.join(c.dir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def auth(c, nid):
    return c.info(nid, "peerauth")


def count(c, nid, field):
    return int(auth(c, nid).get(field, "0"))


def set_and_get(c, key, value):
    r, _ = c.follow("SET", key, value)
    eq(r, "OK")
    r, _ = c.follow("GET", key)
    eq(r, value.encode())


@suite.test
def test_a_cluster_with_the_secret_works_and_a_wrong_secret_cannot_join():
    c = suite.cluster("peerauth", n=3)
    good = secret_file(c, "good", GOOD + "\n")
    bad = secret_file(c, "bad", OTHER + "\n")
    c.start(1, extra=["--cluster-secret-file", good])
    c.start(2, extra=["--cluster-secret-file", good])
    c.start(3, extra=["--cluster-secret-file", bad])
    leader = c.wait_leader(timeout=20, among=[1, 2])
    check(leader in (1, 2), "leader %r" % leader)
    set_and_get(c, "k1", "v1")
    for nid in (1, 2):
        a = auth(c, nid)
        eq(a["peer_auth"], "on")
        check(int(a["peer_auth_ok"]) >= 2, "node %d: %r" % (nid, a))
    # The others refuse node 3 (its proofs are wrong) and count it;
    # node 3 refuses them in turn.
    for nid in (1, 2):
        wait_for(lambda: count(c, nid, "peer_auth_bad_proof") >= 1,
                 timeout=15, what="node %d to count node 3" % nid)
        eq(count(c, nid, "peer_auth_failures"),
           count(c, nid, "peer_auth_bad_proof"))
    wait_for(lambda: count(c, 3, "peer_auth_bad_proof") >= 1, timeout=15,
             what="node 3 to refuse the others")
    # ... and each side sees the other hang up after its challenge
    wait_for(lambda: count(c, 1, "peer_auth_abandoned") >= 1, timeout=15,
             what="node 1 to see node 3 hang up")
    eq(count(c, 3, "peer_auth_ok"), 0)
    inf3 = c.info(3)
    eq(inf3["last_applied"], "0", "node 3 got entries")
    check(inf3["leader_id"] in ("0", ""), "node 3 follows %r"
          % inf3["leader_id"])
    with open(c.nodes[1].log, "rb") as f:
        log1 = f.read().decode(errors="replace")
    check("failed authentication" in log1 and "connection from 127.0.0.1:"
          in log1, "no refusal line in node 1's log")

    # Restarted with the right secret, node 3 joins and catches up.
    c.stop(3)
    c.start(3, extra=["--cluster-secret-file", good])
    r, _ = c.follow("SET", "k2", "v2")
    eq(r, "OK")
    leader = c.wait_leader(timeout=20)
    idx = int(c.info(leader)["commit_index"])
    c.wait_applied(3, idx, timeout=20)
    check(count(c, 3, "peer_auth_ok") >= 2, "node 3 did not authenticate")


@suite.test
def test_a_node_without_the_secret_is_refused():
    c = suite.cluster("peerauth-none", n=3)
    good = secret_file(c, "good", GOOD + "\n")
    c.start(1, extra=["--cluster-secret-file", good])
    c.start(2, extra=["--cluster-secret-file", good])
    c.start(3)  # no secret at all
    c.wait_leader(timeout=20, among=[1, 2])
    for nid in (1, 2):
        wait_for(lambda: count(c, nid, "peer_auth_no_auth") >= 1,
                 timeout=15, what="node %d to refuse node 3" % nid)
    eq(auth(c, 3)["peer_auth"], "off")
    wait_for(lambda: count(c, 3, "peer_auth_unexpected") >= 1, timeout=15,
             what="node 3 to refuse authenticated peers")
    eq(c.info(3)["last_applied"], "0")


@suite.test
def test_a_rolling_rotation_keeps_the_cluster_up():
    c = suite.cluster("peerauth-rot", n=3)
    old = secret_file(c, "old", GOOD + "\n")
    both = secret_file(c, "both", GOOD + "\n" + OTHER + "\n")
    swapped = secret_file(c, "swapped", OTHER + "\n" + GOOD + "\n")
    new = secret_file(c, "new", OTHER + "\n")
    for nid in (1, 2, 3):
        c.start(nid, extra=["--cluster-secret-file", old])
    c.wait_leader(timeout=20)
    step = 0
    # 1: add the new secret as accepted; 2: prove with it; 3: drop the
    # old one.  One node at a time, the cluster answering throughout.
    for path in (both, swapped, new):
        for nid in (1, 2, 3):
            c.stop(nid)
            c.start(nid, extra=["--cluster-secret-file", path])
            step += 1
            set_and_get(c, "rot%d" % step, "v%d" % step)
    leader = c.wait_leader(timeout=20)
    idx = int(c.info(leader)["commit_index"])
    for nid in (1, 2, 3):
        c.wait_applied(nid, idx, timeout=20)
        eq(count(c, nid, "peer_auth_failures"), 0, "node %d" % nid)


@suite.test
def test_kvnode_refuses_a_bad_secret_file():
    c = suite.cluster("peerauth-files", n=1)
    node = c.nodes[1]
    base = [c.kvnode, "--id", "1", "--data", node.dir,
            "--client", "127.0.0.1:%d" % node.client_port,
            "--raft", "127.0.0.1:%d" % node.raft_port]
    cases = [
        (os.path.join(c.dir, "missing"), "cannot read"),
        (secret_file(c, "empty", ""), "holds no secret"),
        (secret_file(c, "short", "tooshort\n"), "16..1024 bytes"),
        (secret_file(c, "world", GOOD + "\n", 0o644), "accessible by others"),
        (secret_file(c, "three", "%s\n%s\n%s\n" % (GOOD, OTHER, GOOD)),
         "more than two secrets"),
    ]
    for path, why in cases:
        t0 = time.time()
        p = subprocess.run(base + ["--cluster-secret-file", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        eq(p.returncode, 2, path)
        err = p.stderr.decode()
        check(why in err, "%s: %r" % (path, err))
        check(time.time() - t0 < 20)
    check(not os.path.exists(os.path.join(node.dir, "raft")),
          "kvnode touched its data directory")


suite.main()
