"""What a snapshot costs the clients: --snapshot-fork yes vs no, in one run.

    python3 test/kvnode/bench_snapshot.py --kvnode build/examples/kvnode/kvnode

Starts two 3-process kvnode clusters on loopback (WAL storage, fsync before
every acknowledgement, automatic snapshots off), A with --snapshot-fork yes
and B with --snapshot-fork no, and loads KEYS random keys of 100 bytes into
each (redis-benchmark).  Then, ROUNDS times, alternating: one client sends
SETs to the leader back to back for SECONDS and records each latency, and
one second in, CLUSTER SNAPSHOT goes to the three nodes at once (as the
entry and byte thresholds make all three snapshot at about the same
index).  Prints each round's latency percentiles and maximum, how long the
snapshots took to be stored, and the medians.  Not part of make test: a
figure, to be measured on a quiet machine.
"""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from kvtest import Suite, check, encode  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "5"))
KEYS = int(os.environ.get("KEYS", "100000"))
SECONDS = float(os.environ.get("SECONDS", "2.5"))
BENCH = shutil.which("redis-benchmark")
suite = Suite("bench_snapshot")


def load(c, leader):
    p = subprocess.run([BENCH, "-p", str(c.nodes[leader].client_port),
                        "-t", "set", "-n", str(4 * KEYS), "-c", "50",
                        "-d", "100", "-r", str(KEYS), "-q"],
                       capture_output=True, timeout=900)
    check(p.returncode == 0, p.stderr)


def snapshot_all(c, took):
    """CLUSTER SNAPSHOT on every node at once; each reply's delay (ms)."""
    time.sleep(1.0)
    socks = [socket.create_connection(("127.0.0.1", n.client_port))
             for n in c.nodes.values()]
    t0 = time.perf_counter()
    for s in socks:
        s.sendall(encode("CLUSTER", "SNAPSHOT"))
    for s in socks:
        s.settimeout(30)
        r = s.recv(100)
        check(r.startswith(b"+OK"), r)
        took.append((time.perf_counter() - t0) * 1e3)
        s.close()


def probe(c, leader):
    """One client's SET latencies (ms, sorted) while every node snapshots,
    and how long the snapshots took to be stored."""
    s = socket.create_connection(("127.0.0.1", c.nodes[leader].client_port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    took = []
    th = threading.Thread(target=snapshot_all, args=(c, took))
    th.start()
    lat, i, end = [], 0, time.time() + SECONDS
    while time.time() < end:
        i += 1
        cmd = encode("SET", "probe%d" % (i % 1000), "abc")
        t = time.perf_counter()
        s.sendall(cmd)
        check(s.recv(100) == b"+OK\r\n")
        lat.append((time.perf_counter() - t) * 1e3)
    th.join()
    s.close()
    return sorted(lat), took


def pct(lat, q):
    return lat[min(len(lat) - 1, int(len(lat) * q))]


@suite.test
def bench_snapshot_fork_vs_inline():
    if BENCH is None:
        print("  SKIP: redis-benchmark not installed (redis-tools)")
        return
    clusters = {}
    for mode in ("yes", "no"):
        c = suite.cluster("snap" + mode, n=3, storage="wal",
                          extra=["--snapshot-entries", "0",
                                 "--snapshot-fork", mode])
        c.start_all()
        clusters[mode] = (c, c.wait_leader())
        load(*clusters[mode])
    res = {"yes": [], "no": []}
    for r in range(ROUNDS):
        for mode in ("yes", "no"):
            lat, took = probe(*clusters[mode])
            res[mode].append((pct(lat, 0.5), pct(lat, 0.99),
                              pct(lat, 0.999), lat[-1], max(took)))
            print("  round %d, --snapshot-fork %-3s: p50 %.2f p99 %.2f "
                  "p99.9 %.2f max %.2f ms (%d SETs); snapshots stored "
                  "after %.0f ms" % ((r + 1, mode) + res[mode][-1][:4] +
                                     (len(lat), res[mode][-1][4])))
    for mode in ("yes", "no"):
        med = [statistics.median(x[k] for x in res[mode]) for k in range(5)]
        c, leader = clusters[mode]
        inf = c.info(leader)
        print("  median, --snapshot-fork %-3s: p50 %.2f p99 %.2f p99.9 "
              "%.2f max %.2f ms; stored after %.0f ms; leader's last fork "
              "%s us" % ((mode,) + tuple(med) +
                         (inf["snapshot_fork_us"],)))
    print("  (%d keys of 100 B, %d rounds of %.1f s, 3 nodes, WAL)"
          % (KEYS, ROUNDS, SECONDS))


if __name__ == "__main__":
    suite.main()
