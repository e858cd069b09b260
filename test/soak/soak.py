#!/usr/bin/env python3
"""soak.py -- a long run of a 3-node kvnode cluster under steady load with
periodic leader kills, to show that nothing degrades silently.

    python3 test/soak/soak.py --kvnode build/examples/kvnode/kvnode \\
        --seconds 600 [--clients 50] [--kill-every 60] [--idle 10000]

What it does (stdlib only):

  1. Starts three kvnode processes (WAL storage, default election timeout)
     on free loopback ports, and, with --idle N, first opens N idle client
     connections to the leader and measures what they cost (RSS per
     connection, how long accepting them took, the latency of a probe
     client while they are held), then closes them.
  2. Drives --clients clients from one select-based loop: each runs SET,
     GET and INCR (on one shared counter) on a bounded key space at
     --rate operations per second, follows MOVED, retries CLUSTERDOWN and
     TRYAGAIN, reconnects when its node dies, and every --churn operations
     closes its connection and opens a new one (so connection leaks show).
     An operation's latency runs from its first send to its final reply,
     retries included: a failover shows in the percentiles.
  3. Every --kill-every seconds SIGKILLs the leader and restarts it
     --restart-after seconds later, on the same data directory.
  4. Every 10 s samples each process's VmRSS (/proc/PID/status), its open
     descriptors (/proc/PID/fd) and its connected clients (INFO clients);
     prints one row per minute: throughput, p50/p99/max latency, errors,
     and per node RSS and descriptors.

It fails (exit 1) if:
  - a process's RSS, after its warm-up (--warmup s from its start), grows
    by more than --rss-bound-mb MiB + 10% over its first post-warm-up sample;
  - a process's descriptors not accounted for by client connections grow
    by more than 8 over its post-warm-up minimum;
  - the shared counter disagrees with the clients' view: every acknowledged
    INCR must be in it, and nothing beyond those plus the INCRs whose
    outcome was unknown (a timeout, or a connection lost after sending);
  - a node does not exit 0 on the final SIGTERM, or no operation succeeded
    in some minute (the cluster was unavailable for a whole minute).
"""

import argparse
import os
import random
import resource
import selectors
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kvnode"))
from kvtest import Cluster, Closed, Conn, Err, encode, parse_info  # noqa: E402

SAMPLE_S = 10.0


# ---------------------------------------------------------------------------
# RESP replies, parsed incrementally from a buffer
# ---------------------------------------------------------------------------

