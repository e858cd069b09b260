"""Crashes on a 3-node WAL cluster under write load: SIGKILL of the leader
(a new leader within a few election timeouts, writes continue, the old
leader restarts and catches up) and SIGKILL of every node at once (after a
restart, every acknowledged write is there)."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import (Closed, Conn, Err, Suite, check, eq,  # noqa: E402
                    parse_info, wait_for)

suite = Suite("failover")


class Writer(threading.Thread):
    """Writes unique keys (SET w:<tid>:<n> <n>) and INCRs a counter through
    whichever node leads, following MOVED.  Records what was acknowledged;
    anything else (TIMEOUT, a dropped connection) is of unknown outcome."""

    def __init__(self, cluster, tid):
        super().__init__(daemon=True)
        self.c = cluster
        self.tid = tid
        self.acked = {}
        self.max_incr = 0
        self.incr_attempts = 0
        self.unknown = 0
        self.stop_flag = False
        self.conn = None
        self.nid = None

    def _connect(self, nid=None):
        if self.conn:
            self.conn.close()
        self.conn = None
        live = self.c.live()
        if not live:
            time.sleep(0.05)
            return
        self.nid = nid if nid in live else random.choice(live)
        try:
            self.conn = self.c.conn(self.nid, timeout=10)
        except OSError:
            self.conn = None
            time.sleep(0.05)

    def _op(self, *args):
        """The reply, or None if the outcome is unknown."""
        while not self.stop_flag:
            if self.conn is None:
                self._connect()
                continue
            try:
                r = self.conn.call(*args)
            except (OSError, Closed, ValueError):
                self._connect()
                return None  # sent, maybe executed
            if isinstance(r, Err) and r.startswith("MOVED"):
                port = int(r.split()[2].rsplit(":", 1)[1])
                self._connect(self.c.by_client_port(port))
                continue  # MOVED: not executed, safe to resend
            if isinstance(r, Err) and (r.startswith("CLUSTERDOWN")
                                       or r.startswith("TRYAGAIN")):
                time.sleep(0.05)
                self._connect()
                continue
            if isinstance(r, Err) and r.startswith("TIMEOUT"):
                return None
            return r
        return None

    def run(self):
        n = 0
        while not self.stop_flag:
            n += 1
            key = "w:%d:%d" % (self.tid, n)
            r = self._op("SET", key, str(n))
            if r == "OK":
                self.acked[key] = str(n).encode()
            elif r is None:
                self.unknown += 1
            else:
                raise AssertionError("SET %s: %r" % (key, r))
            if n % 4 == 0:
                self.incr_attempts += 1
                r = self._op("INCR", "counter")
                if isinstance(r, int):
                    self.max_incr = max(self.max_incr, r)
        if self.conn:
            self.conn.close()


def run_writers(c, k):
    ws = [Writer(c, t) for t in range(k)]
    for w in ws:
        w.start()
    return ws


def stop_writers(ws):
    for w in ws:
        w.stop_flag = True
    for w in ws:
        w.join(timeout=30)
        check(not w.is_alive(), "writer stuck")


def total_acked(ws):
    return sum(len(w.acked) for w in ws)


def verify(c, ws):
    """Every acknowledged write is present; the counter is consistent."""
    conn_id = c.wait_leader(timeout=15)
    conn = c.conn(conn_id, timeout=30)
    for w in ws:
        keys = list(w.acked)
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            # One GET per key (an MGET of keys of different slots is
            # CROSSSLOT), pipelined.
            got = conn.pipeline([("GET", k) for k in part])
            for k, v in zip(part, got):
                eq(v, w.acked[k], "acknowledged write %s" % k)
    ctr = conn.call("GET", "counter")
    ctr = int(ctr) if ctr is not None else 0
    check(ctr >= max(w.max_incr for w in ws), "counter went back")
    check(ctr <= sum(w.incr_attempts for w in ws), "counter too high")
    conn.close()
    return sum(len(w.acked) for w in ws)


@suite.test
def test_leader_sigkill_new_leader_and_catch_up():
    c = suite.cluster("killleader", n=3, extra=["--timeout-ms", "2000"])
    c.start_all()
    old = c.wait_leader()
    ws = run_writers(c, 3)
    wait_for(lambda: total_acked(ws) > 300, 20, "writes before the crash")
    c.kill(old, signal.SIGKILL)
    t0 = time.time()
    new = c.wait_leader(timeout=10)
    took = time.time() - t0
    check(new != old)
    # A few election timeouts (T = 300 ms, randomized in [T, 2T)).
    check(took < 4.0, "new leader after %.2fs" % took)
    before = total_acked(ws)
    wait_for(lambda: total_acked(ws) > before + 300, 20,
             "writes after the failover")
    # The old leader comes back as a follower and catches up.
    c.start(old)
    time.sleep(0.5)
    stop_writers(ws)
    lead = c.wait_leader()
    commit = int(c.info(lead)["commit_index"])
    inf = c.wait_applied(old, commit, timeout=20)
    check(inf["role"] == "follower", inf["role"])
    n = verify(c, ws)
    keys_leader = c.info(lead, "keyspace")["db0"]
    wait_for(lambda: c.info(old, "keyspace").get("db0") == keys_leader, 10,
             "old leader has the same keys")
    print("  failover in %.2fs; %d writes acknowledged, %d unknown"
          % (took, n, sum(w.unknown for w in ws)))


@suite.test
def test_sigkill_every_node_keeps_acknowledged_writes():
    c = suite.cluster("killall", n=3, extra=["--timeout-ms", "2000"])
    c.start_all()
    c.wait_leader()
    ws = run_writers(c, 4)
    wait_for(lambda: total_acked(ws) > 500, 20, "writes before the crash")
    for i in (1, 2, 3):
        c.nodes[i].proc.send_signal(signal.SIGKILL)
    for i in (1, 2, 3):
        c.nodes[i].proc.wait()
    stop_writers(ws)
    for i in (1, 2, 3):
        c.start(i)
    n = verify(c, ws)
    check(n > 500)
    print("  %d acknowledged writes survived SIGKILL of all nodes" % n)
    # And a second time, right after restart, with no load.
    for i in (1, 2, 3):
        c.kill(i, signal.SIGKILL)
    for i in (1, 2, 3):
        c.start(i)
    verify(c, ws)


@suite.test
def test_reads_stay_linearizable_across_leader_change():
    c = suite.cluster("reads", n=3)
    c.start_all()
    old = c.wait_leader()
    eq(c.follow("SET", "x", "1", start=old)[0], "OK")
    c.kill(old, signal.SIGKILL)
    new = c.wait_leader(timeout=10)
    # The first read on the new leader sees the last acknowledged write.
    eq(c.follow("GET", "x", start=new)[0], b"1")
    eq(c.follow("SET", "x", "2", start=new)[0], "OK")
    c.start(old)
    c.wait_applied(old, int(c.info(new)["commit_index"]))
    # The old leader is a follower now: it redirects instead of serving
    # its own (possibly stale) state.
    conn = c.conn(old)
    r = conn.call("GET", "x")
    check(isinstance(r, Err) and r.startswith("MOVED"), r)
    conn.close()
    eq(c.follow("GET", "x")[0], b"2")


@suite.test
def test_paused_leader_never_serves_stale_data():
    """SIGSTOP the leader, change a key through the new leader, then let
    the old one run again with requests already waiting in its socket: it
    must not return the old value, and a write it could not commit must
    not be reported as done or as not executed when it was."""
    c = suite.cluster("pause", n=3, extra=["--timeout-ms", "3000"])
    c.start_all()
    old = c.wait_leader()
    eq(c.follow("SET", "x", "1", start=old)[0], "OK")
    # Clients already connected to the old leader.
    reader = c.conn(old, timeout=15)
    writer = c.conn(old, timeout=15)
    c.nodes[old].proc.send_signal(signal.SIGSTOP)
    try:
        others = [i for i in c.live() if i != old]
        new = c.wait_leader(among=others, timeout=10)
        eq(c.follow("SET", "x", "2", start=new)[0], "OK")
        reader.send("GET", "x")
        writer.send("SET", "stale", "1")
    finally:
        c.nodes[old].proc.send_signal(signal.SIGCONT)
    r = reader.reply()
    check(r == b"2" or (isinstance(r, Err) and (r.startswith("MOVED") or
                                                 r.startswith("CLUSTERDOWN"))),
          "stale read from the old leader: %r" % (r,))
    w = writer.reply()
    reader.close()
    writer.close()
    lead = c.wait_leader(timeout=10)
    got = c.follow("GET", "stale", start=lead)[0]
    if w == "OK":
        eq(got, b"1", "acknowledged write lost")
    elif isinstance(w, Err) and (w.startswith("MOVED") or
                                 w.startswith("CLUSTERDOWN") or
                                 w.startswith("TRYAGAIN")):
        eq(got, None, "a write answered %r was executed" % w)
    else:
        check(isinstance(w, Err) and w.startswith("TIMEOUT"), w)
    print("  old leader answered GET %r, SET %r" % (r, w))


@suite.test
def test_a_deposed_leader_releases_the_writes_it_held():
    """With one write batch in flight (the default --write-batches 1), a
    leader holds the writes that arrive meanwhile.  If it loses its quorum,
    those must be answered (not executed: redirected or CLUSTERDOWN) once
    it steps down, not kept until the batch in flight is decided, which
    with its followers gone may take until --timeout-ms."""
    c = suite.cluster("held", n=3, extra=["--timeout-ms", "60000"])
    c.start_all()
    leader = c.wait_leader()
    first, second = c.conn(leader, timeout=30), c.conn(leader, timeout=30)
    eq(first.call("SET", "warm", "1"), "OK")
    followers = [i for i in c.live() if i != leader]
    for f in followers:
        c.nodes[f].proc.send_signal(signal.SIGSTOP)
    try:
        first.send("SET", "inflight", "1")   # proposed, cannot commit
        time.sleep(0.2)
        t0 = time.time()
        second.send("SET", "held", "1")      # waits behind it
        w = second.reply()
        took = time.time() - t0
        check(isinstance(w, Err) and (w.startswith("MOVED") or
                                      w.startswith("CLUSTERDOWN")),
              "held write answered %r" % (w,))
        # Check quorum deposes the leader within about two election
        # timeouts (300 ms here); the sweep then releases the batch.
        check(took < 10, "held write answered after %.1f s" % took)
    finally:
        for f in followers:
            c.nodes[f].proc.send_signal(signal.SIGCONT)
    lead = c.wait_leader(timeout=10)
    eq(c.follow("GET", "held", start=lead)[0], None,
       "a write answered as not executed was executed")
    r = first.reply()    # its entry commits or is replaced
    got = c.follow("GET", "inflight", start=c.wait_leader(timeout=10))[0]
    if r == "OK":
        eq(got, b"1", "acknowledged write lost")
    else:
        check(isinstance(r, Err) and r.startswith("TRYAGAIN"), r)
        eq(got, None, "a write answered %r was executed" % r)
    first.close()
    second.close()


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size,
                        "tmpfs", path], capture_output=True)
    return r.returncode == 0


@suite.test
def test_disk_full_stops_the_node_cleanly():
    """A node whose disk fills up exits with a clear error (acknowledging
    nothing it did not persist); the others go on; after space is freed
    it restarts and catches up."""
    c = suite.cluster("diskfull", n=3,
                      extra=["--wal-segment-bytes", "1048576",
                             "--timeout-ms", "2000"])
    victim = c.nodes[3]
    if not mount_tmpfs(victim.dir, "6m"):
        print("  SKIP: cannot mount a small tmpfs (needs root)")
        return
    try:
        c.start_all()
        c.wait_leader()
        value = b"v" * 65536
        acked = []
        for i in range(400):
            if not victim.alive():
                break
            r, _ = c.follow("SET", "big%d" % i, value, tries=200)
            if r == "OK":
                acked.append("big%d" % i)
        check(not victim.alive(), "node 3 never ran out of space")
        eq(victim.proc.returncode, 1)
        with open(victim.log, "rb") as f:
            log = f.read().decode(errors="replace")
        check("storage failed" in log and "space" in log, log[-2000:])
        # The other two carry on.
        for i in range(20):
            r, _ = c.follow("SET", "after%d" % i, "x")
            eq(r, "OK")
        # Free space; the node restarts and catches up.
        subprocess.run(["mount", "-o", "remount,size=256m", victim.dir],
                       check=True)
        c.start(3)
        lead = c.wait_leader()
        c.wait_applied(3, int(c.info(lead)["commit_index"]), timeout=30)
        conn = c.conn(lead)
        for k in acked:
            eq(conn.call("STRLEN", k), len(value), k)
        conn.close()
        wait_for(lambda: c.info(3, "keyspace").get("db0")
                 == c.info(lead, "keyspace").get("db0"), 10,
                 "node 3 has every key")
        print("  node 3 stopped after %d acknowledged 64 KiB writes"
              % len(acked))
    finally:
        for i in c.nodes:
            c.kill(i)
        subprocess.run(["umount", victim.dir], capture_output=True)


if __name__ == "__main__":
    suite.main()
