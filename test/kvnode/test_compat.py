"""Unchanged Redis client libraries and tools against a 3-node kvnode.

redis-py (Debian python3-redis) in cluster mode (RedisCluster: CLUSTER
SLOTS, COMMAND, MOVED with the key's slot, routing after a leader change)
and plain mode (pipelines, MULTI/EXEC transactions, WATCH), ioredis
Cluster from the npm registry (a node script), `redis-cli --cluster
check` and `redis-benchmark --cluster`, plus the raw-protocol details
clients rely on (CLIENT REPLY OFF/SKIP, CLIENT SETNAME, the slot in MOVED,
TRYAGAIN instead of MOVED to a dead leader, CLUSTERDOWN without a quorum),
HELLO 3 and RESP3 replies (raw sockets, as redis-py 4.3 has no RESP3, and
redis-cli -3), a WAIT that blocks without blocking other clients,
CROSSSLOT as Redis Cluster gives it and --cluster-mode no, AUTH with
--requirepass and a --user.

A client package that is genuinely absent is reported as SKIP with the
reason; everything else must pass.
"""

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from kvtest import import_redis  # noqa: E402

redis = import_redis()

from kvtest import (Err, Suite, check, encode, eq, parse_info,  # noqa: E402
                    wait_for)

suite = Suite("compat")
# redis-py logs every connection error it recovers from with a traceback.
logging.getLogger("redis").setLevel(logging.CRITICAL)
CLI = shutil.which("redis-cli")
BENCH = shutil.which("redis-benchmark")
NODE = shutil.which("node")
NPM = shutil.which("npm")


def skip(reason):
    print("  SKIP: " + reason)


def need_redis_py():
    if redis is None:
        skip("redis-py is not installed (apt-get install python3-redis)")
        return False
    return True


def started(name):
    """A 3-node cluster whose every node knows the leader (cluster
    clients read the topology from whichever node they reach)."""
    c = suite.cluster(name, n=3)
    c.start_all()
    leader = c.wait_leader()
    wait_for(lambda: all(c.info(i).get("leader_id") == str(leader)
                         for i in c.live()), 10, "every node knows the leader")
    return c, leader


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key):
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return crc16(key) % 16384


