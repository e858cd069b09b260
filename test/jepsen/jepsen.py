#!/usr/bin/env python3
"""jepsen.py — our own Jepsen-style test of kvnode: a real cluster,
concurrent clients, a random schedule of faults, and a checker.

    python3 test/jepsen/jepsen.py --kvnode build/examples/kvnode/kvnode \
        --seconds 60 [--seed S] [--nodes 3|5] [--faults kill-one,pause,...]
        [--corrupt] [--net auto|netns|loopback] [--test]
    make jepsen JEPSEN_SECONDS=120 SEED=42

One run: start the cluster (cluster.py; one network namespace per node
when root), wait for a leader, start the clients (client.py), play the
fault schedule drawn from the seed (nemesis.py) until the time is up,
stop the clients, heal every fault, read every key once more, and check
the history (checks.py, wgl.py).  The seed is printed first, with the
command that replays it; every anomaly is printed with it too.  A run
with anomalies keeps the nodes' data and logs and writes the whole
history to history.txt in the run's directory.

--test makes the last line "N passed, N failed" (one count per check,
per key), as test/run-all wants; `make test` runs 60 s this way.

Corrupted records are among the default faults: the WAL reports an
acknowledged record that fails its checksum as a lost range and the node
fetches it back from the leader (docs/design.md, protocol-aware repair);
a node that refused to start on one would be an anomaly here.
"""

import argparse
import os
import random
import signal
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checks  # noqa: E402
import cluster as clmod  # noqa: E402
import nemesis as nem  # noqa: E402
from client import Client, final_read  # noqa: E402

REG_KEYS = ["r0", "r1", "r2", "r3"]
COUNTER_KEYS = ["c0"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kvnode", required=True)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    p.add_argument("--clients", type=int, default=6)
    p.add_argument("--faults", default=",".join(nem.ALL_KINDS))
    p.add_argument("--corrupt", action="store_true",
                   help="add corrupt to --faults (it is in the default)")
    p.add_argument("--net", default="auto",
                   choices=("auto", "netns", "loopback"))
    p.add_argument("--no-iptables", action="store_true",
                   help="flaky links flap even if iptables is there")
    p.add_argument("--election-ms", type=int, default=300)
    p.add_argument("--test", action="store_true")
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 1 << 31)
    return a


class Run:
    def __init__(self, args):
        self.a = args
        self.t0 = time.monotonic_ns()
        self.anomalies = []
        self.events = []
        self.lock = threading.Lock()

    def now(self):
        return (time.monotonic_ns() - self.t0) / 1e9

    def say(self, msg):
        line = "[%7.2f] %s" % (self.now(), msg)
        with self.lock:
            self.events.append(line)
            print(line, flush=True)

    def anomaly(self, kind, text):
        with self.lock:
            self.anomalies.append((kind, text))
        self.say("ANOMALY %s: %s" % (kind, text.splitlines()[0]))


def on_sigterm(signum, frame):
    raise SystemExit("jepsen: terminated by signal %d" % signum)


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    a = parse_args()
    kvnode = os.path.abspath(a.kvnode)
    use_netns = a.net == "netns" or (a.net == "auto"
                                     and clmod.netns_usable())
    kinds = [k for k in a.faults.split(",") if k]
    if a.corrupt and "corrupt" not in kinds:
        kinds.append("corrupt")
    bad = [k for k in kinds if k not in nem.ALL_KINDS]
    if bad:
        print("unknown fault kinds %s (known: %s)" % (bad, nem.ALL_KINDS))
        return 2
    skipped = [k for k in kinds if k in nem.NETNS_ONLY and not use_netns]
    kinds = [k for k in kinds if k not in skipped] or ["kill-one"]
    print("jepsen: seed %d, %d nodes, %d clients, %.0fs, network %s" % (
        a.seed, a.nodes, a.clients, a.seconds,
        "namespaces" if use_netns else "loopback"))
    print("jepsen: faults %s%s" % (",".join(kinds), (
        " (skipped without namespaces: %s)" % ",".join(skipped))
        if skipped else ""))
    print("jepsen: replay with: python3 test/jepsen/jepsen.py --kvnode %s "
          "--seconds %g --seed %d --nodes %d%s%s" % (
              a.kvnode, a.seconds, a.seed, a.nodes,
              "" if a.faults == parse_default_faults() else
              " --faults " + a.faults, " --corrupt" if a.corrupt else ""),
          flush=True)
    run = Run(a)
    c = None
    passed = failed = 0
    keep = a.keep
    try:
        try:
            c = clmod.Cluster(kvnode, a.nodes, use_netns,
                              tmpfs_mb=32 if "disk-full" in kinds else 0,
                              election_ms=a.election_ms, log=run.say)
        except RuntimeError as e:
            if a.net != "auto" or not use_netns:
                raise
            # Namespaces looked usable but the set-up failed (a bridge,
            # a veth, a mount): run on loopback rather than not at all.
            print("jepsen: namespaces failed (%s); on loopback without "
                  "%s" % (e, ",".join(k for k in kinds
                                      if k in nem.NETNS_ONLY)))
            kinds[:] = [k for k in kinds if k not in nem.NETNS_ONLY]
            kinds[:] = kinds or ["kill-one"]
            c = clmod.Cluster(kvnode, a.nodes, False, election_ms=a.election_ms,
                              log=run.say)
        run.kinds = kinds
        if a.no_iptables:
            c.iptables = False
        c.initial_ids = list(c.members)
        if use_netns:
            run.say("nodes in namespaces on %s.0/24%s" % (
                c.subnet, ", iptables for flaky links" if c.iptables
                else ", no iptables: flaky links flap"))
        for i in c.members:
            if not c.start(i):
                raise RuntimeError("node %d did not start" % i)
        wait_leader(c, 30)
        run.say("leader %s" % c.leader())
        results = play(run, c, kinds)
        passed, failed = report(run, c, results)
    except Exception:
        traceback.print_exc()
        failed += 1
    finally:
        keep = keep or failed > 0
        if c:
            if keep:
                dump_history(run, c)
            c.close(keep=keep)
            if keep:
                print("jepsen: data, logs and history kept in %s" % c.dir)
    print("jepsen: seed %d: %s" % (a.seed, "%d anomalies" % failed
                                   if failed else "no anomalies"))
    if a.test:
        print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def parse_default_faults():
    return ",".join(nem.ALL_KINDS)


