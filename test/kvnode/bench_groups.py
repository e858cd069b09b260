"""Write throughput with the slots over 3 Raft groups vs 1, in one run.

    python3 test/kvnode/bench_groups.py --kvnode build/examples/kvnode/kvnode

Starts two 3-process kvnode clusters on loopback (WAL storage, fsync before
every acknowledgement): A with one group, B with --groups 3 and its leaders
on the three processes.  Then, ROUNDS times, alternating: redis-benchmark
SET against A's leader (redis-benchmark --cluster refuses a cluster of one
master) and redis-benchmark --cluster SET against B (each key to its
group's leader).  Same clients, requests, value size and key space.
Prints each run and the medians' ratio.  Not part of make test: a figure,
to be measured on a quiet machine (and quoted as a ratio on a shared one).
"""
import os
import re
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from kvtest import Suite, check, parse_info, wait_for  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
REQUESTS = int(os.environ.get("REQUESTS", "60000"))
CLIENTS = int(os.environ.get("CLIENTS", "50"))
# wal: a runtime per group (the runtime's WAL holds one group today);
# mem: one runtime carries all groups (one connection per peer process)
STORAGE = os.environ.get("STORAGE", "wal")
BENCH = shutil.which("redis-benchmark")
suite = Suite("bench_groups")


def rps(out):
    m = re.search(r"SET: ([0-9.]+) requests per second", out)
    check(m, out)
    return float(m.group(1))


def cpu_s(c):
    """CPU seconds (user + system) used so far by c's processes."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for n in c.nodes.values():
        with open("/proc/%d/stat" % n.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def run(args):
    p = subprocess.run([BENCH] + args + ["-t", "set", "-n", str(REQUESTS),
                                          "-c", str(CLIENTS), "-d", "100",
                                          "-r", "100000", "-q"],
                       capture_output=True, timeout=600)
    out = (p.stdout + p.stderr).decode(errors="replace")
    check(p.returncode == 0, out)
    return rps(out.replace("\r", "\n"))


def group_leaders(c):
    inf = c.info(1)
    return [dict(f.split("=", 1) for f in inf["group_%d" % g].split(","))
            ["leader_id"] for g in range(3)]


@suite.test
def bench_one_group_vs_three():
    if BENCH is None:
        print("  SKIP: redis-benchmark not installed (redis-tools)")
        return
    a = suite.cluster("bench1", n=3, storage=STORAGE)
    a.start_all()
    lead_a = a.wait_leader()
    b = suite.cluster("bench3", n=3, groups=3, storage=STORAGE)
    b.start_all()
    wait_for(lambda: sorted(group_leaders(b)) == ["1", "2", "3"], 30,
             "B's leaders on the three processes")
    one, three, cpu1, cpu3 = [], [], [], []
    for r in range(ROUNDS):
        t = cpu_s(a)
        one.append(run(["-p", str(a.nodes[lead_a].client_port)]))
        cpu1.append((cpu_s(a) - t) * 1e6 / REQUESTS)
        t = cpu_s(b)
        three.append(run(["--cluster", "-p", str(b.nodes[1].client_port)]))
        cpu3.append((cpu_s(b) - t) * 1e6 / REQUESTS)
        print("  round %d: 1 group %.0f SET/s (%.0f us CPU per write, 3 "
              "processes), 3 groups %.0f SET/s (%.0f us)"
              % (r + 1, one[-1], cpu1[-1], three[-1], cpu3[-1]))
    check(sorted(group_leaders(b)) == ["1", "2", "3"], "leaders moved")
    m1, m3 = statistics.median(one), statistics.median(three)
    print("  median: 1 group %.0f SET/s, 3 groups %.0f SET/s: %.2fx; CPU "
          "per write %.0f vs %.0f us"
          % (m1, m3, m3 / m1, statistics.median(cpu1),
             statistics.median(cpu3)))
    print("  (%d clients, %d requests of 100 B per run, %s storage, %d "
          "rounds)" % (CLIENTS, REQUESTS, STORAGE, ROUNDS))
    commits = [int(parse_info(a.conn(lead_a).call("INFO", "raft"))
                   ["commit_index"])]
    check(commits[0] >= ROUNDS * REQUESTS, commits)


if __name__ == "__main__":
    suite.main()
