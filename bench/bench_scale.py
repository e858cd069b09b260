#!/usr/bin/env python3
"""bench_scale.py — `make bench-scale`: idle cost of many Raft groups.

Three scale_node processes on loopback, each a member of every one of G
groups (G = 1, 3, 16, 256, 4096; group g prefers process (g-1) mod 3 + 1
as its leader and the processes hand leadership over until each leads its
third), idle.  For each G, once every group has a leader on every process,
the leaders are spread (or BALANCE_S passed) and a few seconds more have
passed, it measures over WINDOW seconds, per
process: CPU % (utime + stime from /proc/PID/stat), messages and frames
sent per second (the transport's counters: idle, every message is a
heartbeat or its answer; also the messages on the wire, where a
coalesced message of many heartbeats or answers counts one), resident
memory (VmRSS) and the groups it leads.
Memory per group is (RSS at G - RSS at 1 group) / (G - 1).

Then, with the largest G, it kills one process (SIGKILL) and starts it
again on the same storage, and reports how long until every one of its
groups knows a leader and has applied all it knows committed.

With FRAMES=1 every G is measured a second time with batch frames off
(batch_max_bytes 0: one frame per message, as before batch frames), for
the comparison of frames per second.

Environment: BUILD (default build), QUICK=1 (short windows, G up to 256),
SCALE_GROUPS="1 3 16" to choose, WINDOW=seconds, STORAGE=mem|wal (wal: one
shared WAL directory per process under a temporary directory).

The output is a Markdown table for docs/benchmarks.md, plus the raw
figures per process.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("BUILD", "build")
NODE = os.path.join(BUILD, "bench", "scale_node")
QUICK = os.environ.get("QUICK", "") not in ("", "0")
GROUPS = [int(g) for g in os.environ.get(
    "SCALE_GROUPS", "1 3 16 256" if QUICK else "1 3 16 256 4096").split()]
WINDOW = float(os.environ.get("WINDOW", "4" if QUICK else "10"))
SETTLE = 3.0
BALANCE_S = 30.0
STORAGE = os.environ.get("STORAGE", "mem")
FRAMES = os.environ.get("FRAMES", "") not in ("", "0")
CLK = os.sysconf("SC_CLK_TCK")


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Node:
    """One scale_node process and the last status line it printed."""

    def __init__(self, nid, ports, groups, wal_dir, extra):
        self.nid, self.ports, self.groups, self.wal_dir = (
            nid, ports, groups, wal_dir)
        self.extra = extra
        self.status, self.started_ms, self.proc = {}, None, None
        self.lock = threading.Lock()

    def start(self):
        args = [NODE, "--id", str(self.nid), "--listen",
                "127.0.0.1:%d" % self.ports[self.nid - 1],
                "--groups", str(self.groups)]
        for i, p in enumerate(self.ports):
            args += ["--peer", "%d=127.0.0.1:%d" % (i + 1, p)]
        args += self.extra
        if self.wal_dir:
            os.makedirs(self.wal_dir, exist_ok=True)
            args += ["--dir", self.wal_dir]
        self.status, self.started_ms = {}, None
        self.spawned = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, args=(self.proc,),
                         daemon=True).start()

    def _read(self, proc):
        for line in proc.stdout:
            words = line.split()
            if not words:
                continue
            kv = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            with self.lock:
                if words[0] == "started":
                    self.started_ms = int(kv["ms"])
                elif words[0] == "status":
                    self.status = {k: int(v) for k, v in kv.items()}

    def get(self, key):
        with self.lock:
            return self.status.get(key, -1)

    def snapshot(self):
        with self.lock:
            st = dict(self.status)
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        st["cpu_s"] = (int(fields[11]) + int(fields[12])) / CLK
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    st["rss_kb"] = int(line.split()[1])
        st["at"] = time.monotonic()
        return st

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def wait_for(cond, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def balanced(nodes, g):
    return all(n.get("leaders") == len(range(n.nid, g + 1, 3))
               for n in nodes)


def all_caught(node, g):
    return node.get("known") == g and node.get("caught") == g


def measure(groups, tmp, batch=True):
    ports = free_ports(3)
    tag = "g%d%s" % (groups, "" if batch else "-nobatch")
    wal = (lambda i: os.path.join(tmp, "%s-n%d" % (tag, i))
           if STORAGE == "wal" else None)
    extra = [] if batch else ["--batch-max", "0"]
    nodes = [Node(i + 1, ports, groups, wal(i + 1), extra) for i in range(3)]
    for n in nodes:
        n.start()
    row = {"groups": groups, "batch": batch}
    try:
        up = wait_for(lambda: all(all_caught(n, groups) for n in nodes),
                      60 + groups / 20)
        if up is None:
            raise RuntimeError("G=%d: not every group got a leader: %s" % (
                groups, [(n.get("known"), n.get("caught")) for n in nodes]))
        row["up_s"] = up
        row["balanced_s"] = wait_for(lambda: balanced(nodes, groups),
                                     BALANCE_S)
        time.sleep(SETTLE)
        before = [n.snapshot() for n in nodes]
        time.sleep(WINDOW)
        after = [n.snapshot() for n in nodes]
        per = []
        for b, a in zip(before, after):
            dt = a["at"] - b["at"]
            per.append({
                "cpu": 100.0 * (a["cpu_s"] - b["cpu_s"]) / dt,
                "msgs": (a["msgs_sent"] - b["msgs_sent"]) / dt,
                # on the wire a coalesced message counts one
                "wire": (wire(a) - wire(b)) / dt,
                "frames": (a["frames_sent"] - b["frames_sent"]) / dt,
                "writes": (a["writes"] - b["writes"]) / dt,
                "rss_kb": a["rss_kb"],
                "leaders": a["leaders"],
            })
        row["per"] = per
        if groups == max(GROUPS) and batch:
            row["restart"] = restart(nodes[2], groups)
    finally:
        for n in nodes:
            n.kill()
    return row


def wire(s):
    return s["msgs_sent"] - s.get("coalesced_msgs", 0) + s.get("coalesced", 0)


def restart(node, groups):
    """SIGKILL one process, start it again, time its way back."""
    node.kill()
    node.start()
    back = wait_for(lambda: all_caught(node, groups), 120 + groups / 10)
    return {"caught_s": back, "create_ms": node.started_ms}


def avg(xs):
    return sum(xs) / len(xs)


def report(rows):
    base = {i: rows[0]["per"][i]["rss_kb"] for i in range(3)}
    print()
    print("| groups per process | batch frames | leaders (per process) | CPU % per process"
          " (avg, max) | messages/s sent per process | on the wire (coalesced = 1)"
          " | frames/s sent per"
          " process | writes/s per process | messages per frame | RSS MiB | RSS per group (KiB) |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        p = r["per"]
        g = r["groups"]
        msgs, frames = avg([x["msgs"] for x in p]), avg(
            [x["frames"] for x in p])
        per_group = ("%.1f" % avg([(x["rss_kb"] - base[i]) / (g - 1)
                                   for i, x in enumerate(p)])
                     if g > 1 else "—")
        print("| %d | %s | %s | %.1f, %.1f | %.0f | %.0f | %.0f | %.0f | %.1f"
              " | %.1f | %s |" % (
            g, "on" if r["batch"] else "off", "/".join(str(x["leaders"]) for x in p),
            avg([x["cpu"] for x in p]), max(x["cpu"] for x in p), msgs,
            avg([x["wire"] for x in p]), frames, avg([x["writes"] for x in p]), msgs / frames if frames else 0,
            avg([x["rss_kb"] for x in p]) / 1024, per_group))
    for r in rows:
        if "restart" in r:
            rs = r["restart"]
            print()
            print("restart with %d groups (%s storage): create+start %s ms,"
                  " every group led and caught up after %s s" % (
                      r["groups"], STORAGE, rs["create_ms"],
                      "%.2f" % rs["caught_s"] if rs["caught_s"] is not None
                      else "NOT within the timeout"))
    print()
    print("raw per process:")
    for r in rows:
        print(r["groups"], "batch" if r["batch"] else "nobatch", "up in %.1f s" % r["up_s"], "balanced in %s s" % (
            "%.1f" % r["balanced_s"] if r["balanced_s"] is not None
            else "(not within %d)" % BALANCE_S),
              [{k: round(v, 1) for k, v in x.items()} for x in r["per"]])


def main():
    if not os.path.exists(NODE):
        sys.exit("%s not built (make bench-scale builds it)" % NODE)
    tmp = tempfile.mkdtemp(prefix="bench-scale-")
    rows = []
    try:
        for g in GROUPS:
            print("G=%d ..." % g, flush=True)
            rows.append(measure(g, tmp))
            if FRAMES:
                print("G=%d, batch frames off ..." % g, flush=True)
                rows.append(measure(g, tmp, batch=False))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("settings: heartbeat and election timeout at their defaults,"
          " window %.0f s, storage %s, %d CPUs" % (
              WINDOW, STORAGE, os.cpu_count()))
    report(rows)


if __name__ == "__main__":
    main()
