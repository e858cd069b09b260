"""kvnode --groups N: the slots split over N Raft groups, every group hosted
by every process, leaders spread over the processes.

Checks, on 3 processes with --groups 3 or more: the slot map and the
CLUSTER SLOTS/NODES/SHARDS views (one range per group, each range's master
its group's leader, leaders balanced over the processes); MOVED with the
key's slot to its group's leader; CROSSSLOT for a command or a transaction
whose keys are in two groups (hash tags keep keys together); cluster-mode
redis-py writing to every group; then a SIGKILL of the process leading the
most groups: every group elects a leader among the survivors, redis-py
re-routes (MOVED / refreshed slots), and every acknowledged write is still
there; after a restart the balancer hands groups back to the process.
"""
import logging
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from kvtest import (Err, Suite, check, eq, import_redis,  # noqa: E402
                    parse_info, run_script_env, wait_for)

redis = import_redis()
if redis is not None:
    from redis.cluster import ClusterNode, RedisCluster

suite = Suite("groups")
logging.getLogger("redis").setLevel(logging.CRITICAL)
SLOTS = 16384


def skip(reason):
    print("  SKIP: " + reason)


def ranges(n):
    return [(g * SLOTS // n, (g + 1) * SLOTS // n - 1) for g in range(n)]


def group_views(c, nid):
    """{group: {field: value}} from INFO raft's group_I lines."""
    inf = c.info(nid)
    out = {}
    for k, v in inf.items():
        if k.startswith("group_") and "=" in v:
            out[int(k[6:])] = dict(f.split("=", 1) for f in v.split(","))
    return inf, out


def leaders(c, n):
    """{group: leader id} once every live process names the same leader
    for every group and that leader says it leads; else None."""
    views = {}
    for i in c.live():
        try:
            views[i] = group_views(c, i)[1]
        except Exception:
            return None
    out = {}
    for g in range(n):
        ids = {v.get(g, {}).get("leader_id") for v in views.values()}
        if len(ids) != 1:
            return None
        lid = int(ids.pop())
        if lid not in views or views[lid][g]["role"] != "leader":
            return None
        out[g] = lid
    return out


def wait_leaders(c, n, timeout=30, balanced=False):
    got = {}

    def ok():
        got["l"] = leaders(c, n)
        if not got["l"]:
            return False
        if balanced:
            # the balancer's placement: group g on the (g mod 3)-th
            # voter by id
            return all(lid == g % 3 + 1 for g, lid in got["l"].items())
        return True
    wait_for(ok, timeout, "every group has a leader known to all"
             + (" (balanced)" if balanced else ""))
    return got["l"]


def key_in_group(g, n, prefix="k"):
    """A key whose slot is in group g (of n), found with CLUSTER KEYSLOT's
    algorithm run by the server."""
    lo, hi = ranges(n)[g]
    for i in range(100000):
        k = "%s%d" % (prefix, i)
        if lo <= slot_of(k) <= hi:
            return k
    raise AssertionError("no key for group %d" % g)


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def slot_of(key):
    k = key.encode()
    s = k.find(b"{")
    if s >= 0:
        e = k.find(b"}", s + 1)
        if e > s + 1:
            k = k[s + 1:e]
    return crc16(k) % SLOTS


@suite.test
def test_slot_ranges_views_and_balanced_leaders():
    n = 3
    c = suite.cluster("gviews", n=3, groups=n)
    c.start_all()
    lead = wait_leaders(c, n, balanced=True)
    eq(lead, {0: 1, 1: 2, 2: 3})
    for i in c.live():
        inf, gv = group_views(c, i)
        eq(inf.get("groups"), str(n))
        for g, (lo, hi) in enumerate(ranges(n)):
            eq(gv[g]["slots"], "%d-%d" % (lo, hi))
    conn = c.conn(1)
    # CLUSTER SLOTS: one entry per group, master = the group's leader.
    slots = conn.call("CLUSTER", "SLOTS")
    eq(len(slots), n, slots)
    for g, e in enumerate(sorted(slots, key=lambda e: e[0])):
        eq((e[0], e[1]), ranges(n)[g])
        eq(e[2][1], c.nodes[lead[g]].client_port, e)
        eq(len(e), 2 + 3, e)  # master and two replicas
    # CLUSTER NODES: three masters, each with its group's range.
    text = conn.call("CLUSTER", "NODES")
    text = text.decode() if isinstance(text, bytes) else text
    lines = [l.split() for l in text.strip().splitlines()]
    eq(len(lines), 3, text)
    by_port = {int(l[1].split("@")[0].rsplit(":", 1)[1]): l for l in lines}
    for g, (lo, hi) in enumerate(ranges(n)):
        l = by_port[c.nodes[lead[g]].client_port]
        check("master" in l[2], l)
        check("%d-%d" % (lo, hi) in l[8:], l)
    shards = conn.call("CLUSTER", "SHARDS")
    eq(len(shards), n, shards)
    info = parse_info(conn.call("CLUSTER", "INFO"))
    eq(info["cluster_state"], "ok")
    eq(info["cluster_size"], "3")
    eq(info["cluster_slots_ok"], "16384")
    # MOVED carries the key's slot and its group's leader; a key is
    # served where its group leads.
    for g in range(n):
        k = key_in_group(g, n)
        for i in c.live():
            r = c.conn(i).call("SET", k, "v%d" % g)
            if i == lead[g]:
                eq(r, "OK")
            else:
                eq(r, "MOVED %d 127.0.0.1:%d"
                   % (slot_of(k), c.nodes[lead[g]].client_port))
    # CROSSSLOT across groups, even with --cluster-mode no (a command's
    # keys in two groups cannot apply atomically); a hash tag keeps keys
    # in one group.
    k0, k1 = key_in_group(0, n), key_in_group(1, n)
    lc = c.conn(lead[0])
    r = lc.call("MSET", k0, "a", k1, "b")
    check(isinstance(r, Err) and r.startswith("CROSSSLOT"), r)
    tag = "{%s}" % k0
    eq(lc.call("MSET", tag + "x", "1", tag + "y", "2"), "OK")
    eq(lc.call("MGET", tag + "x", tag + "y"), [b"1", b"2"])
    eq(lc.call("MULTI"), "OK")
    eq(lc.call("SET", k0, "t"), "QUEUED")
    r = lc.call("SET", k1, "t")
    check(r == "QUEUED" or (isinstance(r, Err) and r.startswith("MOVED")),
          r)
    r = lc.call("EXEC")
    check(isinstance(r, Err) and (r.startswith("CROSSSLOT")
                                  or r.startswith("EXECABORT")), r)
    eq(lc.call("GET", k0), b"v0")  # the transaction applied nothing
    lc.close()


@suite.test
def test_sessions_and_expiry_per_group():
    """A client session's writes in several groups: each group
    deduplicates its own retries (sequence numbers rising across groups
    rise in each); keys expire by each group's log clock."""
    n = 3
    c = suite.cluster("gsess", n=3, groups=n)
    c.start_all()
    wait_leaders(c, n, balanced=True)
    keys = [key_in_group(g, n, "ctr") for g in range(n)]
    seq = 0
    for rnd in range(2):
        for g, k in enumerate(keys):
            seq += 1
            args = ("SESSION", "77", str(seq), "INCR", k)
            eq(c.follow(*args)[0], rnd + 1)
            # a retry of the same write (lost reply): the group answers
            # from its session table, the counter does not move
            eq(c.follow(*args)[0], rnd + 1)
    for k in keys:
        eq(c.follow("GET", k)[0], b"2")
    # An older sequence number than a group's last is refused there
    # (its reply is gone), not applied.
    r = c.follow("SESSION", "77", "1", "INCR", keys[2])[0]
    check(isinstance(r, Err), r)
    eq(c.follow("GET", keys[2])[0], b"2")
    # Expiry in every group.
    for g in range(n):
        k = key_in_group(g, n, "ttl")
        eq(c.follow("SET", k, "v", "PX", "300")[0], "OK")
        ttl = c.follow("PTTL", k)[0]
        check(0 < ttl <= 300, ttl)
    time.sleep(0.5)
    for g in range(n):
        k = key_in_group(g, n, "ttl")
        eq(c.follow("GET", k)[0], None)
        eq(c.follow("EXISTS", k)[0], 0)


@suite.test
def test_plain_mode_refuses_keys_of_two_groups():
    n = 4
    c = suite.cluster("gplain", n=3, groups=n, extra=["--cluster-mode", "no"])
    c.start_all()
    wait_leaders(c, n)
    k0, k1 = key_in_group(0, n), key_in_group(1, n)
    a, b = key_in_group(0, n, "a"), key_in_group(0, n, "b")
    check(slot_of(a) != slot_of(b), (a, b))
    # Keys of two slots of one group: fine without cluster rules.
    eq(c.follow("MSET", a, "1", b, "2")[0], "OK")
    eq(c.follow("MGET", a, b)[0], [b"1", b"2"])
    # Keys of two groups: refused on any node, before any redirect.
    for i in c.live():
        r = c.conn(i).call("MSET", k0, "1", k1, "2")
        check(isinstance(r, Err) and r.startswith("CROSSSLOT"), r)
    # FLUSHALL is refused alike on leaders and followers (never MOVED).
    for i in c.live():
        conn = c.conn(i)
        for cmd in ("FLUSHALL", "FLUSHDB"):
            r = conn.call(cmd)
            check(isinstance(r, Err) and "groups" in r, (i, cmd, r))
        conn.close()


def cluster_client(c):
    nodes = [ClusterNode("127.0.0.1", c.nodes[i].client_port)
             for i in c.live()]
    return RedisCluster(startup_nodes=nodes, socket_timeout=5,
                        cluster_error_retry_attempts=10)


@suite.test
def test_kill_the_process_leading_most_groups():
    kill_most_leaders("gkill", "wal", 6, restart=True)


@suite.test
def test_mem_storage_kill_the_process_leading_most_groups():
    """--storage mem: every group on a memory store.  A killed process
    loses its memory, so it is not restarted here."""
    kill_most_leaders("gmem", "mem", 4, restart=False)


def kill_most_leaders(name, storage, n, restart):
    if redis is None:
        skip("redis-py is not installed (apt-get install python3-redis)")
        return
    c = suite.cluster(name, n=3, groups=n, storage=storage)
    c.start_all()
    # One runtime, one raft port, one WAL (DIR/raft) for every group.
    if storage == "wal":
        eq(sorted(x for x in os.listdir(c.nodes[1].dir)
                  if x.startswith("raft")), ["raft"])
    lead = wait_leaders(c, n, balanced=True)
    rc = cluster_client(c)
    acked = {}
    # Write to every group through the cluster client.
    for g in range(n):
        for j in range(20):
            k = key_in_group(g, n, "w%d_%d_" % (g, j))
            check(rc.set(k, "v%d" % j), k)
            acked[k] = "v%d" % j
    counts = {}
    for g, lid in lead.items():
        counts[lid] = counts.get(lid, 0) + 1
    victim = max(counts, key=lambda i: counts[i])
    victim_groups = [g for g, lid in lead.items() if lid == victim]
    check(len(victim_groups) >= 2, lead)
    c.kill(victim)
    # Until the victim's groups elect, the survivors never send a client
    # to the dead process: its connection is gone, so they say TRYAGAIN
    # (or CLUSTERDOWN once an election runs), or MOVED to a live leader.
    time.sleep(0.1)
    dead = ":%d" % c.nodes[victim].client_port
    end = time.time() + 1.0
    probes = {}
    while time.time() < end:
        for g in victim_groups:
            k = key_in_group(g, n, "p")
            for i in c.live():
                conn = c.conn(i)
                r = conn.call("SET", k, "p")
                conn.close()
                check(not (isinstance(r, Err) and r.startswith("MOVED")
                           and r.endswith(dead)), (g, i, r))
                word = r.split()[0] if isinstance(r, Err) else "OK"
                probes[word] = probes.get(word, 0) + 1
                if word == "OK":
                    acked[k] = "p"
        time.sleep(0.05)
    print("  replies for the dead leader's groups: %r" % probes)
    # Every group has a leader among the survivors.
    after = wait_leaders(c, n, timeout=30)
    check(victim not in after.values(), after)
    # Every survivor redirects each group's keys to its new leader.
    for g in range(n):
        k = key_in_group(g, n, "m")
        for i in c.live():
            conn = c.conn(i)
            r = conn.call("SET", k, "m")
            conn.close()
            if i == after[g]:
                eq(r, "OK")
            else:
                eq(r, "MOVED %d 127.0.0.1:%d"
                   % (slot_of(k), c.nodes[after[g]].client_port))
        acked[k] = "m"
    # The client re-routes: the old address is closed, MOVED/refresh
    # lead it to the new leaders; every group takes writes again.
    # redis-py 4.3.4 cannot refresh its topology while a node it knows
    # is down ("cannot pickle '_thread.lock' object", test_compat.py):
    # on that error a new client is made from the live nodes, as an
    # application on this redis-py has to.
    deadline = time.time() + 60
    errors = []
    for g in range(n):
        for j in range(10):
            k = key_in_group(g, n, "x%d_%d_" % (g, j))
            while True:
                try:
                    check(rc.set(k, "y%d" % j), k)
                    break
                except (redis.exceptions.RedisError, OSError, TypeError,
                        redis.exceptions.RedisClusterException,
                        AttributeError) as e:
                    errors.append(type(e).__name__)
                    if time.time() > deadline:
                        raise AssertionError("group %d: %r" % (g, e))
                    time.sleep(0.2)
                    if "pickle" in str(e):
                        rc = cluster_client(c)
            acked[k] = "y%d" % j
    print("  failover: %d errors seen by the client: %s"
          % (len(errors), sorted(set(errors))))
    # Nothing acknowledged is lost.
    for k, v in acked.items():
        got = rc.get(k)
        eq(got, v.encode(), k)
    rc.close()
    if not restart:
        return
    # The process comes back; the balancer gives it groups again.
    c.start(victim)
    back = wait_leaders(c, n, timeout=40, balanced=True)
    check(victim in back.values(), back)
    total = sum(int(group_views(c, i)[1][g]["transfers"])
                for i in c.live() for g in range(n))
    check(total >= 1, "no leadership transfer counted")


@suite.test
def test_make_run_with_groups():
    """examples/kvnode/run.sh with KVNODE_GROUPS (make run GROUPS=N)."""
    import shutil
    import tempfile
    from kvtest import Conn, free_ports
    run_dir = tempfile.mkdtemp(prefix="kvnode-run-groups-")
    ports = free_ports(6)
    env, script = run_script_env(suite.kvnode, run_dir, ports[0], ports[3],
                                 KVNODE_GROUPS="3")
    try:
        p = subprocess.run(["bash", script("run.sh")], env=env,
                           capture_output=True, timeout=60)
        out = p.stdout.decode()
        eq(p.returncode, 0, out + p.stderr.decode())
        check("3 Raft groups" in out and "raft port %d, 3 groups"
              % ports[4] in out, out)
        for port in ports[:3]:
            conn = Conn(port)
            inf = parse_info(conn.call("INFO", "raft"))
            conn.close()
            eq(inf["groups"], "3")
            for g in range(3):
                check("leader_id=0," not in inf["group_%d" % g], inf)
    finally:
        p = subprocess.run(["bash", script("stop.sh")], env=env,
                           capture_output=True, timeout=60)
        shutil.rmtree(run_dir, ignore_errors=True)
    check(b"stopped 3 node(s)" in p.stdout, p.stdout)


if __name__ == "__main__":
    suite.main()