class Raw3:
    """A bare connection read with read3 (RESP3 replies)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.rfile = self.sock.makefile("rb")

    def sendall(self, data):
        self.sock.sendall(data)

    def close(self):
        self.rfile.close()
        self.sock.close()


def raw3(port):
    return Raw3(port)


def send3(s, *args):
    s.sendall(encode(*args))


class Verbatim(bytes):
    pass


def read3(s):
    """One RESP2 or RESP3 reply: maps become dicts (keys decoded), sets
    frozensets, verbatim strings Verbatim, errors Err, "_" None."""
    line = s.rfile.readline()
    check(line.endswith(b"\r\n"), line)
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        return Err(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"_":
        return None
    if t == b",":
        return float(rest)
    if t == b"#":
        return rest == b"t"
    if t in (b"$", b"="):
        n = int(rest)
        if n < 0:
            return ("nil2", t)          # a RESP2 null, told apart
        data = s.rfile.read(n + 2)[:-2]
        if t == b"=":
            check(data[3:4] == b":", data[:8])
            return Verbatim(data[4:])
        return data
    if t in (b"*", b"~"):
        n = int(rest)
        if n < 0:
            return ("nil2", t)
        items = [read3(s) for _ in range(n)]
        return frozenset(items) if t == b"~" else items
    if t == b"%":
        out = {}
        for _ in range(int(rest)):
            k = read3(s)
            out[k.decode() if isinstance(k, bytes) else k] = read3(s)
        for k, v in out.items():
            if isinstance(v, bytes) and not isinstance(v, Verbatim):
                try:
                    out[k] = v.decode()
                except UnicodeDecodeError:
                    pass
        return out
    raise AssertionError("unknown reply type %r" % line)


@suite.test
def test_slots_nodes_and_moved_are_redis_cluster_protocol():
    c, leader = started("slots")
    f = [i for i in c.live() if i != leader][0]
    conn = c.conn(f)
    # The slot function: CRC16/XMODEM, hash tags.
    eq(crc16(b"123456789"), 0x31C3)
    for k in (b"foo", b"k1", b"{user1000}.following", b"foo{}{bar}",
              b"{a}b", b"x{}y", b"\xff\x00z"):
        eq(conn.call("CLUSTER", "KEYSLOT", k), key_slot(k), k)
    r = conn.call("SET", "foo", "bar")
    eq(r, "MOVED 12182 127.0.0.1:%d" % c.nodes[leader].client_port)
    # CLUSTER SLOTS: one range, the leader first, then the others.
    slots = conn.call("CLUSTER", "SLOTS")
    eq(len(slots), 1)
    eq(slots[0][0:2], [0, 16383])
    eq(slots[0][2][1], c.nodes[leader].client_port)
    eq(sorted(n[1] for n in slots[0][2:]),
       sorted(n.client_port for n in c.nodes.values()))
    # CLUSTER NODES in Redis's format, the same on every node.
    myid = conn.call("CLUSTER", "MYID").decode()
    eq(len(myid), 40)
    lines = conn.call("CLUSTER", "NODES").decode().splitlines()
    eq(len(lines), 3)
    for line in lines:
        parts = line.split()
        check(len(parts) >= 8 and len(parts[0]) == 40, line)
        if "master" in parts[2]:
            eq(parts[3], "-")
            eq(parts[8], "0-16383")
            eq(parts[1].split("@")[0],
               "127.0.0.1:%d" % c.nodes[leader].client_port)
        else:
            check("slave" in parts[2] and len(parts[3]) == 40, line)
        if parts[0] == myid:
            check("myself" in parts[2], line)
    shards = conn.call("CLUSTER", "SHARDS")
    eq(len(shards), 1)
    eq(shards[0][1], [0, 16383])
    info = parse_info(conn.call("CLUSTER", "INFO"))
    eq(info["cluster_state"], "ok")
    eq(info["cluster_slots_assigned"], "16384")
    full = parse_info(conn.call("INFO"))
    eq(full["cluster_enabled"], "1")
    check(int(full["used_memory"]) > 0, full.get("used_memory"))
    # COUNTKEYSINSLOT / GETKEYSINSLOT on the leader's data.
    lc = c.conn(leader)
    eq(lc.call("SET", "{t}1", "a"), "OK")
    eq(lc.call("SET", "{t}2", "b"), "OK")
    s = key_slot(b"{t}")
    eq(lc.call("CLUSTER", "COUNTKEYSINSLOT", str(s)), 2)
    eq(sorted(lc.call("CLUSTER", "GETKEYSINSLOT", str(s), "10")),
       [b"{t}1", b"{t}2"])
    # COMMAND: key positions clients route by.
    eq(lc.call("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"),
       [b"a", b"b"])
    info = lc.call("COMMAND", "INFO", "get", "nosuch")
    eq(info[0][:6], [b"get", 2, ["readonly", "fast"], 1, 1, 1])
    eq(info[1], None)
    conn.close()
    lc.close()


@suite.test
def test_raw_protocol_details():
    c, leader = started("raw")
    f = [i for i in c.live() if i != leader][0]
    fc = c.conn(f)
    for cmd in ("READONLY", "READWRITE", "ASKING"):
        eq(fc.call(cmd), "OK")
    eq(fc.call("READONLY"), "OK")
    r = fc.call("GET", "k")            # replicas never serve reads
    check(isinstance(r, Err) and r.startswith("MOVED"), r)
    # A transaction on a follower: the queued command is redirected and
    # EXEC aborts; nothing was proposed.
    eq(fc.call("MULTI"), "OK")
    r = fc.call("SET", "fk", "1")
    check(isinstance(r, Err) and r.startswith("MOVED"), r)
    r = fc.call("EXEC")
    check(isinstance(r, Err) and r.startswith("EXECABORT"), r)
    eq(parse_info(fc.call("INFO", "replication"))["role"], "slave")
    fc.close()
    conn = c.conn(leader)
    eq(parse_info(conn.call("INFO", "replication"))["role"], "master")
    check(isinstance(conn.call("COMMAND", "DOCS"), list))
    eq(conn.call("MULTI"), "OK")
    eq(conn.call("SET", "d", "1"), "QUEUED")
    eq(conn.call("DISCARD"), "OK")
    eq(conn.call("EXISTS", "d"), 0)
    eq(conn.call("WATCH", "w"), "OK")
    eq(conn.call("UNWATCH"), "OK")
    eq(conn.call("SET", "w", "changed"), "OK")
    eq(conn.call("MULTI"), "OK")
    eq(conn.call("GET", "w"), "QUEUED")
    eq(conn.call("EXEC"), [b"changed"])  # the watch was dropped
    eq(conn.call("PSETEX", "ps", "100000", "v"), "OK")
    check(99000 < conn.call("PTTL", "ps") <= 100000)
    at = int(time.time()) + 1000
    eq(conn.call("EXPIREAT", "ps", str(at)), 1)
    eq(conn.call("EXPIRETIME", "ps"), at)
    eq(conn.call("PEXPIRETIME", "ps"), at * 1000)
    cur, found = b"0", []
    for _ in range(1000):
        cur, keys = conn.call("SCAN", cur, "TYPE", "hash")
        found += keys
        if cur == b"0":
            break
    eq((cur, found), (b"0", []))       # only strings exist
    eq(conn.call("FLUSHALL"), "OK")
    eq(conn.call("DBSIZE"), 0)
    conn.close()


@suite.test
def test_client_reply_and_names():
    c, leader = started("client")
    conn = c.conn(leader)
    eq(conn.call("CLIENT", "GETNAME"), None)
    eq(conn.call("CLIENT", "SETNAME", "worker-1"), "OK")
    eq(conn.call("CLIENT", "GETNAME"), b"worker-1")
    check(b"name=worker-1" in conn.call("CLIENT", "LIST"))
    # Accepted without effect (clients send them at connect).
    eq(conn.call("CLIENT", "SETINFO", "lib-name", "x"), "OK")
    eq(conn.call("CLIENT", "NO-EVICT", "on"), "OK")
    eq(conn.call("CLIENT", "NO-TOUCH", "on"), "OK")
    names = conn.call("COMMAND", "LIST")
    eq(len(names), conn.call("COMMAND", "COUNT"))
    check(b"get" in names and b"wait" in names, names)
    eq(conn.call("SET", "fa", "1"), "OK")
    eq(conn.call("FLUSHALL", "ASYNC"), "OK")
    eq(conn.call("EXISTS", "fa"), 0)
    # OFF: no reply to it or to what follows until ON; SKIP: the next.
    conn.send("CLIENT", "REPLY", "OFF")
    conn.send("SET", "quiet", "1")
    conn.send("INCR", "quiet")
    conn.send("PING")
    conn.send("CLIENT", "REPLY", "ON")
    eq(conn.reply(), "OK")
    conn.send("CLIENT", "REPLY", "SKIP")
    conn.send("INCR", "quiet")
    conn.send("GET", "quiet")
    eq(conn.reply(), b"3")
    conn.close()


@suite.test
def test_hello_3_switches_to_resp3_and_hello_2_back():
    c, leader = started("resp3")
    s = raw3(c.nodes[leader].client_port)
    send3(s, "SET", "r3", "v")
    eq(read3(s), "OK")
    send3(s, "GET", "nokey")
    eq(read3(s), ("nil2", b"$"))        # RESP2 until HELLO 3
    send3(s, "HELLO", "4")
    r = read3(s)
    check(isinstance(r, Err) and r.startswith("NOPROTO"), r)
    send3(s, "HELLO", "3", "SETNAME", "r3client")
    hello = read3(s)
    eq((hello["server"], hello["proto"], hello["mode"], hello["role"]),
       ("redis", 3, "cluster", "master"), hello)
    eq(hello["modules"], [])
    send3(s, "CLIENT", "GETNAME")
    eq(read3(s), b"r3client")
    send3(s, "HELLO", "3", "SETNAME", "bad name")
    r = read3(s)
    check(isinstance(r, Err) and "Client names" in r, r)
    # Nulls are "_", in a GET, inside arrays, from a transaction.
    send3(s, "GET", "nokey")
    eq(read3(s), None)
    send3(s, "MGET", "r3", "{r3}none")
    eq(read3(s), [b"v", None])
    send3(s, "SET", "r3", "w", "GET")
    eq(read3(s), b"v")
    send3(s, "MULTI")
    eq(read3(s), "OK")
    send3(s, "GET", "{r3}none")
    eq(read3(s), "QUEUED")
    send3(s, "EXEC")
    eq(read3(s), [None])
    # A transaction aborted by WATCH: EXEC answers the null.
    send3(s, "WATCH", "r3")
    eq(read3(s), "OK")
    other = c.conn(leader)
    eq(other.call("SET", "r3", "changed"), "OK")
    send3(s, "MULTI")
    eq(read3(s), "OK")
    send3(s, "SET", "r3", "mine")
    eq(read3(s), "QUEUED")
    send3(s, "EXEC")
    eq(read3(s), None)
    # Maps, sets and verbatim text where Redis 7 uses them.
    send3(s, "CONFIG", "GET", "maxclients")
    eq(read3(s), {"maxclients": "10000"})
    send3(s, "INFO", "server")
    r = read3(s)
    check(isinstance(r, Verbatim) and b"redis_version" in r, r)
    send3(s, "CLUSTER", "INFO")
    r = read3(s)
    check(isinstance(r, Verbatim) and b"cluster_state:ok" in r, r)
    send3(s, "CLUSTER", "NODES")
    check(isinstance(read3(s), Verbatim))
    send3(s, "CLIENT", "INFO")
    r = read3(s)
    check(isinstance(r, Verbatim) and b"name=r3client" in r, r)
    send3(s, "COMMAND", "INFO", "get")
    r = read3(s)
    eq(r[0][:6], [b"get", 2, frozenset(["readonly", "fast"]), 1, 1, 1])
    eq(r[0][6:], [frozenset(["@read"]), frozenset(), frozenset(), []])
    send3(s, "COMMAND", "DOCS")
    eq(read3(s), {})
    send3(s, "CLUSTER", "SHARDS")
    sh = read3(s)
    eq(sh[0]["slots"], [0, 16383])
    eq(sorted(n["port"] for n in sh[0]["nodes"]),
       sorted(n.client_port for n in c.nodes.values()))
    # Replies of requests that wait for the engine, pipelined.
    s.sendall(encode("SET", "p3", "1") + encode("GET", "nokey2") +
              encode("GET", "p3") + encode("DEL", "nokey2"))
    eq([read3(s) for _ in range(4)], ["OK", None, b"1", 0])
    # HELLO 2: back to RESP2 (a flat array), and to RESP2 nulls.
    send3(s, "HELLO", "2")
    h2 = read3(s)
    check(isinstance(h2, list) and h2[4:6] == [b"proto", 2], h2)
    send3(s, "GET", "nokey")
    eq(read3(s), ("nil2", b"$"))
    send3(s, "INFO", "server")
    check(type(read3(s)) is bytes)
    s.close()
    other.close()
    if CLI is None:
        skip("redis-cli is not installed (apt-get install redis-tools)")
        return
    port = str(c.nodes[leader].client_port)
    p = subprocess.run([CLI, "-3", "--no-raw", "-p", port, "HELLO", "3"],
                       capture_output=True, timeout=30)
    out = p.stdout.decode()
    check(p.returncode == 0 and '"proto" => (integer) 3' in out, out)
    p = subprocess.run([CLI, "-3", "--no-raw", "-p", port, "GET", "nokey"],
                       capture_output=True, timeout=30)
    eq(p.stdout.decode().strip(), "(nil)")
    p = subprocess.run([CLI, "-3", "--no-raw", "-p", port, "CONFIG", "GET", "databases"],
                       capture_output=True, timeout=30)
    check('"databases" => "1"' in p.stdout.decode(), p.stdout)


def answered(conn, secs):
    """True if a reply for conn arrives within secs (it stays unread)."""
    if conn.buf:
        return True
    conn.sock.settimeout(secs if secs > 0 else 0.001)
    try:
        return len(conn.sock.recv(1, socket.MSG_PEEK)) > 0
    except (socket.timeout, BlockingIOError):
        return False
    finally:
        conn.sock.settimeout(10)


@suite.test
def test_wait_blocks_until_replicas_hold_the_write():
    c, leader = started("wait")
    conn = c.conn(leader)
    eq(conn.call("SET", "w1", "1"), "OK")
    wait_for(lambda: conn.call("WAIT", "2", "100") == 2, 10,
             "both followers hold the write")
    eq(conn.call("WAIT", "0", "0"), 2)    # at once, never blocks
    # One follower paused: a write is acknowledged (a majority holds it)
    # and WAIT 2 times out with the one replica that holds it.
    f1, f2 = [i for i in c.live() if i != leader]
    os.kill(c.nodes[f2].proc.pid, signal.SIGSTOP)
    try:
        eq(conn.call("SET", "w2", "2"), "OK")
        t0 = time.time()
        conn.send("WAIT", "2", "3000")
        # The loop is not blocked meanwhile: another client is served
        # while the WAIT is still parked.
        other = c.conn(leader)
        eq(other.call("GET", "w2"), b"2")
        eq(other.call("PING"), "PONG")
        check(time.time() - t0 < 2.9 and not answered(conn, 0),
              "a GET waited behind WAIT")
        other.close()
        eq(conn.reply(), 1)
        took = time.time() - t0
        check(2.95 <= took < 10, "WAIT 2 3000 took %.3f s" % took)
        eq(conn.call("WAIT", "1", "0"), 1)
        # WAIT 2 0 blocks until the paused follower catches up.
        conn.send("WAIT", "2", "0")
        check(not answered(conn, 0.3),
              "WAIT 2 0 answered with a follower paused")
    finally:
        os.kill(c.nodes[f2].proc.pid, signal.SIGCONT)
    eq(conn.reply(), 2)
    # Pipelined after a write: the WAIT counts that write's replicas.
    conn.send("SET", "w3", "3")
    conn.send("WAIT", "2", "5000")
    eq(conn.reply(), "OK")
    eq(conn.reply(), 2)
    # A client that leaves while its WAIT is parked costs nothing.
    os.kill(c.nodes[f1].proc.pid, signal.SIGSTOP)
    try:
        eq(conn.call("SET", "w4", "4"), "OK")
        gone = c.conn(leader)
        gone.send("WAIT", "2", "0")
        time.sleep(0.1)
        gone.close()
    finally:
        os.kill(c.nodes[f1].proc.pid, signal.SIGCONT)
    eq(conn.call("WAIT", "2", "5000"), 2)
    fc = c.conn(f1)
    eq(fc.call("WAIT", "1", "100"), 0)    # a follower knows no replicas
    fc.close()
    conn.close()


@suite.test
def test_crossslot_as_redis_cluster():
    c, leader = started("xslot")
    conn = c.conn(leader)
    xs = "CROSSSLOT Keys in request don't hash to the same slot"
    check(key_slot(b"a") != key_slot(b"b"))
    for cmd in (("MSET", "a", "1", "b", "2"), ("MGET", "a", "b"),
                ("DEL", "a", "b"), ("EXISTS", "a", "b"),
                ("RENAME", "a", "b"), ("MSETNX", "a", "1", "b", "2"),
                ("WATCH", "a", "b"), ("UNLINK", "a", "b")):
        eq(conn.call(*cmd), Err(xs), cmd)
    # Hash tags keep keys together.
    eq(conn.call("MSET", "{u1}a", "1", "{u1}b", "2"), "OK")
    eq(conn.call("MGET", "{u1}a", "{u1}b"), [b"1", b"2"])
    # A transaction whose commands name two slots: EXEC answers CROSSSLOT
    # and nothing is applied; one whose keys share a slot runs.
    eq(conn.call("MULTI"), "OK")
    eq(conn.call("SET", "a", "1"), "QUEUED")
    eq(conn.call("SET", "b", "1"), "QUEUED")
    eq(conn.call("EXEC"), Err(xs))
    eq(conn.call("EXISTS", "a"), 0)
    eq(conn.call("MULTI"), "OK")
    eq(conn.call("MSET", "a", "1", "b", "2"), Err(xs))
    eq(conn.call("EXEC"),
       Err("EXECABORT Transaction discarded because of previous errors."))
    eq(conn.call("MULTI"), "OK")
    eq(conn.call("SET", "{u2}a", "1"), "QUEUED")
    eq(conn.call("INCR", "{u2}b"), "QUEUED")
    eq(conn.call("DBSIZE"), "QUEUED")     # no key: any slot
    eq(conn.call("EXEC"), ["OK", 1, 4])
    eq(conn.call("SESSION", "7", "1", "DEL", "a", "b"), Err(xs))
    # A follower refuses it the same way, before redirecting.
    f = [i for i in c.live() if i != leader][0]
    fc = c.conn(f)
    eq(fc.call("MSET", "a", "1", "b", "2"), Err(xs))
    fc.close()
    conn.close()
    if redis is None:
        return
    r = redis.Redis(port=c.nodes[leader].client_port, socket_timeout=5)
    try:
        r.mset({"a": 1, "b": 2})
        check(False, "a cross-slot MSET was accepted")
    except redis.exceptions.ResponseError as e:
        check("CROSSSLOT" in str(e), str(e))
    r.close()


@suite.test
def test_cluster_mode_no_is_plain_redis():
    c = suite.cluster("plain", n=3, extra=["--cluster-mode", "no"])
    c.start_all()
    leader = c.wait_leader()
    conn = c.conn(leader)
    eq(conn.call("MSET", "a", "1", "b", "2"), "OK")
    eq(conn.call("MGET", "a", "b"), [b"1", b"2"])
    eq(conn.call("MULTI"), "OK")
    eq(conn.call("INCR", "a"), "QUEUED")
    eq(conn.call("INCR", "b"), "QUEUED")
    eq(conn.call("EXEC"), [2, 3])
    eq(conn.call("RENAME", "a", "c"), "OK")
    h = conn.call("HELLO", "2")
    eq(h[h.index(b"mode") + 1], b"standalone")
    eq(conn.call("CONFIG", "GET", "cluster-enabled"),
       [b"cluster-enabled", b"no"])
    info = parse_info(conn.call("INFO"))
    eq((info["redis_mode"], info["cluster_enabled"]), ("standalone", "0"))
    conn.close()


@suite.test
def test_followers_do_not_redirect_to_a_dead_leader():
    c, leader = started("dead")
    others = [i for i in c.live() if i != leader]
    dead_port = c.nodes[leader].client_port
    c.kill(leader)
    # Half an election timeout (150 ms here) after the last heartbeat a
    # follower stops naming the old leader.
    time.sleep(0.3)
    seen = []
    end = time.time() + 3
    while time.time() < end:
        for i in others:
            conn = c.conn(i)
            r = conn.call("SET", "x", "1")
            conn.close()
            seen.append(r)
            check(not (isinstance(r, Err) and r.endswith(":%d" % dead_port)),
                  "redirected to the dead leader: %r" % r)
        if any(r == "OK" for r in seen):
            break
        time.sleep(0.05)
    check(any(r == "OK" for r in seen), seen)
    # With the new leader killed too, the last node has no quorum: it
    # answers TRYAGAIN (its leader is silent) and then CLUSTERDOWN (no
    # leader), never MOVED to a dead node.
    new = c.wait_leader()
    last = [i for i in others if i != new][0]
    c.kill(new)
    conn = c.conn(last)

    new_port = c.nodes[new].client_port
    seen_down = []

    def down():
        # MOVED to the just-killed leader only until the node notices
        # (half an election timeout without a heartbeat).
        r = conn.call("SET", "x", "2")
        check(isinstance(r, Err), r)
        if r.startswith("MOVED") and not seen_down:
            check(r.endswith(":%d" % new_port), r)
            return False
        check(r.startswith("TRYAGAIN") or r.startswith("CLUSTERDOWN"), r)
        seen_down.append(r)
        return r.startswith("CLUSTERDOWN")
    wait_for(down, 20, "CLUSTERDOWN on the last node")
    r = conn.call("GET", "x")
    check(isinstance(r, Err) and r.startswith("CLUSTERDOWN"), r)
    conn.close()


@suite.test
def test_redis_py_cluster_routing_pipelines_and_failover():
    if not need_redis_py():
        return
    from redis.cluster import RedisCluster
    c, leader = started("rpy")
    f = [i for i in c.live() if i != leader][0]
    rc = RedisCluster(host="127.0.0.1", port=c.nodes[f].client_port,
                      socket_timeout=5)
    primaries = rc.get_primaries()
    eq([n.port for n in primaries], [c.nodes[leader].client_port])
    eq(len(rc.get_replicas()), 2)
    for i in range(50):
        eq(rc.set("key:%d" % i, "v%d" % i), True)
    eq(rc.get("key:7"), b"v7")
    eq(rc.incr("ctr"), 1)
    eq(rc.mget("{u}a", "{u}b"), [None, None])
    eq(rc.keyslot("key:7"), key_slot(b"key:7"))
    p = rc.pipeline()
    for i in range(20):
        p.incr("pc:%d" % (i % 4))
    res = p.execute()
    eq(res[-4:], [5, 5, 5, 5])
    # A leadership transfer: the old leader answers MOVED with the new
    # leader and the unchanged client follows it.
    target = [i for i in c.live() if i != leader][0]
    lc = c.conn(leader)
    eq(lc.call("CLUSTER", "TRANSFER", str(target)), "OK")
    lc.close()
    wait_for(lambda: c.wait_leader() == target, 10, "transfer")
    for i in range(50):
        eq(rc.set("moved:%d" % i, str(i)), True)
    eq([n.port for n in rc.get_primaries()],
       [c.nodes[target].client_port])
    eq(rc.get("moved:49"), b"49")
    # Kill the leader.  redis-py 4.3.4 cannot refresh its topology while
    # a node it knows is down (initialize() deep-copies its own
    # connection kwargs, which hold a lock: "cannot pickle
    # '_thread.lock' object"), whatever the server; so after the first
    # failure a new client is made from a live node, as an application
    # on this redis-py version has to.
    c.kill(target)
    done = 0
    end = time.time() + 20
    errors = []
    while done < 50 and time.time() < end:
        try:
            eq(rc.set("after:%d" % done, str(done)), True)
            done += 1
        except (redis.exceptions.RedisError,
                redis.exceptions.RedisClusterException, TypeError,
                AttributeError) as e:
            errors.append(type(e).__name__)
            time.sleep(0.1)
            if "pickle" in str(e):
                live = c.live()[0]
                rc = RedisCluster(host="127.0.0.1",
                                  port=c.nodes[live].client_port,
                                  socket_timeout=5)
    eq(done, 50, "errors: %r" % errors[-5:])
    print("  failover: %d errors seen by the client: %s"
          % (len(errors), sorted(set(errors))))
    new = c.wait_leader()
    check(new != target)
    eq([n.port for n in rc.get_primaries()], [c.nodes[new].client_port])
    eq(rc.get("key:7"), b"v7")
    eq(rc.get("after:49"), b"49")
    rc.close()


@suite.test
def test_redis_py_transactions_are_atomic():
    if not need_redis_py():
        return
    c, leader = started("tx")
    r = redis.Redis(port=c.nodes[leader].client_port, socket_timeout=5)
    p = r.pipeline(transaction=True)
    p.set("txA", "1").incr("txA").get("txA").mget("txA", "{txA}none")
    eq(p.execute(), [True, 2, b"2", [b"2", None]])
    # A command refused while queueing aborts the whole transaction.
    p = r.pipeline(transaction=True)
    p.set("txC", "1")
    p.execute_command("NOSUCHCOMMAND")
    p.incr("txC")
    try:
        p.execute()
        check(False, "EXEC succeeded")
    except redis.exceptions.ResponseError as e:
        check("EXECABORT" in str(e) or "unknown command" in str(e), str(e))
    eq(r.exists("txC"), 0)
    # A run-time error answers inside the array; the rest applies.
    p = r.pipeline(transaction=True)
    p.set("txD", "abc").incr("txD").set("{txD}E", "1")
    res = p.execute(raise_on_error=False)
    eq(res[0], True)
    check(isinstance(res[1], redis.exceptions.ResponseError), res)
    eq(r.get("{txD}E"), b"1")
    # WATCH: optimistic check-and-set from two clients, no lost update.
    r.set("cas", "0")

    def worker():
        cl = redis.Redis(port=c.nodes[leader].client_port, socket_timeout=5)

        def bump(pipe):
            v = int(pipe.get("cas"))
            pipe.multi()
            pipe.set("cas", str(v + 1))
        for _ in range(25):
            cl.transaction(bump, "cas")
        cl.close()
    ts = [threading.Thread(target=worker) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    eq(r.get("cas"), b"50")
    # A watched key changed by someone else: EXEC answers nil.
    p = r.pipeline(transaction=True)
    p.watch("w")
    r.set("w", "other")
    p.multi()
    p.set("w", "mine")
    try:
        p.execute()
        check(False, "EXEC with a changed watched key succeeded")
    except redis.exceptions.WatchError:
        pass
    eq(r.get("w"), b"other")
    # Plain pipelines, hundreds deep.
    p = r.pipeline(transaction=False)
    for i in range(500):
        p.set("pl:%d" % i, i)
    for i in range(500):
        p.get("pl:%d" % i)
    res = p.execute()
    eq(res[500:], [str(i).encode() for i in range(500)])
    # The transaction is one entry on every node: followers agree.
    last = int(c.info(leader)["last_applied"])
    for i in c.live():
        c.wait_applied(i, last)
    r.close()


@suite.test
def test_redis_py_string_and_keyspace_commands():
    if not need_redis_py():
        return
    c, leader = started("strings")
    r = redis.Redis(port=c.nodes[leader].client_port, socket_timeout=5)
    eq(r.set("a", "1", nx=True), True)
    eq(r.set("a", "2", nx=True), None)
    eq(r.set("a", "3", xx=True, get=True), b"1")
    eq(r.set("nokey", "3", xx=True), None)
    eq(r.setnx("a", "x"), False)
    eq(r.setnx("b", "x"), True)
    eq(r.getset("b", "y"), b"x")
    eq(r.getdel("b"), b"y")
    eq(r.exists("b"), 0)
    eq(r.append("a", "bc"), 3)
    eq(r.setrange("a", 5, "Z"), 6)
    eq(r.get("a"), b"3bc\x00\x00Z")
    eq(r.getrange("a", 0, 1), b"3b")
    eq(r.getrange("a", -1, -1), b"Z")
    eq(r.strlen("a"), 6)
    eq(r.incrbyfloat("f", 10.5), 10.5)
    eq(r.incrbyfloat("f", 0.1), 10.6)
    try:
        r.incrbyfloat("a", 1)
        check(False, "INCRBYFLOAT on a non-float")
    except redis.exceptions.ResponseError:
        pass
    eq(r.msetnx({"{m}1": 1, "{m}2": 2}), True)
    eq(r.msetnx({"{m}2": 9, "{m}3": 9}), False)
    eq(r.exists("{m}3"), 0)
    eq(r.rename("{m}1", "{m}r1"), True)
    eq(r.renamenx("{m}r1", "{m}2"), False)
    eq(r.type("{m}r1"), b"string")
    eq(r.type("nope"), b"none")
    eq(sorted(r.keys("{m}?")), [b"{m}2"])
    # SCAN visits every key exactly as KEYS lists them, across calls, also
    # while the table grows between calls.
    for i in range(300):
        r.set("scan:%d" % i, i)
    seen = set()
    cur = 0
    first = True
    while first or cur != 0:
        first = False
        cur, keys = r.scan(cur, match="scan:*", count=20)
        seen.update(keys)
        if len(seen) > 50 and not r.exists("{g}grow:0"):
            r.mset({"{g}grow:%d" % i: i for i in range(2000)})
    eq(len([k for k in seen if k.startswith(b"scan:")]), 300)
    eq(set(r.scan_iter(match="scan:1?")),
       {("scan:1%d" % i).encode() for i in range(10)})
    eq(r.randomkey() is not None, True)
    eq(len(r.time()), 2)
    check(1 <= r.wait(1, 100) <= 2)   # acknowledged writes: on a majority
    role = r.execute_command("ROLE")
    eq(role[0], b"master")
    eq(len(role[2]), 2)
    eq(r.flushdb(), True)
    eq(r.dbsize(), 0)
    r.close()


@suite.test
def test_auth_requirepass():
    c = suite.cluster("auth", n=3, extra=["--requirepass", "s3cret",
                                          "--user", "app:pw2"])
    c.start_all()
    conn = c.conn(1)
    eq(conn.call("PING"), Err("NOAUTH Authentication required."))
    r = conn.call("GET", "k")
    check(isinstance(r, Err) and r.startswith("NOAUTH"), r)
    r = conn.call("AUTH", "wrong")
    check(isinstance(r, Err) and r.startswith("WRONGPASS"), r)
    r = conn.call("AUTH", "s3cre")
    check(isinstance(r, Err) and r.startswith("WRONGPASS"), r)
    r = conn.call("HELLO", "2")
    check(isinstance(r, Err) and r.startswith("NOAUTH"), r)
    r = conn.call("HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "x")
    check(isinstance(r, list) and r[5] == 2, r)
    eq(conn.call("CLIENT", "GETNAME"), b"x")
    eq(conn.call("PING"), "PONG")
    conn.close()
    conn = c.conn(2)
    eq(conn.call("AUTH", "default", "s3cret"), "OK")
    eq(conn.call("INFO", "cluster").split(b"\r\n")[1], b"cluster_enabled:1")
    conn.close()
    # The named user of --user NAME:PASS (ACL style: AUTH user pass).
    conn = c.conn(3)
    for bad in (("AUTH", "app", "s3cret"), ("AUTH", "app", "pw"),
                ("AUTH", "nobody", "pw2"), ("AUTH", "pw2")):
        r = conn.call(*bad)
        check(isinstance(r, Err) and r.startswith("WRONGPASS"), (bad, r))
    eq(conn.call("PING"), Err("NOAUTH Authentication required."))
    eq(conn.call("AUTH", "app", "pw2"), "OK")
    eq(conn.call("PING"), "PONG")
    conn.close()
    s = raw3(c.nodes[3].client_port)
    send3(s, "HELLO", "3", "AUTH", "app", "pw2", "SETNAME", "app-1")
    hello = read3(s)
    eq((hello["proto"], hello["mode"]), (3, "cluster"), hello)
    send3(s, "CLIENT", "GETNAME")
    eq(read3(s), b"app-1")
    s.close()
    if redis is None:
        skip("redis-py is not installed (apt-get install python3-redis)")
        return
    from redis.cluster import RedisCluster
    rc = None
    end = time.time() + 10
    while rc is None:
        try:
            rc = RedisCluster(host="127.0.0.1", port=c.nodes[1].client_port,
                              password="s3cret", socket_timeout=5)
        except redis.exceptions.RedisClusterException:
            if time.time() > end:
                raise
            time.sleep(0.1)
    eq(rc.set("authed", "1"), True)
    eq(rc.get("authed"), b"1")
    rc.close()
    r = redis.Redis(port=c.nodes[1].client_port, username="app",
                    password="pw2")
    eq(r.ping(), True)
    r.close()
    try:
        redis.Redis(port=c.nodes[1].client_port, password="no").ping()
        check(False, "a wrong password was accepted")
    except (redis.exceptions.AuthenticationError,
            redis.exceptions.ResponseError) as e:
        check("WRONGPASS" in str(e) or "invalid" in str(e), str(e))
    if CLI is not None:
        p = subprocess.run([CLI, "-a", "s3cret", "--no-auth-warning",
                            "--cluster", "check",
                            "127.0.0.1:%d" % c.nodes[2].client_port],
                           capture_output=True, timeout=60)
        out = p.stdout.decode(errors="replace")
        check("[OK] All 16384 slots covered." in out, out)


@suite.test
def test_expiry_is_replicated_with_the_leaders_time():
    if not need_redis_py():
        return
    c, leader = started("expiry")
    r = redis.Redis(port=c.nodes[leader].client_port, socket_timeout=5)
    eq(r.set("short", "1", px=300), True)
    check(0 < r.pttl("short") <= 300)
    eq(r.set("long", "1", ex=100), True)
    eq(r.ttl("long"), 100)
    eq(r.set("long", "2", keepttl=True), True)
    eq(r.ttl("long"), 100)
    eq(r.incr("long"), 3)          # INCR keeps the TTL
    eq(r.ttl("long"), 100)
    eq(r.set("long", "4"), True)   # SET clears it
    eq(r.ttl("long"), -1)
    eq(r.ttl("missing"), -2)
    eq(r.expire("long", 50), True)
    eq(r.expire("long", 10, gt=True), False)
    eq(r.ttl("long"), 50)
    eq(r.persist("long"), True)
    eq(r.ttl("long"), -1)
    eq(r.setex("sx", 100, "v"), True)
    eq(r.getex("sx", persist=True), b"v")
    eq(r.ttl("sx"), -1)
    eq(r.getex("sx", px=250), b"v")
    eq(r.pexpireat("at", 1), False)   # no such key
    eq(r.set("gone", "x"), True)
    eq(r.expire("gone", -1), True)    # a time in the past deletes
    eq(r.exists("gone"), 0)
    eq(r.expiretime("long"), -1)
    r.set("tx", "1")
    p = r.pipeline(transaction=True)
    p.expire("tx", 100).ttl("tx")
    eq(p.execute(), [True, 100])
    time.sleep(0.5)
    eq(r.get("short"), None)
    eq(r.exists("short") + r.exists("sx"), 0)
    check(b"short" not in r.keys("*"))
    eq(r.set("tick", "1"), True)      # a write purges expired keys
    info = r.info("keyspace")["db0"]
    eq(info["expires"], 1, info)      # "tx" only
    # A follower restarted from its snapshot and made leader keeps the
    # TTLs (they travel in snapshots and in the log).
    f = [i for i in c.live() if i != leader][0]
    lc = c.conn(leader)
    eq(lc.call("CLUSTER", "SNAPSHOT"), "OK")
    fc = c.conn(f)
    eq(fc.call("CLUSTER", "SNAPSHOT"), "OK")
    fc.close()
    c.kill(f)
    c.start(f)
    eq(lc.call("CLUSTER", "TRANSFER", str(f)), "OK")
    lc.close()
    end = time.time() + 10
    while c.wait_leader() != f and time.time() < end:
        time.sleep(0.05)
    r2 = redis.Redis(port=c.nodes[f].client_port, socket_timeout=5)
    check(90 <= r2.ttl("tx") <= 100, r2.ttl("tx"))
    eq(r2.get("short"), None)
    r.close()
    r2.close()


def ioredis_dir():
    """A directory holding node_modules/ioredis, installed from the npm
    registry if needed; None (after saying why) if that is impossible."""
    if NODE is None or NPM is None:
        skip("node/npm not installed (apt-get install nodejs npm)")
        return None
    d = os.environ.get("KVTEST_NPM_DIR",
                       os.path.join(os.path.dirname(suite.kvnode), "..",
                                    "..", "npm"))
    d = os.path.abspath(d)
    if os.path.isdir(os.path.join(d, "node_modules", "ioredis")):
        return d
    os.makedirs(d, exist_ok=True)
    p = subprocess.run([NPM, "install", "--no-audit", "--no-fund",
                        "--prefix", d, "ioredis@5"],
                       capture_output=True, timeout=300)
    if p.returncode != 0:
        skip("npm install ioredis@5 failed (no registry access?): %s"
             % p.stderr.decode(errors="replace")[-300:])
        return None
    return d


@suite.test
def test_ioredis_cluster():
    d = ioredis_dir()
    if d is None:
        return
    c, leader = started("ioredis")
    f = [i for i in c.live() if i != leader][0]
    env = dict(os.environ, NODE_PATH=os.path.join(d, "node_modules"))
    p = subprocess.run([NODE, os.path.join(HERE, "ioredis_check.js"),
                        str(c.nodes[f].client_port)],
                       capture_output=True, timeout=120, env=env)
    out = p.stdout.decode(errors="replace")
    eq(p.returncode, 0, out + p.stderr.decode(errors="replace"))
    check("ioredis ok" in out, out)


def three_group_leaders(name):
    """3 processes with --groups 3, a leader on each (the balancer's
    placement) known to every process."""
    g = suite.cluster(name, n=3, groups=3)
    g.start_all()

    def placed():
        for i in g.live():
            inf = g.info(i)
            for k in range(3):
                f = dict(x.split("=", 1) for x in inf["group_%d" % k].split(","))
                if f["leader_id"] != str(k + 1):
                    return False
        return True
    wait_for(placed, 30, "a group leader on each process")
    return g


@suite.test
def test_ioredis_cluster_three_groups():
    """ioredis Cluster routes each key to its group's leader (three
    masters), pipelines and transactions on a hash tag."""
    d = ioredis_dir()
    if d is None:
        return
    g = three_group_leaders("ioredis3")
    env = dict(os.environ, NODE_PATH=os.path.join(d, "node_modules"))
    p = subprocess.run([NODE, os.path.join(HERE, "ioredis_check.js"),
                        str(g.nodes[2].client_port), "3"],
                       capture_output=True, timeout=120, env=env)
    out = p.stdout.decode(errors="replace")
    eq(p.returncode, 0, out + p.stderr.decode(errors="replace"))
    check("ioredis ok" in out, out)
    # Every group took some of its keys.
    inf = g.info(1)
    for k in range(3):
        f = dict(x.split("=", 1) for x in inf["group_%d" % k].split(","))
        check(int(f["keys"]) > 0, inf["group_%d" % k])


@suite.test
def test_redis_cli_cluster_check_and_benchmark():
    if CLI is None:
        skip("redis-cli not installed (apt-get install redis-tools)")
        return
    c, leader = started("rcheck")
    f = [i for i in c.live() if i != leader][0]
    port = c.nodes[f].client_port
    p = subprocess.run([CLI, "--cluster", "check", "127.0.0.1:%d" % port],
                       capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace")
    eq(p.returncode, 0, out)
    check("[OK] All nodes agree about slots configuration." in out, out)
    check("[OK] All 16384 slots covered." in out, out)
    p = subprocess.run([CLI, "-c", "-p", str(port), "SET", "clikey", "v"],
                       capture_output=True, timeout=60)
    eq(p.stdout.decode().strip(), "OK")
    # After a leader change redis-cli -c follows MOVED from the former
    # leader to the new one.
    lc = c.conn(leader)
    eq(lc.call("CLUSTER", "TRANSFER", str(f)), "OK")
    lc.close()
    wait_for(lambda: c.wait_leader() == f, 10, "transfer")
    wait_for(lambda: c.info(leader).get("leader_id") == str(f), 10,
             "the former leader knows the new one")
    p = subprocess.run([CLI, "-c", "-p", str(c.nodes[leader].client_port),
                        "GET", "clikey"], capture_output=True, timeout=60)
    out = p.stdout.decode()
    eq(out.strip(), "v", out)
    if BENCH is None:
        skip("redis-benchmark not installed (apt-get install redis-tools)")
        return
    # redis-benchmark --cluster wants at least 3 masters ("Invalid
    # cluster" below that): one Raft group is one master, so it runs
    # against 3 processes with --groups 3, one group led by each.
    g = three_group_leaders("rbench")
    gport = g.nodes[1].client_port
    p = subprocess.run([CLI, "--cluster", "check", "127.0.0.1:%d" % gport],
                       capture_output=True, timeout=60)
    out = p.stdout.decode(errors="replace")
    eq(p.returncode, 0, out)
    check("[OK] All 16384 slots covered." in out, out)
    p = subprocess.run([BENCH, "--cluster", "-p", str(gport), "-t",
                        "set,get,incr", "-n", "3000", "-c", "12", "-q"],
                       capture_output=True, timeout=120)
    out = (p.stdout + p.stderr).decode(errors="replace")
    eq(p.returncode, 0, out)
    check("requests per second" in out and "error" not in out.lower(), out)
    check("Cluster has 3 master nodes" in out or "SET:" in out, out)
    # Every group took some of the writes.
    for i in g.live():
        inf = g.info(i)
        for k in ("group_0", "group_1", "group_2"):
            check(int(dict(f.split("=", 1) for f in inf[k].split(","))
                      ["commit_index"]) > 100, inf[k])

if __name__ == "__main__":
    suite.main()
