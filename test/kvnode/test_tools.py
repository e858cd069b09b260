"""The real Redis tools against a 3-node WAL cluster: redis-cli -c follows
MOVED from a follower, redis-benchmark runs its SET/GET/INCR/MSET/PING
tests (plain and pipelined) against the leader without a single error.
Needs redis-tools (apt-get install redis-tools); without it the tests are
reported as skipped."""

import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Suite, check, eq, parse_info  # noqa: E402

suite = Suite("tools")
CLI = shutil.which("redis-cli")
BENCH = shutil.which("redis-benchmark")


def skip_unless(tool, name):
    if tool is None:
        print("  SKIP: %s not found; install redis-tools "
              "(apt-get install redis-tools)" % name)
        return True
    return False


def cli(port, *args, stdin=None):
    p = subprocess.run([CLI, "-c", "-p", str(port)] + list(args),
                       input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@suite.test
def test_redis_cli_follows_redirects():
    if skip_unless(CLI, "redis-cli"):
        return
    c = suite.cluster("cli", n=3)
    c.start_all()
    leader = c.wait_leader()
    f = [i for i in c.live() if i != leader][0]
    port = c.nodes[f].client_port
    rc, out, err = cli(port, "SET", "greeting", "hello world")
    eq((rc, out.strip()), (0, "OK"), err)
    rc, out, err = cli(port, "GET", "greeting")
    eq((rc, out.strip()), (0, "hello world"), err)
    rc, out, err = cli(port, "INCRBY", "n", "5")
    eq(out.strip(), "5")
    # Several commands on one connection, fed on stdin.
    rc, out, err = cli(port, stdin=b"SET a 1\nINCR a\nGET a\nMGET a {a}greeting\n"
                                   b"DEL a\nEXISTS a\nDBSIZE\n")
    eq(rc, 0, err)
    lines = [l for l in out.splitlines() if not l.startswith("-> Redirected")]
    eq(lines, ["OK", "2", "2", "2", "", "1", "0", "2"], out)
    rc, out, err = cli(port, "INFO", "raft")
    info = parse_info(out)
    eq(info["node_id"], str(f))
    eq(info["leader_id"], str(leader))
    rc, out, err = cli(port, "CLUSTER", "NODES")
    eq(len(out.strip().splitlines()), 3, out)
    rc, out, err = cli(port, "PING")
    eq(out.strip(), "PONG")


def bench(port, *extra):
    args = [BENCH, "-p", str(port), "-t", "set,get,incr,mset,ping",
            "-n", "3000", "-c", "20", "-q"] + list(extra)
    p = subprocess.run(args, capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


@suite.test
def test_redis_benchmark_runs_without_errors():
    if skip_unless(BENCH, "redis-benchmark"):
        return
    c = suite.cluster("bench", n=3)
    c.start_all()
    leader = c.wait_leader()
    port = c.nodes[leader].client_port
    for extra in ((), ("-P", "16")):
        rc, out, err = bench(port, *extra)
        eq(rc, 0, out + err)
        text = (out + err).replace("\r", "\n")  # progress lines use \r
        # redis-benchmark 7 stops at the first error reply.
        check("Error" not in text and "ERR" not in text, text)
        for t in ("SET", "GET", "INCR", r"MSET \(10 keys\)", "PING_INLINE",
                  "PING_MBULK"):
            check(re.search(r"^%s: [0-9.]+ requests per second" % t, text,
                            re.M), "no result for %s: %s" % (t, text))
        print("  redis-benchmark %s: %s" % (" ".join(extra) or "(no -P)",
              ", ".join(l.split(" requests")[0]
                        for l in text.splitlines() if "requests per" in l)))
    # The cluster is intact and every node applied the same writes.
    commit = int(c.info(leader)["commit_index"])
    keys = c.info(leader, "keyspace")["db0"]
    for i in c.live():
        c.wait_applied(i, commit)
        eq(c.info(i, "keyspace")["db0"], keys)


@suite.test
def test_make_run_and_stop_scripts():
    """examples/kvnode/run.sh and stop.sh (what make run / make stop call)."""
    import tempfile
    from kvtest import Conn, free_ports, run_script_env
    run_dir = tempfile.mkdtemp(prefix="kvnode-run-")
    ports = free_ports(6)
    env, script = run_script_env(suite.kvnode, run_dir, ports[0], ports[3])
    try:
        p = subprocess.run(["bash", script("run.sh")], env=env,
                           capture_output=True, timeout=60)
        out = p.stdout.decode()
        eq(p.returncode, 0, out + p.stderr.decode())
        check("is the leader" in out and "redis-cli -c -p %d" % ports[0]
              in out and "make stop" in out, out)
        check("raft (peers):   127.0.0.1:%d" % ports[3] in out, out)
        # Running again leaves running nodes alone...
        p = subprocess.run(["bash", script("run.sh")], env=env,
                           capture_output=True, timeout=60)
        check(p.returncode == 0 and b"already running" in p.stdout
              and b"starting node" not in p.stdout, p.stdout)
        # ...and restarts only a node that died.
        with open(os.path.join(run_dir, "node2.pid")) as f:
            pid2 = int(f.read())
        with open(os.path.join(run_dir, "node1.pid")) as f:
            pid1 = int(f.read())
        os.kill(pid2, 9)
        end = time.time() + 10
        while os.path.exists("/proc/%d" % pid2) and time.time() < end:
            time.sleep(0.05)
        p = subprocess.run(["bash", script("run.sh")], env=env,
                           capture_output=True, timeout=60)
        out = p.stdout.decode()
        eq(p.returncode, 0, out)
        check("starting node 2" in out and "starting node 1" not in out
              and "starting node 3" not in out, out)
        with open(os.path.join(run_dir, "node1.pid")) as f:
            eq(int(f.read()), pid1)
        conn = Conn(ports[1])
        r = conn.call("SET", "via-run", "1")
        check(r == "OK" or r.startswith("MOVED"), r)
        conn.close()
        p = subprocess.run(["bash", script("stop.sh")], env=env,
                           capture_output=True, timeout=60)
        out = p.stdout.decode()
        check(p.returncode == 0 and "stopped 3 node(s)" in out, out)
        for port in ports[:3]:
            try:
                Conn(port, timeout=1).close()
                raise AssertionError("port %d still served" % port)
            except OSError:
                pass
    finally:
        subprocess.run(["bash", script("stop.sh")], env=env,
                       capture_output=True, timeout=60)
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    suite.main()