def wait_leader(c, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        lead = c.leader()
        if lead:
            return lead
        time.sleep(0.1)
    return None


def play(run, c, kinds):
    a = run.a
    kinds = run.kinds
    schedule = nem.plan(a.seed, a.seconds, kinds)
    n = nem.Nemesis(c, run.say, run.anomaly)
    stop = threading.Event()
    crnd = random.Random(a.seed ^ 0x5EED)
    clients = [Client(i, c, crnd.getrandbits(32), stop, REG_KEYS,
                      COUNTER_KEYS) for i in range(a.clients)]
    run.clients = clients
    run.t_clients = time.monotonic_ns()
    for cl in clients:
        cl.start()
    start = time.monotonic()
    for at, kind, dur, seed in schedule:
        wait = start + at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if time.monotonic() - start > a.seconds - 2:
            break
        try:
            n.run_one(kind, dur, seed)
        except Exception as e:
            run.anomaly("nemesis", "%s failed: %r" % (kind, e))
            traceback.print_exc()
    rest = start + a.seconds - time.monotonic()
    if rest > 0:
        time.sleep(rest)
    stop.set()
    for cl in clients:
        cl.join(timeout=30)
    run.say("clients stopped; healing")
    n.heal_all()
    lead = wait_leader(c, 60)
    run.say("after healing: leader %s" % lead)
    finals = {}
    for key in REG_KEYS + COUNTER_KEYS:
        # The checks report a key that could not be read.
        finals[key] = final_read(c, key, 60 if lead else 5)
    return n, finals


def report(run, c, results):
    n, finals = results
    a = run.a
    history = [r for cl in run.clients for r in cl.history]
    for k, f in finals.items():
        if f.type == "ok":
            history.append(f)
    run.history = history
    stats = {}
    for r in history:
        stats.setdefault(r.f, {}).setdefault(r.type, 0)
        stats[r.f][r.type] += 1
    print("jepsen: operations %s" % ", ".join(
        "%s %s" % (f, " ".join("%s=%d" % kv for kv in sorted(d.items())))
        for f, d in sorted(stats.items())))
    print("jepsen: faults played %s" % ", ".join(
        "%s=%d" % kv for kv in sorted(n.counts.items())))
    passed = failed = 0
    results = []

    def record(name, anomalies):
        nonlocal passed, failed
        real = [x for x in anomalies if x[0] != "inconclusive"]
        for kind, text in anomalies:
            print(("ANOMALY (seed %d) " % a.seed if kind != "inconclusive"
                   else "NOTE ") + text)
        if real:
            failed += 1
            print("FAIL %s" % name)
        else:
            passed += 1
            print("ok   %s" % name)
        results.append((name, not real))

    errs = [e for cl in run.clients for e in cl.errors]
    if errs:
        run.anomalies.append(("client", "%d client errors (a bug of the "
                              "tester), first: %s" % (len(errs), errs[0])))
    for kind, text in run.anomalies:
        record("fault %s" % kind, [(kind, text)])
    first = None
    for key in REG_KEYS:
        t = time.monotonic()
        an, res = checks.check_linearizable(history, key, 60.0, run.t0)
        if res.ok is False and (first is None or res.blocked.ret < first):
            first = res.blocked.ret
        record("linearizable %s (%d ops, %.1fs)" % (
            key, len(res.ops), time.monotonic() - t), an)
        record("lost-write %s" % key,
               checks.check_lost_write(history, key, finals[key]))
    for key in COUNTER_KEYS:
        an, counts = checks.check_counter(history, key, finals[key])
        desc = ("acked %d, unknown %d, final %d" % counts) if counts else ""
        record("counter %s (%s)" % (key, desc), an)
    bad = c.stop_all_checked()
    record("clean shutdown, no sanitizer reports",
           [("shutdown", "; ".join(bad))] if bad else [])
    ok_ops = sum(1 for r in history if r.type == "ok")
    record("progress (%d ok operations)" % ok_ops,
           [] if ok_ops >= 20 else [("progress", "only %d operations "
                                     "succeeded" % ok_ops)])
    if first is not None:
        print("jepsen: first non-linearizable operation completed at "
              "t=%.2fs (%.2fs after the clients started)" % (
                  (first - run.t0) / 1e9, (first - run.t_clients) / 1e9))
    return passed, failed


def dump_history(run, c):
    hist = getattr(run, "history", None)
    if hist is None and hasattr(run, "clients"):
        hist = [r for cl in run.clients for r in cl.history]
    path = os.path.join(c.dir, "history.txt")
    with open(path, "w") as f:
        f.write("# seed %d; times in seconds since the clients started\n"
                % run.a.seed)
        f.write("# call      return   client op  key  value  type result\n")
        for r in sorted(hist or [], key=lambda r: r.call or 0):
            if r.call is not None:
                f.write(r.line(run.t0) + "\n")
        f.write("\n# nemesis\n")
        f.write("\n".join(run.events) + "\n")


if __name__ == "__main__":
    sys.exit(main())
