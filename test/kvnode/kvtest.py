"""kvtest.py — a small RESP client and a kvnode cluster harness for the
process-level tests (stdlib only).

    c = Cluster(args.kvnode, "basic", n=3)
    c.start_all(); leader = c.wait_leader()
    conn = c.conn(leader); conn.call("SET", "k", "v")

Each suite is a script that defines tests with @suite.test and ends with
suite.main(): every test runs, a failure prints its traceback and the
tails of the node logs, and the last line is "N passed, N failed".

Ports: each cluster takes a block of free loopback ports chosen at random
in 27000-28999 (checked by binding), so parallel runs rarely collide.
Data and logs go to a temporary directory, kept when a test fails.
"""

import argparse
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

PORT_LO, PORT_HI = 27000, 28999


class Err(str):
    """An error reply ("-ERR ..."), returned rather than raised."""


class Closed(Exception):
    """The server closed the connection."""


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.addr = (host, port)
        self.sock = socket.create_connection(self.addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, *args):
        self.sock.sendall(encode(*args))

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise Closed("connection closed by the server")
        self.buf += d

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return Err(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("bad reply line %r" % line)

    def call(self, *args):
        self.send(*args)
        return self.reply()

    def pipeline(self, cmds):
        self.sock.sendall(b"".join(encode(*c) for c in cmds))
        return [self.reply() for _ in cmds]

    def closed_by_peer(self, wait=2.0):
        """True if the server closes the connection within `wait` s."""
        self.sock.settimeout(wait)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
                self.buf += d
        except socket.timeout:
            return False
        except OSError:
            return True


def parse_info(text):
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def free_ports(n):
    """n consecutive free loopback ports in PORT_LO..PORT_HI."""
    rnd = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(200):
        base = rnd.randrange(PORT_LO, PORT_HI - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return list(range(base, base + n))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports in %d-%d" % (PORT_LO, PORT_HI))


def import_redis():
    """redis-py (Debian's python3-redis), or None.  The python3 first on
    PATH may be another installation than the system one that Debian's
    package installs into: then the script re-runs itself under that
    one."""
    try:
        import redis
        return redis
    except ImportError:
        sysp = "/usr/bin/python3"
        if (os.path.realpath(sys.executable) != os.path.realpath(sysp)
                and os.path.exists(sysp)
                and subprocess.run([sysp, "-c", "import redis"],
                                   capture_output=True).returncode == 0):
            os.execv(sysp, [sysp] + sys.argv)
        return None


def run_script_env(kvnode, run_dir, port, raft_port, **more):
    """The environment and the path of examples/kvnode/run.sh and stop.sh
    (what make run / make stop call): script(name) -> path."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    env = dict(os.environ, KVNODE_BIN=kvnode, KVNODE_RUN_DIR=run_dir,
               KVNODE_PORT=str(port), KVNODE_RAFT_PORT=str(raft_port),
               **more)
    return env, lambda name: os.path.join(root, "examples", "kvnode", name)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Node:
    def __init__(self, cluster, nid, client_port, raft_port):
        self.c = cluster
        self.id = nid
        self.client_port = client_port
        self.raft_port = raft_port
        self.dir = os.path.join(cluster.dir, "node%d" % nid)
        self.log = os.path.join(cluster.dir, "node%d.log" % nid)
        self.proc = None

    @property
    def addr(self):
        return "127.0.0.1:%d/127.0.0.1:%d" % (self.raft_port, self.client_port)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, kvnode, name, n=3, max_nodes=None, storage=None,
                 election_ms=300, extra=(), groups=1):
        self.kvnode = kvnode
        self.name = name
        # KVTEST_STORAGE=mem runs the WAL suites on the memory store.
        self.storage = storage or os.environ.get("KVTEST_STORAGE", "wal")
        self.election_ms = election_ms
        self.extra = list(extra)
        self.groups = groups
        if groups > 1:
            self.extra += ["--groups", str(groups)]
        self.dir = tempfile.mkdtemp(prefix="kvnode-%s-" % name)
        total = max_nodes or n
        ports = free_ports(2 * total)
        self.nodes = {}
        for i in range(1, total + 1):
            self.nodes[i] = Node(self, i, ports[2 * (i - 1)],
                                 ports[2 * (i - 1) + 1])
        self.initial = list(range(1, n + 1))

    def peers_spec(self, ids=None):
        ids = ids or self.initial
        return ",".join("%d=%s" % (i, self.nodes[i].addr) for i in ids)

    def start(self, nid, peers=True, extra=()):
        node = self.nodes[nid]
        args = [self.kvnode, "--id", str(nid), "--data", node.dir,
                "--client", "127.0.0.1:%d" % node.client_port,
                "--raft", "127.0.0.1:%d" % node.raft_port,
                "--storage", self.storage,
                "--election-ms", str(self.election_ms)]
        if peers is True:
            args += ["--peers", self.peers_spec()]
        elif peers:
            args += ["--peers", peers]
        args += self.extra + list(extra)
        logf = open(node.log, "ab")
        node.proc = subprocess.Popen(args, stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL)
        logf.close()
        self.wait_port(nid)
        return node

    def wait_port(self, nid, timeout=10.0):
        node = self.nodes[nid]
        end = time.time() + timeout
        while time.time() < end:
            if node.proc.poll() is not None:
                raise RuntimeError("node %d exited with %s at start"
                                   % (nid, node.proc.returncode))
            try:
                socket.create_connection(("127.0.0.1", node.client_port),
                                         timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("node %d did not listen" % nid)

    def start_all(self):
        for i in self.initial:
            self.start(i)

    def kill(self, nid, sig=signal.SIGKILL):
        node = self.nodes[nid]
        if node.alive():
            node.proc.send_signal(sig)
            node.proc.wait(timeout=30)
        return node.proc.returncode if node.proc else None

    def stop(self, nid):
        return self.kill(nid, signal.SIGTERM)

    def live(self):
        return [i for i, n in self.nodes.items() if n.alive()]

    def conn(self, nid, timeout=10.0):
        return Conn(self.nodes[nid].client_port, timeout=timeout)

    def info(self, nid, section="raft"):
        c = self.conn(nid, timeout=5)
        try:
            return parse_info(c.call("INFO", section))
        finally:
            c.close()

    def wait_leader(self, timeout=10.0, among=None):
        """The id of a leader that a majority of the live nodes follow."""
        end = time.time() + timeout
        last = None
        while time.time() < end:
            ids = among or self.live()
            views = {}
            for i in ids:
                try:
                    inf = self.info(i)
                except (OSError, Closed, ValueError):
                    continue
                views[i] = inf
            leaders = [i for i, v in views.items() if v.get("role") == "leader"]
            for lid in leaders:
                term = views[lid]["term"]
                agree = [i for i, v in views.items()
                         if v.get("leader_id") == str(lid)
                         and v.get("term") == term]
                if len(agree) * 2 > len(ids):
                    return lid
            last = views
            time.sleep(0.05)
        raise AssertionError("no leader within %.1fs: %r" % (timeout, last))

    def wait_applied(self, nid, index, timeout=15.0):
        end = time.time() + timeout
        inf = None
        while time.time() < end:
            try:
                inf = self.info(nid)
                if int(inf["last_applied"]) >= index:
                    return inf
            except (OSError, Closed):
                pass
            time.sleep(0.05)
        raise AssertionError("node %d did not apply %d: %r" % (nid, index, inf))

    def follow(self, *args, start=None, tries=60):
        """Run a command on the cluster, following MOVED and waiting out
        CLUSTERDOWN.  Returns (reply, node id that answered)."""
        nid = start or random.choice(self.live())
        for _ in range(tries):
            try:
                c = self.conn(nid, timeout=10)
                try:
                    r = c.call(*args)
                finally:
                    c.close()
            except (OSError, Closed):
                nid = random.choice(self.live())
                time.sleep(0.05)
                continue
            if isinstance(r, Err) and r.startswith("MOVED "):
                port = int(r.split()[2].rsplit(":", 1)[1])
                nid = self.by_client_port(port)
                continue
            if isinstance(r, Err) and (r.startswith("CLUSTERDOWN")
                                       or r.startswith("TRYAGAIN")):
                time.sleep(0.1)
                nid = random.choice(self.live())
                continue
            return r, nid
        raise AssertionError("no answer to %r" % (args,))

    def by_client_port(self, port):
        for i, n in self.nodes.items():
            if n.client_port == port:
                return i
        raise AssertionError("MOVED to unknown port %d" % port)

    def log_tails(self, lines=15):
        out = []
        for i, n in self.nodes.items():
            if os.path.exists(n.log):
                with open(n.log, "rb") as f:
                    tail = f.read().decode(errors="replace").splitlines()[-lines:]
                out.append("--- node %d log (%s):" % (i, n.log))
                out.extend("    " + l for l in tail)
        return "\n".join(out)

    def stop_all_checked(self):
        """SIGTERM every live node; each must exit 0 (a clean shutdown,
        and no leak reports in sanitizer builds)."""
        bad = []
        for i, n in self.nodes.items():
            if not n.alive():
                continue
            n.proc.send_signal(signal.SIGTERM)
            try:
                n.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()
                bad.append("node %d hung on SIGTERM" % i)
                continue
            if n.proc.returncode != 0:
                bad.append("node %d exited %d on SIGTERM"
                           % (i, n.proc.returncode))
        return bad

    def sanitizer_reports(self):
        """Sanitizer findings in the node logs (ASan/UBSan builds)."""
        found = []
        for i, n in self.nodes.items():
            if not os.path.exists(n.log):
                continue
            with open(n.log, "rb") as f:
                text = f.read().decode(errors="replace")
            for pat in ("runtime error:", "AddressSanitizer",
                        "LeakSanitizer", "UndefinedBehaviorSanitizer"):
                if pat in text:
                    found.append("node %d: %s" % (i, pat))
        return found

    def close(self, keep=False):
        for i in self.nodes:
            self.kill(i)
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class Suite:
    def __init__(self, name):
        self.name = name
        self.tests = []
        self.clusters = []
        p = argparse.ArgumentParser()
        p.add_argument("--kvnode", required=True)
        p.add_argument("only", nargs="?")
        self.args = p.parse_args()
        self.kvnode = os.path.abspath(self.args.kvnode)

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def cluster(self, *a, **kw):
        c = Cluster(self.kvnode, *a, **kw)
        self.clusters.append(c)
        return c

    def main(self):
        passed = failed = 0
        t0 = time.time()
        for fn in self.tests:
            if self.args.only and self.args.only not in fn.__name__:
                continue
            start = time.time()
            try:
                fn()
                for c in self.clusters:
                    bad = c.stop_all_checked()
                    bad += c.sanitizer_reports()
                    if bad:
                        raise AssertionError("sanitizer: %s" % ", ".join(bad))
                passed += 1
                print("ok   %s (%.1fs)" % (fn.__name__, time.time() - start))
            except Exception:
                failed += 1
                print("FAIL %s (%.1fs)" % (fn.__name__, time.time() - start))
                for line in traceback.format_exc().splitlines():
                    print("  " + line)
                for c in self.clusters:
                    print("  data kept in " + c.dir)
                    for line in c.log_tails().splitlines():
                        print("  " + line)
            for c in self.clusters:
                c.close(keep=failed > 0)
            self.clusters = []
            sys.stdout.flush()
        print("# %s: %.1fs" % (self.name, time.time() - t0))
        print("%d passed, %d failed" % (passed, failed))
        sys.exit(1 if failed else 0)


def check(cond, msg=""):
    if not cond:
        raise AssertionError(msg)


def short(v, n=300):
    r = repr(v)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(r)


def eq(a, b, msg=""):
    if a != b:
        raise AssertionError("%s != %s %s" % (short(a), short(b), msg))


def wait_for(pred, timeout=10.0, what="condition", step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out waiting for " + what)
