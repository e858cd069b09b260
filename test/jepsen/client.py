"""client.py — the clients: threads speaking raw RESP to the cluster and
recording every operation they attempt.

An operation is sent to a node chosen at random (half the time) or to
the last leader this client heard of, and routed as a Redis Cluster
client would: -MOVED sends it to the named node; -TRYAGAIN, -CLUSTERDOWN
and a refused connection mean "not executed", so it is retried after a
short pause, until the operation's own deadline.  What the client knows
when it gives up is recorded honestly:

  ok    the reply arrived: the operation happened, between its call and
        this moment;
  fail  it certainly did not happen (every answer was "not executed"),
        or it was a read (a read that failed changed nothing);
  info  a write whose fate is unknown: -TIMEOUT ("outcome unknown"),
        another error reply, or the connection died or timed out after
        the request was sent.  It may take effect at any later time, or
        never.

A plain INCR is never resent after an unknown outcome (it would count
twice); SET with a unique value could be, but is not either, so both
workloads read the same way.

Workloads, picked per operation from the client's own seeded RNG:
  register  GET or SET of one of a few keys (r0..), each SET value unique
            ("<client>-<seq>"); checked for linearisability per key.
  counter   INCR of one counter key; checked against its final value.
"""

import random
import select
import threading
import time

import kvtest

Err, Closed = kvtest.Err, kvtest.Closed


class Rec:
    __slots__ = ("client", "f", "key", "value", "call", "ret", "type",
                 "result", "node")

    def __init__(self, client, f, key, value):
        self.client, self.f, self.key, self.value = client, f, key, value
        self.call = time.monotonic_ns()  # invoke() sets it again
        self.ret = None
        self.type = None  # ok / fail / info
        self.result = None
        self.node = None

    def line(self, t0):
        return "%9.3f %9s  c%-2d %-4s %-4s %-14s %-4s %s" % (
            (self.call - t0) / 1e9,
            "-" if self.ret is None else "%.3f" % ((self.ret - t0) / 1e9),
            self.client, self.f, self.key, self.value or "", self.type,
            self.result)


class Client(threading.Thread):
    def __init__(self, cid, cluster, seed, stop, reg_keys, counter_keys,
                 op_deadline=4.0):
        super().__init__(daemon=True)
        self.cid = cid
        self.c = cluster
        self.rnd = random.Random(seed)
        self.stop = stop
        self.reg_keys = reg_keys
        self.counter_keys = counter_keys
        self.op_deadline = op_deadline
        self.conns = {}
        self.leader = None
        self.history = []
        self.errors = []
        self.seq = 0

    # -- connections -------------------------------------------------
    def _conn(self, nid):
        cn = self.conns.get(nid)
        if cn is not None and select.select([cn.sock], [], [], 0)[0]:
            # Readable with no reply owed: the server closed it (a killed
            # node).  Reconnect now rather than lose a request in it.
            self._drop(nid)
            cn = None
        if cn is None:
            cn = self.c.conn(nid, timeout=2.5)
            self.conns[nid] = cn
        return cn

    def _drop(self, nid):
        cn = self.conns.pop(nid, None)
        if cn:
            cn.close()

    def close(self):
        for nid in list(self.conns):
            self._drop(nid)

    # -- one operation -----------------------------------------------
    def invoke(self, rec, args, write):
        """Run args against the cluster, filling rec's outcome."""
        end = time.monotonic() + self.op_deadline
        nodes = list(self.c.members) or list(self.c.nodes)
        nid = (self.leader if self.leader in self.c.nodes
               and self.rnd.random() < 0.5 else self.rnd.choice(nodes))
        rec.call = time.monotonic_ns()
        while time.monotonic() < end:
            try:
                cn = self._conn(nid)
            except OSError:
                nid = self.rnd.choice(nodes)
                time.sleep(0.05)
                continue
            try:
                cn.send(*args)
            except OSError:
                # Nothing (or part of a request) went out: kvnode runs
                # only whole requests, and the connection is gone.
                self._drop(nid)
                nid = self.rnd.choice(nodes)
                time.sleep(0.05)
                continue
            try:
                r = cn.reply()
            except (OSError, Closed, ValueError) as e:
                self._drop(nid)
                rec.ret = None
                rec.node = nid
                rec.type = "info" if write else "fail"
                rec.result = "lost: %s" % type(e).__name__
                return
            if isinstance(r, Err):
                if r.startswith("MOVED "):
                    host, port = r.split()[2].rsplit(":", 1)
                    to = self.c.by_addr(host, int(port))
                    nid = to if to else self.rnd.choice(nodes)
                    self.leader = to
                    continue
                if r.startswith("TRYAGAIN") or r.startswith("CLUSTERDOWN"):
                    time.sleep(0.05 + self.rnd.random() * 0.1)
                    if self.rnd.random() < 0.5:
                        nid = self.rnd.choice(nodes)
                    continue
                if r.startswith("TIMEOUT"):
                    rec.type = "info" if write else "fail"
                    rec.result = str(r)[:40]
                    rec.node = nid
                    return
                # Any other error: a read did nothing; a write's fate is
                # taken as unknown (kvnode says "-ERR ... not executed"
                # for its refusals, but the tester does not rely on it).
                if not write:
                    rec.ret = time.monotonic_ns()
                rec.type = "info" if write else "fail"
                rec.result = str(r)[:60]
                rec.node = nid
                return
            rec.ret = time.monotonic_ns()
            rec.type = "ok"
            rec.result = r.decode() if isinstance(r, bytes) else r
            rec.node = nid
            self.leader = nid
            return
        rec.type = "fail"  # never executed: every answer said so
        rec.result = "gave up"

    def run(self):
        try:
            while not self.stop.is_set():
                try:
                    self.one()
                except Exception as e:  # a bug of ours: keep the thread
                    self.errors.append(repr(e))
                    self.close()
                time.sleep(self.rnd.random() * 0.01)
        finally:
            self.close()

    def one(self):
        if self.rnd.random() < 0.7:
            key = self.rnd.choice(self.reg_keys)
            if self.rnd.random() < 0.5:
                rec = Rec(self.cid, "r", key, None)
                self.history.append(rec)
                self.invoke(rec, ("GET", key), False)
            else:
                self.seq += 1
                val = "%d-%d" % (self.cid, self.seq)
                rec = Rec(self.cid, "w", key, val)
                rec.type = "info"  # until invoke() knows better
                self.history.append(rec)
                self.invoke(rec, ("SET", key, val), True)
                if rec.type == "ok" and rec.result != "OK":
                    rec.type, rec.result = "fail", "unexpected %r" % (
                        rec.result,)
        else:
            key = self.rnd.choice(self.counter_keys)
            rec = Rec(self.cid, "incr", key, None)
            rec.type = "info"
            self.history.append(rec)
            self.invoke(rec, ("INCR", key), True)
        return rec


def final_read(cluster, key, deadline_s):
    """Read key after the faults are over, retrying until it answers."""
    cl = Client(-1, cluster, 0, threading.Event(), [], [],
                op_deadline=deadline_s)
    rec = Rec(-1, "r", key, None)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        cl.op_deadline = max(1.0, end - time.monotonic())
        rec = Rec(-1, "r", key, None)
        cl.invoke(rec, ("GET", key), False)
        if rec.type == "ok":
            break
        time.sleep(0.2)
    cl.close()
    return rec

