"""cluster.py — the kvnode processes under test and the network between
them.

Two set-ups, the same interface:

  netns (when root and `ip netns` works): every node runs in its own
  network namespace, with its own address 10.77.X.<id> on a veth pair
  whose host end is enslaved to a bridge carrying 10.77.X.254 (where the
  clients live, in the root namespace).  Faults on the wire act inside a
  node's namespace only:
    - partition: a permanent neighbour entry that maps the peer's address
      to a MAC nobody has, so frames to it vanish silently (no RST, no
      ICMP: TCP retransmits into the void, as across a dead switch).
      Both ends get one, so the cut is symmetric.  Needs only `ip`.
    - flaky link: `iptables -m statistic --mode random --probability p
      -j DROP` on the traffic from each peer (this kernel has no netem);
      without iptables the link flaps instead (the partition above,
      toggled at random every 50-300 ms).
  Each node's data directory can sit on its own small tmpfs, so that the
  nemesis can fill it (disk full).

  loopback (otherwise): ports on 127.0.0.1; the network cannot be cut,
  so the nemesis uses SIGSTOP for pauses and skips the wire faults.

Everything this module creates (namespaces, bridge, mounts, processes)
is torn down by close(), also after a failure; names carry the runner's
pid so that parallel runs never share them.
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "kvnode"))
import kvtest  # noqa: E402  (RESP client, free ports)

BOGUS_MAC = "02:00:5e:00:de:ad"


def _die_with_parent():
    """In the child before exec: SIGKILL it if the runner dies (a killed
    test must not leave nodes behind).  prctl(PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def sh(*args, check=True):
    try:
        r = subprocess.run(list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    except OSError as e:  # fork or exec failed (a loaded machine)
        if check:
            raise RuntimeError("%s: %s" % (" ".join(args), e))
        return subprocess.CompletedProcess(args, 127, str(e))
    if check and r.returncode:
        raise RuntimeError("%s: %s" % (" ".join(args), r.stdout.strip()))
    return r


def netns_usable():
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    name = "sjprobe%d" % os.getpid()
    ok = sh("ip", "netns", "add", name, check=False).returncode == 0
    if ok:
        sh("ip", "netns", "del", name, check=False)
    return ok


def iptables_usable(ns):
    if not shutil.which("iptables"):
        return False
    return sh("ip", "netns", "exec", ns, "iptables", "-L", "INPUT", "-n",
              check=False).returncode == 0


class Node:
    def __init__(self, c, nid):
        self.c = c
        self.id = nid
        self.proc = None
        self.dir = os.path.join(c.dir, "node%d" % nid)
        self.log = os.path.join(c.dir, "node%d.log" % nid)
        self.ns = None
        self.mount = None
        if c.netns:
            self.host = "%s.%d" % (c.subnet, nid)
            self.client_port, self.raft_port = 7001, 17001
        else:
            self.host = "127.0.0.1"
            while True:  # free now, and not handed to another node
                ports = kvtest.free_ports(2)
                if not c.used_ports.intersection(ports):
                    break
            c.used_ports.update(ports)
            self.client_port, self.raft_port = ports
        self.paused = False
        self.exit_ok = True  # an exit now would be ours (or expected)

    @property
    def addr(self):
        return "%s:%d/%s:%d" % (self.host, self.raft_port, self.host,
                                self.client_port)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, kvnode, n, use_netns, tmpfs_mb=0, election_ms=300,
                 log=print):
        self.kvnode = kvnode
        self.log = log
        self.netns = use_netns
        self.tag = "%d" % (os.getpid() % 100000)
        self.dir = tempfile.mkdtemp(prefix="jepsen-")
        self.election_ms = election_ms
        self.tmpfs_mb = tmpfs_mb if use_netns else 0
        self.nodes = {}
        self.members = list(range(1, n + 1))  # the voters we believe in
        self.next_id = n + 1
        self.bridge = None
        self.iptables = False
        self.flaps = {}  # (a, b) -> thread stop event
        self.unexpected = []  # (node, exit status): exits nobody caused
        self.used_ports = set()
        try:
            if use_netns:
                self.subnet = self._pick_subnet()
                self.bridge = "sjb%s" % self.tag
                sh("ip", "link", "add", self.bridge, "type", "bridge")
                sh("ip", "addr", "add", self.subnet + ".254/24", "dev",
                   self.bridge)
                sh("ip", "link", "set", self.bridge, "up")
            for i in self.members:
                self._make_node(i)
            if use_netns:
                self.iptables = iptables_usable(self.nodes[1].ns)
        except Exception:
            self.close()  # what was made so far
            raise

    # -- set-up ------------------------------------------------------
    def _pick_subnet(self):
        used = sh("ip", "-o", "addr").stdout
        rnd = random.Random(os.getpid())
        for _ in range(100):
            s = "10.77.%d" % rnd.randrange(1, 250)
            if (s + ".") not in used:
                return s
        raise RuntimeError("no free 10.77.x.0/24 subnet")

    def _make_node(self, nid):
        node = Node(self, nid)
        self.nodes[nid] = node
        os.makedirs(node.dir, exist_ok=True)
        if self.netns:
            node.ns = "sjn%sn%d" % (self.tag, nid)
            host_if, ns_if = "sjv%sn%d" % (self.tag, nid), "sjp%sn%d" % (
                self.tag, nid)
            sh("ip", "netns", "add", node.ns)
            sh("ip", "link", "add", host_if, "type", "veth", "peer", "name",
               ns_if)
            sh("ip", "link", "set", host_if, "master", self.bridge, "up")
            sh("ip", "link", "set", ns_if, "netns", node.ns)
            nse = ("ip", "netns", "exec", node.ns)
            sh(*nse, "ip", "addr", "add", node.host + "/24", "dev", ns_if)
            sh(*nse, "ip", "link", "set", ns_if, "up")
            sh(*nse, "ip", "link", "set", "lo", "up")
            node.ifname = ns_if
            if self.tmpfs_mb:
                sh("mount", "-t", "tmpfs", "-o", "size=%dm" % self.tmpfs_mb,
                   "jepsen", node.dir)
                node.mount = node.dir
        return node

    def add_node(self):
        """A fresh node (new id, empty directory), not yet a member."""
        nid = self.next_id
        self.next_id += 1
        return self._make_node(nid)

    # -- processes ---------------------------------------------------
    def start(self, nid, peers=True):
        node = self.nodes[nid]
        args = [self.kvnode, "--id", str(nid), "--data", node.dir,
                "--client", "%s:%d" % (node.host, node.client_port),
                "--raft", "%s:%d" % (node.host, node.raft_port),
                "--election-ms", str(self.election_ms),
                "--timeout-ms", "2000", "--wal-segment-bytes", "1048576",
                "--snapshot-entries", "2000", "--snapshot-trailing", "500"]
        if peers:
            args += ["--peers", ",".join(
                "%d=%s" % (i, self.nodes[i].addr) for i in sorted(
                    self.members))]
        if node.ns:
            args = ["ip", "netns", "exec", node.ns] + args
        logf = open(node.log, "ab")
        logf.write(b"=== start %.3f\n" % time.time())
        logf.flush()
        node.proc = subprocess.Popen(args, stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        logf.close()
        node.paused = False
        node.exit_ok = False
        end = time.time() + 20
        while time.time() < end:
            if node.proc.poll() is not None:
                return False
            try:
                socket.create_connection((node.host, node.client_port),
                                         timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return node.alive()

    def check_exit(self, nid):
        """The exit status of a node that stopped by itself (None if it
        runs, or if we stopped it or expected it to stop)."""
        node = self.nodes[nid]
        if node.proc is None or node.exit_ok or node.alive():
            return None
        node.exit_ok = True
        return node.proc.returncode

    def kill(self, nid, sig=signal.SIGKILL):
        node = self.nodes[nid]
        rc = self.check_exit(nid)
        if rc is not None:
            self.unexpected.append((nid, rc))
        node.exit_ok = True
        if node.alive():
            if node.paused and sig != signal.SIGCONT:
                node.proc.send_signal(signal.SIGCONT)
            node.proc.send_signal(sig)
            node.proc.wait(timeout=30)
        node.paused = False

    def pause(self, nid):
        node = self.nodes[nid]
        if node.alive():
            node.proc.send_signal(signal.SIGSTOP)
            node.paused = True

    def resume(self, nid):
        node = self.nodes[nid]
        if node.alive() and node.paused:
            node.proc.send_signal(signal.SIGCONT)
        node.paused = False

    def conn(self, nid, timeout=3.0):
        n = self.nodes[nid]
        return kvtest.Conn(n.client_port, host=n.host, timeout=timeout)

    def by_addr(self, host, port):
        for i, n in list(self.nodes.items()):
            if n.host == host and n.client_port == port:
                return i
        return None

    def info(self, nid):
        c = self.conn(nid, timeout=2)
        try:
            return kvtest.parse_info(c.call("INFO", "raft"))
        finally:
            c.close()

    def leader(self, among=None):
        """A node that says it leads (None if none answers so)."""
        for i in among or self.members:
            if not self.nodes[i].alive() or self.nodes[i].paused:
                continue
            try:
                if self.info(i).get("role") == "leader":
                    return i
            except (OSError, kvtest.Closed, ValueError):
                pass
        return None

    # -- the wire ----------------------------------------------------
    def _cut(self, a, b, on):
        na, nb = self.nodes[a], self.nodes[b]
        if on:
            sh("ip", "netns", "exec", na.ns, "ip", "neigh", "replace",
               nb.host, "lladdr", BOGUS_MAC, "nud", "permanent", "dev",
               na.ifname, check=False)
        else:
            sh("ip", "netns", "exec", na.ns, "ip", "neigh", "del", nb.host,
               "dev", na.ifname, check=False)

    def partition(self, groups):
        """Cut every link between nodes of different groups."""
        for g in groups:
            for h in groups:
                if g is h:
                    continue
                for a in g:
                    for b in h:
                        self._cut(a, b, True)

    def heal(self):
        for ev in self.flaps.values():
            ev.set()
        for t in list(self.flaps):
            self.flaps.pop(t)
        if not self.netns:
            return
        time.sleep(0.05)
        for a, na in self.nodes.items():
            for b in self.nodes:
                if a != b:
                    self._cut(a, b, False)
            if self.iptables:
                sh("ip", "netns", "exec", na.ns, "iptables", "-F", "INPUT",
                   check=False)

    def flaky(self, nodes, p, rnd):
        """Lose a fraction p of the packets from peers (or flap)."""
        for a in nodes:
            na = self.nodes[a]
            if self.iptables:
                for b, nb in self.nodes.items():
                    if b != a:
                        sh("ip", "netns", "exec", na.ns, "iptables", "-A",
                           "INPUT", "-s", nb.host, "-m", "statistic",
                           "--mode", "random", "--probability", "%.2f" % p,
                           "-j", "DROP", check=False)
                continue
            for b in self.nodes:
                if b == a:
                    continue
                ev = threading.Event()
                self.flaps[(a, b)] = ev
                threading.Thread(target=self._flap,
                                 args=(a, b, p, ev, rnd.random()),
                                 daemon=True).start()

    def _flap(self, a, b, p, ev, seed):
        rnd = random.Random(seed)
        while not ev.wait(rnd.uniform(0.05, 0.3)):
            self._cut(a, b, rnd.random() < p)
        self._cut(a, b, False)

    # -- disk --------------------------------------------------------
    def fill_disk(self, nid):
        node = self.nodes[nid]
        if not node.mount:
            return False
        path = os.path.join(node.dir, "jepsen-filler")
        try:
            with open(path, "wb") as f:
                chunk = b"\0" * (1 << 20)
                while True:
                    f.write(chunk)
        except OSError:
            pass
        return True

    def free_disk(self, nid):
        path = os.path.join(self.nodes[nid].dir, "jepsen-filler")
        if os.path.exists(path):
            os.unlink(path)

    # -- teardown ----------------------------------------------------
    def stop_all_checked(self):
        """SIGTERM every live node: each must exit 0 (a clean shutdown;
        no leak report in sanitizer builds).  Then look for sanitizer
        findings in every node's log.  Returns the problems."""
        bad = []
        for i, n in self.nodes.items():
            if not n.alive():
                continue
            self.resume(i)
            n.exit_ok = True
            n.proc.send_signal(signal.SIGTERM)
            try:
                n.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()
                bad.append("node %d hung on SIGTERM" % i)
                continue
            if n.proc.returncode != 0:
                bad.append("node %d exited %d on SIGTERM"
                           % (i, n.proc.returncode))
        for i, n in self.nodes.items():
            if not os.path.exists(n.log):
                continue
            with open(n.log, "rb") as f:
                text = f.read().decode(errors="replace")
            for pat in ("runtime error:", "AddressSanitizer",
                        "LeakSanitizer", "ThreadSanitizer"):
                if pat in text:
                    bad.append("node %d log: %s" % (i, pat))
        return bad

    def close(self, keep=False):
        for ev in self.flaps.values():
            ev.set()
        for i in self.nodes:
            try:
                self.kill(i)
            except Exception:
                pass
        for n in self.nodes.values():
            if n.mount:
                if keep:  # keep a copy of the data for the post-mortem
                    shutil.copytree(n.dir, n.dir + ".saved",
                                    ignore=shutil.ignore_patterns(
                                        "jepsen-filler"),
                                    dirs_exist_ok=True)
                sh("umount", "-l", n.mount, check=False)
            if n.ns:
                sh("ip", "netns", "del", n.ns, check=False)
                sh("ip", "link", "del", "sjv%sn%d" % (self.tag, n.id),
                   check=False)
        if self.bridge:
            sh("ip", "link", "del", self.bridge, check=False)
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