def parse_reply(buf, pos=0):
    """(value, next position) or None if the buffer holds no whole reply.
    Errors come back as Err."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    t, line = buf[pos:pos + 1], buf[pos + 1:end]
    nxt = end + 2
    if t == b"+":
        return line.decode(), nxt
    if t == b"-":
        return Err(line.decode(errors="replace")), nxt
    if t == b":":
        return int(line), nxt
    if t == b"$":
        n = int(line)
        if n < 0:
            return None, nxt
        if len(buf) < nxt + n + 2:
            return None
        return buf[nxt:nxt + n], nxt + n + 2
    if t == b"*":
        n = int(line)
        out = []
        for _ in range(max(n, 0)):
            r = parse_reply(buf, nxt)
            if r is None:
                return None
            v, nxt = r
            out.append(v)
        return (out if n >= 0 else None), nxt
    raise ValueError("bad reply %r" % buf[pos:pos + 40])


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------

class Minute:
    def __init__(self):
        self.lat = []
        self.errors = 0      # operations given up on
        self.retries = 0     # CLUSTERDOWN, TRYAGAIN, reconnects
        self.redirects = 0   # MOVED followed
        self.reconnects = 0  # connections opened (churn and failures)


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, int(p / 100.0 * len(sorted_vals)))
    return sorted_vals[i]


# ---------------------------------------------------------------------------
# The load: N clients in one select loop
# ---------------------------------------------------------------------------

class Client:
    def __init__(self, i):
        self.i = i
        self.sock = None
        self.nid = None
        self.buf = b""
        self.op = None        # (kind, args)
        self.op_start = 0.0   # first send of the current operation
        self.sent_at = 0.0    # last send
        self.next_at = 0.0    # when to send the next operation
        self.ops_on_conn = 0
        self.trail = []       # what happened to the current operation


class Load:
    OP_TIMEOUT = 10.0   # a reply this late: the connection is abandoned
    SLOW = 3.0          # operations slower than this are listed
    GIVE_UP = 30.0      # an operation retried this long counts as an error

    def __init__(self, cluster, args, stats_for):
        self.c = cluster
        self.args = args
        self.stats_for = stats_for
        self.sel = selectors.DefaultSelector()
        self.clients = [Client(i) for i in range(args.clients)]
        self.rnd = random.Random(args.seed)
        self.stop = threading.Event()
        self.incr_acked = 0
        self.incr_unknown = 0
        self.ops_ok = 0
        self.value = b"v" * args.value_size
        self.fail = None
        self.slow = []
        self.t0 = time.time()

    # -- connections --
    def connect(self, cl, nid=None):
        self.drop(cl)
        live = self.c.live()
        if not live:
            return False
        if nid is None or nid not in live:
            nid = self.rnd.choice(live)
        port = self.c.nodes[nid].client_port
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            return False
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        cl.sock, cl.nid, cl.buf, cl.ops_on_conn = s, nid, b"", 0
        self.sel.register(s, selectors.EVENT_READ, cl)
        self.stats_for().reconnects += 1
        return True

    def drop(self, cl):
        if cl.sock is not None:
            try:
                self.sel.unregister(cl.sock)
            except (KeyError, ValueError):
                pass
            cl.sock.close()
            cl.sock = None

    # -- operations --
    def new_op(self, cl):
        r = self.rnd.random()
        key = "k%d" % self.rnd.randrange(self.args.keys)
        if r < 0.1:
            cl.op = ("INCR", ("INCR", "soak:counter"))
        elif r < 0.55:
            cl.op = ("SET", ("SET", key, self.value))
        else:
            cl.op = ("GET", ("GET", key))
        cl.op_start = time.time()
        cl.trail = []

    def note(self, cl, what):
        cl.trail.append("%.2f %s@%s" % (time.time() - cl.op_start, what,
                                        cl.nid))

    def send(self, cl):
        now = time.time()
        cl.sent_at = 0.0
        if cl.sock is None and not self.connect(cl, cl.nid):
            cl.nid = None  # try another node
            cl.next_at = now + 0.1
            return
        try:
            cl.sock.sendall(encode(*cl.op[1]))
        except OSError:
            self.lost(cl)
            return
        cl.sent_at = now
        cl.next_at = 0.0

    def finish(self, cl, ok):
        now = time.time()
        m = self.stats_for()
        if ok:
            m.lat.append(now - cl.op_start)
            self.ops_ok += 1
        else:
            m.errors += 1
        if now - cl.op_start > self.SLOW:
            self.note(cl, "done" if ok else "failed")
            self.slow.append("%s at %.0f s: %s" % (
                cl.op[0], cl.op_start - self.t0, ", ".join(cl.trail)))
        cl.op = None
        cl.sent_at = 0.0
        cl.ops_on_conn += 1
        # Closed loop with think time: about --rate operations per second.
        cl.next_at = now + self.rnd.expovariate(self.args.rate)
        if self.args.churn and cl.ops_on_conn >= self.args.churn:
            self.drop(cl)

    def retry(self, cl, nid=None, delay=0.05):
        """Send the current operation again (not executed the last time)."""
        self.stats_for().retries += 1
        if time.time() - cl.op_start > self.GIVE_UP:
            self.finish(cl, False)
            return
        if nid is not None and nid != cl.nid:
            self.drop(cl)
            cl.nid = nid
        cl.next_at = time.time() + delay
        cl.sent_at = 0.0

    def lost(self, cl):
        """The connection died or timed out with the operation in flight."""
        self.note(cl, "lost")
        self.drop(cl)
        cl.nid = None
        if cl.op and cl.op[0] == "INCR":
            self.incr_unknown += 1   # may or may not have happened
            self.finish(cl, False)
            return
        self.retry(cl, delay=0.05)

    def on_reply(self, cl, r):
        kind = cl.op[0]
        if isinstance(r, Err):
            if r.startswith("MOVED "):
                self.stats_for().redirects += 1
                self.note(cl, "MOVED")
                port = int(r.split()[2].rsplit(":", 1)[1])
                self.retry(cl, self.c.by_client_port(port), delay=0)
                return
            if r.startswith("CLUSTERDOWN") or r.startswith("TRYAGAIN"):
                self.note(cl, r.split()[0])
                self.retry(cl, delay=0.1)   # not executed
                return
            self.note(cl, r.split()[0])
            if kind == "INCR":
                self.incr_unknown += 1      # TIMEOUT: outcome unknown
                self.finish(cl, False)
                return
            self.retry(cl, delay=0.1)
            return
        if kind == "INCR":
            self.incr_acked += 1
        elif kind == "SET" and r != "OK":
            self.fail = "SET answered %r" % (r,)
        self.finish(cl, True)

    def readable(self, cl):
        try:
            d = cl.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            d = b""
        if not d:
            if cl.op is not None and cl.sent_at:
                self.lost(cl)
            else:
                self.drop(cl)
                cl.nid = None
            return
        cl.buf += d
        while cl.buf:
            p = parse_reply(cl.buf)
            if p is None:
                return
            v, n = p
            cl.buf = cl.buf[n:]
            if cl.op is None or not cl.sent_at:
                self.fail = "a reply nobody asked for: %r" % (v,)
                return
            self.on_reply(cl, v)

    def run(self):
        for cl in self.clients:
            cl.next_at = time.time() + self.rnd.random() / self.args.rate
        while not self.stop.is_set():
            now = time.time()
            wake = now + 0.05
            for cl in self.clients:
                if cl.op is not None and cl.sent_at:
                    if now - cl.sent_at > self.OP_TIMEOUT:
                        self.note(cl, "no reply")
                        self.lost(cl)
                    continue
                if cl.next_at <= now:
                    if cl.op is None:
                        self.new_op(cl)
                    self.send(cl)
                if cl.next_at:
                    wake = min(wake, cl.next_at)
            timeout = max(0.0, wake - time.time())
            for key, _ in self.sel.select(timeout):
                self.readable(key.data)
        for cl in self.clients:
            if cl.op is not None and cl.sent_at and cl.op[0] == "INCR":
                self.incr_unknown += 1  # in flight at the end
            self.drop(cl)


# ---------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------

def proc_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def connected_clients(cluster, nid):
    try:
        return int(cluster.info(nid, "clients")["connected_clients"])
    except (OSError, Closed, KeyError, ValueError):
        return None


class Instance:
    """One kvnode process (a restart is a new instance)."""

    def __init__(self, nid, pid, started):
        self.nid, self.pid, self.started = nid, pid, started
        self.samples = []   # (t, rss_kb, fds, base_fds)


def sample(cluster, instances, t0):
    now = time.time()
    row = {}
    for nid, n in cluster.nodes.items():
        if not n.alive():
            continue
        pid = n.proc.pid
        inst = instances.get(pid)
        if inst is None:
            inst = instances[pid] = Instance(nid, pid, now)
        # INFO first: its own connection is then counted in both numbers.
        cc = connected_clients(cluster, nid)
        rss, fds = proc_rss_kb(pid), proc_fds(pid)
        if rss is None or fds is None or cc is None:
            continue
        inst.samples.append((now - t0, rss, fds, fds - cc))
        row[nid] = (rss, fds, fds - cc)
    return row


# ---------------------------------------------------------------------------
# Idle connections
# ---------------------------------------------------------------------------

def idle_phase(cluster, leader, n):
    print("== %d idle connections to the leader (node %d)" % (n, leader))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 512
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (max(want, hard if hard != -1 else want),
                                max(want, hard if hard != -1 else want)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < want:
        n = soft - 512
        print("   open-file limit %d: holding %d connections instead" % (soft, n))
    pid = cluster.nodes[leader].proc.pid
    port = cluster.nodes[leader].client_port
    rss0 = proc_rss_kb(pid)
    t0 = time.time()
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        socks.append(s)
    ping = encode("PING")
    for s in socks:
        s.sendall(ping)
    for s in socks:
        d = b""
        while not d.endswith(b"\r\n"):
            d += s.recv(64)
        if d != b"+PONG\r\n":
            raise AssertionError("idle connection got %r" % d)
    took = time.time() - t0
    cc = connected_clients(cluster, leader)
    rss1 = proc_rss_kb(pid)
    fds = proc_fds(pid)
    # A probe while they are held.
    probe = Conn(port, timeout=10)
    lat = []
    end = time.time() + 10
    i = 0
    while time.time() < end:
        t = time.time()
        r = probe.call("SET", "idle-probe", str(i))
        if r != "OK":
            raise AssertionError("probe SET: %r" % (r,))
        if probe.call("GET", "idle-probe") != str(i).encode():
            raise AssertionError("probe GET")
        lat.append(time.time() - t)
        i += 1
        time.sleep(0.01)
    probe.close()
    for s in socks:
        s.close()
    lat.sort()
    per = (rss1 - rss0) * 1024.0 / max(n, 1)
    print("   opened and pinged %d connections in %.1f s; connected_clients "
          "%s, leader fds %s" % (n, took, cc, fds))
    print("   leader RSS %.1f -> %.1f MiB: %.0f bytes per idle connection"
          % (rss0 / 1024.0, rss1 / 1024.0, per))
    print("   probe while held: %d round trips (SET+GET), p50 %.2f ms, "
          "p99 %.2f ms, max %.2f ms" % (len(lat), pct(lat, 50) * 1e3,
                                        pct(lat, 99) * 1e3, lat[-1] * 1e3))
    ok = cc is not None and cc >= n and pct(lat, 99) < 0.5
    if not ok:
        print("   FAIL: connections not held or probe too slow")
    return ok


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kvnode", required=True)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--rate", type=float, default=20.0,
                   help="operations per second per client (20)")
    p.add_argument("--keys", type=int, default=2000)
    p.add_argument("--value-size", type=int, default=128)
    p.add_argument("--churn", type=int, default=200,
                   help="reconnect after this many operations (0: never)")
    p.add_argument("--kill-every", type=float, default=60)
    p.add_argument("--restart-after", type=float, default=3)
    p.add_argument("--warmup", type=float, default=60)
    p.add_argument("--rss-bound-mb", type=float, default=16)
    p.add_argument("--idle", type=int, default=0,
                   help="first hold this many idle connections (0: skip)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--storage", default="wal")
    args = p.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    kvnode = os.path.abspath(args.kvnode)
    print("soak: %d clients at %.0f op/s each for %.0f s, leader killed every "
          "%.0f s, seed %d, load average at start %s"
          % (args.clients, args.rate, args.seconds, args.kill_every, args.seed,
             loadavg()))
    extra = ["--max-clients", str(max(10000, args.idle + 1000))]
    c = Cluster(kvnode, "soak", n=3, storage=args.storage, election_ms=1000,
                extra=extra)
    ok = True
    problems = []
    try:
        c.start_all()
        leader = c.wait_leader(timeout=30)
        if args.idle:
            if not idle_phase(c, leader, args.idle):
                ok = False
                problems.append("idle connections")
        minutes = []
        cur = {"m": Minute(), "kills": []}
        load = Load(c, args, lambda: cur["m"])
        th = threading.Thread(target=load.run, daemon=True)
        t0 = time.time()
        load.t0 = t0
        th.start()
        instances = {}
        rows = []
        next_sample = t0 + SAMPLE_S
        next_minute = t0 + 60
        next_kill = t0 + args.kill_every if args.kill_every > 0 else None
        restart = None
        kills = 0
        end = t0 + args.seconds
        hdr = ("%4s %6s %5s %6s %7s %8s %4s %5s %5s %4s | %s" %
               ("min", "ops", "op/s", "p50 ms", "p99 ms", "max ms", "err",
                "retry", "conns", "kill",
                "per node: RSS MiB, fds (not clients')"))
        print(hdr)
        sample(c, instances, t0)
        last_row = {}
        while True:
            now = time.time()
            last = now >= end or not th.is_alive()
            if restart and now >= restart[1]:
                c.start(restart[0])
                restart = None
            if next_kill and now >= next_kill and restart is None and \
                    not last:
                try:
                    lid = c.wait_leader(timeout=20)
                    c.kill(lid)
                    kills += 1
                    cur["kills"].append(lid)
                    restart = (lid, time.time() + args.restart_after)
                except AssertionError as e:
                    problems.append("no leader to kill: %s" % e)
                next_kill += args.kill_every
            if now >= next_sample or last:
                last_row = sample(c, instances, t0)
                next_sample += SAMPLE_S
            # A row per minute, and the last one (if over 5 s long).
            if now >= next_minute or (last and now - next_minute + 60 > 5):
                m, cur["m"] = cur["m"], Minute()
                killed = ",".join(str(k) for k in cur["kills"]) or "-"
                cur["kills"] = []
                minutes.append(m)
                lat = sorted(m.lat)
                nodes = "  ".join(
                    ("%d: %5.1f %3d (%2d)" % (nid, last_row[nid][0] / 1024.0,
                                             last_row[nid][1],
                                             last_row[nid][2]))
                    if nid in last_row else "%d: %-13s" % (nid, "down")
                    for nid in sorted(c.nodes))
                secs = min(60.0, now - (next_minute - 60))
                row = ("%4d %6d %5.0f %6.2f %7.2f %8.1f %4d %5d %5d %4s | %s" %
                       (len(minutes), len(lat), len(lat) / secs,
                        pct(lat, 50) * 1e3, pct(lat, 99) * 1e3,
                        (lat[-1] if lat else float("nan")) * 1e3, m.errors,
                        m.retries, m.reconnects, killed, nodes))
                rows.append(row)
                print(row)
                sys.stdout.flush()
                if not lat:
                    problems.append("minute %d: no operation succeeded"
                                    % len(minutes))
                next_minute += 60
            if last:
                break
            time.sleep(0.05)
        load.stop.set()
        th.join(60)
        if load.fail:
            problems.append(load.fail)
        if load.slow:
            print("%d operations took over %.0f s:" % (len(load.slow),
                                                      load.SLOW))
            for line in load.slow[:20]:
                print("  " + line)
        if restart:
            c.start(restart[0])
        # The counter: every acknowledged INCR is in it, nothing more
        # than those and the ones with an unknown outcome.
        leader = c.wait_leader(timeout=30)
        val, _ = c.follow("GET", "soak:counter", start=leader)
        val = int(val or 0)
        print("counter %d: %d INCRs acknowledged, %d with unknown outcome"
              % (val, load.incr_acked, load.incr_unknown))
        if not (load.incr_acked <= val <= load.incr_acked + load.incr_unknown):
            problems.append("counter %d outside [%d, %d]" % (
                val, load.incr_acked, load.incr_acked + load.incr_unknown))
        print("%d leader kills, %d operations acknowledged, load average at "
              "end %s" % (kills, load.ops_ok, loadavg()))
        # Memory and descriptors, per process instance.
        bound_note = ("RSS bound: +%.0f MiB + 10%% after %.0f s of warm-up; "
                      "non-client fds: +8" % (args.rss_bound_mb, args.warmup))
        print(bound_note)
        for inst in sorted(instances.values(), key=lambda i: i.started):
            warm = [s for s in inst.samples
                    if s[0] + t0 - inst.started >= args.warmup]
            life = (inst.samples[-1][0] - inst.samples[0][0]
                    if inst.samples else 0)
            if len(warm) < 2:
                print("  node %d pid %d: lived %.0f s, too short to judge"
                      % (inst.nid, inst.pid, life))
                continue
            base_rss = warm[0][1]
            max_rss = max(s[1] for s in warm)
            min_fd = min(s[3] for s in warm)
            max_fd = max(s[3] for s in warm)
            grow = max_rss - base_rss
            limit = args.rss_bound_mb * 1024 + 0.10 * base_rss
            verdict = "ok"
            if grow > limit:
                verdict = "RSS GREW"
                problems.append("node %d pid %d: RSS grew %d KiB"
                                % (inst.nid, inst.pid, grow))
            if max_fd - min_fd > 8:
                verdict = "FDS GREW"
                problems.append("node %d pid %d: non-client fds %d -> %d"
                                % (inst.nid, inst.pid, min_fd, max_fd))
            print("  node %d pid %d: lived %.0f s; after warm-up RSS %.1f -> "
                  "max %.1f MiB (+%.1f), non-client fds %d..%d: %s"
                  % (inst.nid, inst.pid, life, base_rss / 1024.0,
                     max_rss / 1024.0, grow / 1024.0, min_fd, max_fd,
                     verdict))
        bad = c.stop_all_checked() + c.sanitizer_reports()
        problems += bad
    except Exception as e:  # report, clean up, fail
        import traceback
        traceback.print_exc()
        problems.append("exception: %r" % (e,))
    finally:
        keep = bool(problems) or not ok
        if keep:
            print(c.log_tails())
            print("data kept in " + c.dir)
        c.close(keep=keep)
    if problems or not ok:
        for pr in problems:
            print("FAIL: " + pr)
        print("soak: FAILED")
        return 1
    print("soak: passed")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    sys.exit(main())
