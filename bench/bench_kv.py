#!/usr/bin/env python3
"""bench/bench_kv.py — `make bench-kv`: kvnode against Redis and canonical raft.

Four systems, each started once and then measured in alternating rounds
(round r runs them in a rotated order: ABC, BCA, CAB, ...) so that the noise
of a shared machine falls on all of them alike; the table gives the median
of the rounds, and the ratios are taken between medians of the same run.

  kvnode   3 nodes, WAL (fdatasync before a write is acknowledged), the
           defaults of examples/kvnode (a snapshot every 64 MiB of applied
           entries, --snapshot-bytes)
  redis    one redis-server, appendonly yes, appendfsync always, no RDB
  craft    canonical raft 0.15 (Debian's libraft-dev) through
           bench/craft_kv.c: 3 members, raft_uv + raft_uv_tcp, same
           snapshot threshold; skipped with a note if it was not built
  floor3   bench/repl_floor.c: the ideal replicated write on this machine,
           3 processes and no Raft at all; a batch of SETs is answered
           once it is fdatasync'ed on the leader and on one follower.  No
           3-member Raft with a Redis-shaped leader can beat it here
           (docs/benchmarks.md, "The replicated floor"); its syncs per
           write (fdatasyncs: leader, and the two followers) come from its
           INFO before and after each run

The load is redis-benchmark SET with 100-byte values over 100 000 keys
(-r 100000 -d 100), at 1, 50 and 200 clients, against each leader.  The
leader's CPU per committed write comes from /proc/PID/stat (utime + stime
of every thread) before and after each run, divided by the writes; "all
nodes" sums the three members.  So does the last column: the context
switches (voluntary + involuntary, every thread, /proc/PID/task/*/status)
per write, which on this VM are what a wake-up costs, and which depend
less on the machine's other load than times do.  kvnode's syncs per
write (leader, and each follower) come from the wal_batches of INFO raft
before and after each run (one durable write per WAL batch: an O_DIRECT |
O_DSYNC write, or a pwrite and an fdatasync), printed below the table.  Every data directory sits under
BUILD/bench-kv, on the same disk.

The floor — one loopback round trip + one fdatasync of a small append into
a preallocated file (bench/floor.c) — is measured right before every
single-client run, and its median is the reference for the 1-client p50.

The library-level figure: bench/seshat_node.c (engine + WAL + TCP on the
library's loop, 3 processes) and craft_kv --bench (canonical raft, 3
processes) with W proposals of 100 B in flight on the leader, alternated
the same way.

Before/after a change, in the same run: BASE_BUILD=DIR names the BUILD
directory of another commit (make BUILD=DIR kvnode DIR/bench/seshat_node
in a checkout of it); its kvnode and seshat_node then run as two more
systems, "kvnode@base" and "seshat@base", alternated with the others.

Environment: BUILD (default build), QUICK=1 (one round, short runs),
ROUNDS, CLIENTS ("1 50 200"), WINDOWS ("1 64"; "" skips the library level),
SKIP ("craft", "redis", "floor3", "floor": leave systems, or the floor, out of a
before/after run), FLOOR3_WINDOWS ("0": floor3's --window; "0 4" adds
the pipelined variant with 4 batches in flight as system "floor3-w4"), PORT_BASE (default 23700;
the ports PORT_BASE+1 .. PORT_BASE+90 must be free: checked at start).
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

BUILD = os.environ.get("BUILD") or "build"
QUICK = os.environ.get("QUICK", "") in ("1", "yes", "true")
ROUNDS = int(os.environ.get("ROUNDS") or (1 if QUICK else 3))
CLIENTS = [int(c) for c in (os.environ.get("CLIENTS") or "1 50 200").split()]
WINDOWS = [int(w) for w in os.environ.get("WINDOWS", "1 64").split()]
SKIP = os.environ.get("SKIP", "").split()
FLOOR3_WINDOWS = [int(w) for w in
                  (os.environ.get("FLOOR3_WINDOWS") or "0").split()]
PORT = int(os.environ.get("PORT_BASE") or 23700)
RUN = os.path.join(BUILD, "bench-kv")
BIN = {
    "kvnode": os.path.join(BUILD, "examples/kvnode/kvnode"),
    "craft": os.path.join(BUILD, "bench/craft_kv"),
    "seshat_node": os.path.join(BUILD, "bench/seshat_node"),
    "floor": os.path.join(BUILD, "bench/floor"),
    "floor3": os.path.join(BUILD, "bench/repl_floor"),
}
BASE = os.environ.get("BASE_BUILD") or ""
if BASE:
    BIN["kvnode@base"] = os.path.join(BASE, "examples/kvnode/kvnode")
    BIN["seshat@base"] = os.path.join(BASE, "bench/seshat_node")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Requests per run: enough for a few seconds each at the rates seen here.
REQUESTS = {1: 800, 50: 10000, 200: 15000} if QUICK else \
    {1: 2000, 50: 30000, 200: 40000}
LIB_SECONDS = 1.0 if QUICK else 2.0

procs = []


def log(msg):
    print(msg, flush=True)


def port_busy(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def check_alive(s):
    for pid in s.pids:
        for p in procs:
            if p.pid == pid and p.poll() is not None:
                sys.exit("bench-kv: a %s process exited (logs in %s)" %
                         (s.name, RUN))


def start(args, logname):
    f = open(os.path.join(RUN, logname), "ab")
    p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    procs.append(p)
    return p


def stop_all():
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
    procs.clear()


def cmd(port, *words, timeout=1.0):
    """One RESP command; the raw reply (enough for INFO and PING)."""
    req = b"*%d\r\n" % len(words)
    for w in words:
        w = w.encode()
        req += b"$%d\r\n%s\r\n" % (len(w), w)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        data = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.startswith(b"+") or data.startswith(b"-"):
                break
            if data.startswith(b"$"):
                hdr, _, rest = data.partition(b"\r\n")
                if len(rest) >= int(hdr[1:]) + 2:
                    break
        return data.decode(errors="replace")


def find_leader(ports, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for i, port in enumerate(ports):
            try:
                if "role:leader" in cmd(port, "INFO", "raft"):
                    return i
            except OSError:
                pass
        time.sleep(0.1)
    return None


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def ctx_switches(pid):
    """Voluntary + involuntary context switches of every thread of pid
    (on this VM a switch is the costly part of a wake-up)."""
    n = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if "ctxt_switches" in line:
                        n += int(line.split()[1])
        except OSError:
            pass  # a thread that ended meanwhile
    return n


# ---------------------------------------------------------------- systems

class System:
    def __init__(self, name, ports, pids, leader):
        self.name, self.ports, self.pids, self.leader = \
            name, ports, pids, leader


def start_kvnode(name="kvnode", off=0):
    d = os.path.join(RUN, name)
    cports = [PORT + 1 + off + i for i in range(3)]
    rports = [PORT + 11 + off + i for i in range(3)]
    peers = ",".join("%d=127.0.0.1:%d/127.0.0.1:%d" % (i + 1, rports[i],
                                                       cports[i])
                     for i in range(3))
    ps = []
    for i in range(3):
        ps.append(start([BIN[name], "--id", str(i + 1),
                         "--data", os.path.join(d, "node%d" % (i + 1)),
                         "--client", "127.0.0.1:%d" % cports[i],
                         "--raft", "127.0.0.1:%d" % rports[i],
                         "--peers", peers, "--storage", "wal",
                         "--log-level", "warn"],
                        "%s%d.log" % (name, i + 1)))
    leader = find_leader(cports)
    if leader is None:
        sys.exit("bench-kv: %s elected no leader (logs in %s)" % (name, RUN))
    return System(name, cports, [p.pid for p in ps], leader)


def start_redis():
    d = os.path.join(RUN, "redis")
    os.makedirs(d, exist_ok=True)
    port = PORT + 21
    p = start(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
               "--dir", os.path.abspath(d), "--appendonly", "yes",
               "--appendfsync", "always", "--save", "",
               "--protected-mode", "no"], "redis.log")
    for _ in range(100):
        try:
            if "PONG" in cmd(port, "PING"):
                break
        except OSError:
            time.sleep(0.05)
    else:
        sys.exit("bench-kv: redis-server did not start (%s/redis.log)" % RUN)
    return System("redis", [port], [p.pid], 0)


def start_craft():
    d = os.path.join(RUN, "craft")
    cbase, rbase = PORT + 31, PORT + 41
    ps = []
    for i in range(3):
        dd = os.path.join(d, "n%d" % (i + 1))
        os.makedirs(dd, exist_ok=True)
        ps.append(start([BIN["craft"], "--id", str(i + 1), "--dir", dd,
                         "--client-base", str(cbase),
                         "--raft-base", str(rbase)], "craft%d.log" % (i + 1)))
    ports = [cbase + i for i in range(3)]
    leader = find_leader(ports)
    if leader is None:
        sys.exit("bench-kv: canonical raft elected no leader (%s)" % RUN)
    return System("craft", ports, [p.pid for p in ps], leader)


def start_floor3(window, name, off):
    d = os.path.join(RUN, name)
    cport, fports = PORT + 24 + off, [PORT + 25 + off, PORT + 26 + off]
    ps = []
    for i, fp in enumerate(fports):
        dd = os.path.join(d, "f%d" % (i + 1))
        os.makedirs(dd, exist_ok=True)
        ps.append(start([BIN["floor3"], "--role", "follower", "--dir", dd,
                         "--port", str(fp)], "%s-f%d.log" % (name, i + 1)))
    dd = os.path.join(d, "leader")
    os.makedirs(dd, exist_ok=True)
    args = [BIN["floor3"], "--role", "leader", "--dir", dd,
            "--port", str(cport), "--window", str(window)]
    for fp in fports:
        args += ["--follower", "127.0.0.1:%d" % fp]
    ps.insert(0, start(args, "%s-leader.log" % name))
    for _ in range(200):
        try:
            if "PONG" in cmd(cport, "PING"):
                break
        except OSError:
            time.sleep(0.05)
    else:
        sys.exit("bench-kv: repl_floor did not start (%s)" % RUN)
    return System(name, [cport], [p.pid for p in ps], 0)


def floor3_syncs(s):
    """floor3's counters: writes, leader and followers' fdatasyncs."""
    info = dict(line.split(":", 1) for line in
                cmd(s.ports[0], "INFO").splitlines() if ":" in line)
    f1, f2 = info["follower_fdatasyncs"].split(",")
    return [int(info["writes"]), int(info["fdatasyncs"]), int(f1), int(f2)]


def kvnode_syncs(s):
    """Each kvnode's WAL batches (one fdatasync each), leader first; None
    for a build whose INFO has no wal_batches."""
    out = []
    for i in [s.leader] + [j for j in range(len(s.ports)) if j != s.leader]:
        info = dict(line.split(":", 1) for line in
                    cmd(s.ports[i], "INFO", "raft").splitlines()
                    if ":" in line)
        if "wal_batches" not in info:
            return None
        out.append(int(info["wal_batches"]))
    return out


# ---------------------------------------------------------------- runs

def bench_once(s, clients):
    n = REQUESTS.get(clients, 50000)
    check_alive(s)
    leader_pid = s.pids[s.leader]
    t0 = [cpu_ticks(pid) for pid in s.pids]
    x0 = sum(ctx_switches(pid) for pid in s.pids)
    y0 = floor3_syncs(s) if s.name.startswith("floor3") else None
    k0 = kvnode_syncs(s) if s.name.startswith("kvnode") else None
    out = subprocess.run(["redis-benchmark", "-h", "127.0.0.1",
                          "-p", str(s.ports[s.leader]), "-t", "set",
                          "-n", str(n), "-c", str(clients), "-r", "100000",
                          "-d", "100", "--csv"],
                         capture_output=True, text=True, timeout=600)
    t1 = [cpu_ticks(pid) for pid in s.pids]
    x1 = sum(ctx_switches(pid) for pid in s.pids)
    if y0 or k0:
        time.sleep(0.05)  # the slower follower's last ack
    y1 = floor3_syncs(s) if y0 else None
    k1 = kvnode_syncs(s) if k0 else None
    row = None
    for line in out.stdout.splitlines():
        if line.startswith('"SET"'):
            row = [x.strip('"') for x in line.split(",")]
    if row is None:
        sys.exit("bench-kv: redis-benchmark against %s printed no result:"
                 "\n%s%s" % (s.name, out.stdout, out.stderr))
    us_per_tick = 1e6 / CLK_TCK
    lead = s.pids.index(leader_pid)
    res = {
        "ops": float(row[1]),
        "p50": float(row[4]) * 1000,
        "p99": float(row[6]) * 1000,
        "cpu": (t1[lead] - t0[lead]) * us_per_tick / n,
        "cpu_all": sum(b - a for a, b in zip(t0, t1)) * us_per_tick / n,
        "cs_all": (x1 - x0) / n,
    }
    if y0:
        w = max(1, y1[0] - y0[0])
        res["sync_leader"] = (y1[1] - y0[1]) / w
        res["sync_followers"] = [(y1[i] - y0[i]) / w for i in (2, 3)]
    if k0 and k1:
        res["sync_leader"] = (k1[0] - k0[0]) / n
        res["sync_followers"] = [(k1[i] - k0[i]) / n for i in (1, 2)]
    return res


def floor_once():
    out = subprocess.run([BIN["floor"], RUN, "800"],
                         capture_output=True, text=True, timeout=120)
    vals = dict(kv.split("=") for kv in out.stdout.split()[1:])
    return {k: float(v) for k, v in vals.items()}


def lib_once(system, w):
    d = os.path.join(RUN, "lib-%s-%d" % (system, w))
    shutil.rmtree(d, ignore_errors=True)
    ps = []
    for i in range(3):
        dd = os.path.join(d, "n%d" % (i + 1))
        os.makedirs(dd, exist_ok=True)
        common = ["--id", str(i + 1), "--dir", dd,
                  "--election-ms", "150" if i == 0 else "1000",
                  "--warmup", "0.5", "--seconds", str(LIB_SECONDS)]
        if system.startswith("seshat"):
            exe = BIN["seshat_node" if system == "seshat" else system]
            args = [exe, "--raft-base", str(PORT + 51),
                    "--w", str(w)] + common
        else:
            args = [BIN["craft"], "--raft-base", str(PORT + 61),
                    "--bench", str(w)] + common
        ps.append(subprocess.Popen(args, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL,
                                   stdin=subprocess.DEVNULL, text=True))
    procs.extend(ps)
    result = None
    deadline = time.time() + 30 + LIB_SECONDS
    while result is None and time.time() < deadline:
        for p in ps:
            if p.poll() is not None:
                out = p.stdout.read()
                for line in out.splitlines():
                    if line.startswith("RESULT"):
                        result = dict(kv.split("=")
                                      for kv in line.split()[1:])
                if result is None:
                    break
        time.sleep(0.05)
    for p in ps:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        p.wait()
        procs.remove(p)
    shutil.rmtree(d, ignore_errors=True)
    if result is None:
        sys.exit("bench-kv: %s --w %d gave no result" % (system, w))
    return {"ops": float(result["ops"]), "p50": float(result["p50_us"]),
            "p99": float(result["p99_us"]),
            "cpu": float(result["cpu_us_per_op"])}


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def fmt_int(x):
    return "{:,}".format(int(round(x)))


def main():
    shutil.rmtree(RUN, ignore_errors=True)
    os.makedirs(RUN)
    have_craft = os.access(BIN["craft"], os.X_OK) and "craft" not in SKIP
    if not shutil.which("redis-server") or not shutil.which(
            "redis-benchmark"):
        sys.exit("bench-kv: needs redis-server and redis-benchmark "
                 "(apt-get install redis-server redis-tools)")
    if not have_craft and "craft" not in SKIP:
        log("NOTE: canonical raft is skipped: build/bench/craft_kv was not "
            "built because libraft-dev or libuv1-dev is missing "
            "(apt-get install libraft-dev libuv1-dev)")
    log("bench-kv: %d round(s), clients %s, %s, load average %s" %
        (ROUNDS, CLIENTS, "QUICK" if QUICK else "full",
         open("/proc/loadavg").read().split()[0]))
    busy = [p for p in range(PORT + 1, PORT + 91) if port_busy(p)]
    if busy:
        sys.exit("bench-kv: ports %s are in use; pick other ports with "
                 "PORT_BASE=N" % busy)
    started = time.time()
    systems = []
    try:
        systems.append(start_kvnode())
        if BASE:
            systems.append(start_kvnode("kvnode@base", 70))
        if "redis" not in SKIP:
            systems.append(start_redis())
        if have_craft:
            systems.append(start_craft())
        if "floor3" not in SKIP:
            for i, w in enumerate(FLOOR3_WINDOWS[:2]):
                systems.append(start_floor3(w, "floor3" if i == 0 else
                                            "floor3-w%d" % w, 3 * i))
        names = [s.name for s in systems]
        res = {(s.name, c): [] for s in systems for c in CLIENTS}
        floors = []
        lib_sys = (["seshat"] + (["seshat@base"] if BASE else []) +
                   (["craft"] if have_craft else []))
        lib = {(s, w): [] for s in lib_sys for w in WINDOWS}
        for r in range(ROUNDS):
            order = systems[r % len(systems):] + systems[:r % len(systems)]
            for c in CLIENTS:
                for s in order:
                    if c == 1 and "floor" not in SKIP:
                        # the floor next to every single-client run, so
                        # that it sees the same moment of a noisy disk
                        floors.append(floor_once())
                    x = bench_once(s, c)
                    res[(s.name, c)].append(x)
                    log("round %d  %-11s %3d clients  %9s ops/s  p50 %6.0f "
                        "µs  p99 %6.0f µs  leader CPU %5.1f µs/write" %
                        (r + 1, s.name, c, fmt_int(x["ops"]), x["p50"],
                         x["p99"], x["cpu"]))
                    if "sync_leader" in x:
                        log("         %s syncs per write: leader "
                            "%.3f, followers %.3f and %.3f" %
                            ((s.name, x["sync_leader"]) +
                             tuple(x["sync_followers"])))
            lorder = lib_sys[r % len(lib_sys):] + lib_sys[:r % len(lib_sys)]
            for w in WINDOWS:
                for ls in lorder:
                    x = lib_once(ls, w)
                    lib[(ls, w)].append(x)
                    log("round %d  lib %-11s W=%-4d %9s ops/s  p50 %6.0f µs"
                        "  p99 %6.0f µs  leader CPU %5.1f µs/entry" %
                        (r + 1, ls, w, fmt_int(x["ops"]), x["p50"], x["p99"],
                         x["cpu"]))
    finally:
        stop_all()

    fl = ({k: statistics.median(f[k] for f in floors) for k in floors[0]}
          if floors else None)
    if fl:
        log("")
        log("Floor (median of %d): loopback round trip %.0f µs + fdatasync "
            "%.0f µs = %.0f µs (an fdatasync on an otherwise idle machine: "
            "%.0f µs; bench/floor.c says why)" %
            (len(floors), fl["rtt_us"], fl["fsync_us"], fl["floor_us"],
             fl["fsync_idle_us"]))
    log("")
    log("redis-benchmark SET, 100 B values, 100k keys; medians of %d "
        "round(s)" % ROUNDS)
    hdr = ("| system | clients | ops/s | p50 µs | p99 µs | vs redis | "
           "vs craft | leader CPU µs/write | all nodes CPU µs/write | "
           "all nodes switches/write |")
    log(hdr)
    log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in CLIENTS:
        for n in names:
            rows = res[(n, c)]
            ops = med(rows, "ops")
            vr = (ops / med(res[("redis", c)], "ops")
                  if ("redis", c) in res else None)
            vc = ops / med(res[("craft", c)], "ops") if have_craft else None
            log("| %s | %d | %s | %.0f | %.0f | %s | %s | %.1f | %.1f | "
                "%.2f |" %
                (n, c, fmt_int(ops), med(rows, "p50"), med(rows, "p99"),
                 "%.2fx" % vr if vr else "-",
                 "%.2fx" % vc if vc else "-", med(rows, "cpu"),
                 med(rows, "cpu_all"), med(rows, "cs_all")))
    if fl:
        log("")
        kp50 = med(res[("kvnode", 1)], "p50")
        line = "kvnode 1-client p50 = %.2fx the floor" % (kp50 /
                                                         fl["floor_us"])
        if have_craft:
            line += ", %.2fx canonical raft's p50" % (
                kp50 / med(res[("craft", 1)], "p50"))
        log(line)
    for n in names:
        if not n.startswith("kvnode") or \
                any("sync_leader" not in r for c in CLIENTS
                    for r in res[(n, c)]):
            continue
        log("")
        for c in CLIENTS:
            rows = res[(n, c)]
            log("%s syncs per write at %3d clients: leader %.3f, "
                "followers %.3f and %.3f" %
                (n, c, med(rows, "sync_leader"),
                 statistics.median(r["sync_followers"][0] for r in rows),
                 statistics.median(r["sync_followers"][1] for r in rows)))
    if ("floor3", CLIENTS[0]) in res:
        log("")
        for c in CLIENTS:
            rows = res[("floor3", c)]
            log("kvnode vs floor3 at %3d clients: %.2fx (floor3 = %.2fx "
                "redis); floor3 syncs per write: leader %.3f, "
                "followers %.3f and %.3f" %
                (c, med(res[("kvnode", c)], "ops") / med(rows, "ops"),
                 med(rows, "ops") / med(res[("redis", c)], "ops")
                 if ("redis", c) in res else float("nan"),
                 med(rows, "sync_leader"),
                 statistics.median(r["sync_followers"][0] for r in rows),
                 statistics.median(r["sync_followers"][1] for r in rows)))
    if not WINDOWS:
        log("bench-kv: %.0f s; data in %s" % (time.time() - started, RUN))
        return
    log("")
    log("Library level: 3 processes, W proposals of 100 B in flight on the "
        "leader; medians of %d round(s)" % ROUNDS)
    log("| system | W | entries/s | p50 µs | p99 µs | vs craft | "
        "leader CPU µs/entry |")
    log("|---|---:|---:|---:|---:|---:|---:|")
    for w in WINDOWS:
        for ls in lib_sys:
            rows = lib[(ls, w)]
            vc = (med(rows, "ops") / med(lib[("craft", w)], "ops")
                  if have_craft else None)
            log("| %s | %d | %s | %.0f | %.0f | %s | %.1f |" %
                ({"seshat": "seshat (engine+WAL+TCP)",
                  "craft": "canonical raft"}.get(ls, ls), w, fmt_int(med(rows, "ops")),
                 med(rows, "p50"), med(rows, "p99"),
                 "%.2fx" % vc if vc else "-", med(rows, "cpu")))
    log("")
    log("bench-kv: %.0f s; data in %s" % (time.time() - started, RUN))


if __name__ == "__main__":
    main()
