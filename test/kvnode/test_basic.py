"""kvnode basics on a 3-node WAL cluster: election, every command, MOVED
redirects from followers, read-your-writes in a pipeline, replication to
every node, INFO/CLUSTER output, and a clean SIGTERM exit."""

import errno
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvtest import Err, Suite, check, eq, parse_info, wait_for  # noqa: E402


def takes_o_direct(d):
    """Does d's filesystem take O_DIRECT?  Asked of the kernel, so that a
    node that never turns direct I/O on fails instead of passing."""
    p = os.path.join(d, "odirect-probe")
    try:
        os.close(os.open(p, os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o600))
    except OSError as e:
        if e.errno == errno.EINVAL:
            return False
        raise
    finally:
        if os.path.exists(p):
            os.unlink(p)
    return True


suite = Suite("basic")


def follower_of(c, leader):
    return [i for i in c.live() if i != leader][0]


@suite.test
def test_writes_and_reads_through_moved_redirects():
    c = suite.cluster("basic", n=3)
    c.start_all()
    leader = c.wait_leader()
    f = follower_of(c, leader)
    conn = c.conn(f)
    r = conn.call("SET", "k1", "v1")
    # The key's Redis Cluster slot: CRC16/XMODEM("k1") mod 16384 = 12706.
    check(isinstance(r, Err) and r == "MOVED 12706 127.0.0.1:%d"
          % c.nodes[leader].client_port, r)
    r = conn.call("GET", "k1")
    check(isinstance(r, Err) and r.startswith("MOVED"), r)
    r = conn.call("CLUSTER", "TRANSFER", str(f))
    check(isinstance(r, Err) and r.startswith("MOVED"), r)
    # Local commands work anywhere.
    eq(conn.call("PING"), "PONG")
    conn.close()
    eq(c.follow("SET", "k1", "v1", start=f)[0], "OK")
    eq(c.follow("GET", "k1", start=f)[0], b"v1")
    eq(c.follow("GET", "nope", start=f)[0], None)


@suite.test
def test_every_command_on_the_leader():
    c = suite.cluster("cmds", n=3)
    c.start_all()
    conn = c.conn(c.wait_leader())
    eq(conn.call("PING"), "PONG")
    eq(conn.call("PING", "hi"), b"hi")
    eq(conn.call("ECHO", "x y"), b"x y")
    eq(conn.call("SET", "a", "1"), "OK")
    eq(conn.call("SET", "empty", ""), "OK")
    eq(conn.call("GET", "empty"), b"")
    eq(conn.call("INCR", "a"), 2)
    eq(conn.call("INCRBY", "a", "40"), 42)
    eq(conn.call("DECR", "a"), 41)
    eq(conn.call("DECRBY", "a", "-9"), 50)
    eq(conn.call("INCR", "fresh"), 1)
    eq(conn.call("GET", "a"), b"50")
    eq(conn.call("STRLEN", "a"), 2)
    # Keys of one command share a slot (a hash tag), as Redis Cluster
    # requires; other keys get CROSSSLOT (test_compat: the rule).
    eq(conn.call("MSET", "{t}x", "1", "{t}y", "2", "{t}z", "3"), "OK")
    eq(conn.call("MGET", "{t}x", "{t}nope", "{t}z"), [b"1", None, b"3"])
    eq(conn.call("EXISTS", "{t}x", "{t}x", "{t}nope"), 2)
    eq(conn.call("DEL", "{t}x", "{t}y", "{t}nope"), 2)
    r = conn.call("DEL", "a", "fresh")
    check(isinstance(r, Err) and r.startswith("CROSSSLOT"), r)
    eq(conn.call("DBSIZE"), 4)  # a, empty, fresh, {t}z
    binkey = b"bin\x00\r\nkey"
    binval = bytes(range(256)) * 40
    eq(conn.call("SET", binkey, binval), "OK")
    eq(conn.call("GET", binkey), binval)
    # Errors are replies, and the connection stays usable.
    eq(conn.call("SET", "s", "abc"), "OK")
    r = conn.call("INCR", "s")
    check(isinstance(r, Err) and "not an integer" in r, r)
    eq(conn.call("SET", "max", str(2**63 - 1)), "OK")
    r = conn.call("INCR", "max")
    check(isinstance(r, Err) and "overflow" in r, r)
    r = conn.call("INCRBY", "a", "x1")
    check(isinstance(r, Err) and "not an integer" in r, r)
    r = conn.call("NOSUCHCMD", "a")
    check(isinstance(r, Err) and r.startswith("ERR unknown command"), r)
    r = conn.call("GET")
    check(isinstance(r, Err) and "wrong number of arguments" in r, r)
    r = conn.call("MSET", "a")
    check(isinstance(r, Err) and "wrong number" in r, r)
    r = conn.call("SET", "a", "1", "EX")
    check(isinstance(r, Err) and "syntax" in r, r)
    r = conn.call("SET", "a", "1", "BOGUS")
    check(isinstance(r, Err) and "syntax" in r, r)
    eq(conn.call("GET", "a"), b"50")
    # Client bookkeeping commands that redis-cli and redis-benchmark use.
    cfg = conn.call("CONFIG", "GET", "save")
    eq(cfg, [b"save", b""])
    cfg = conn.call("CONFIG", "GET", "appendonly")
    eq(cfg, [b"appendonly", b"yes"])
    eq(conn.call("CONFIG", "GET", "nothing-like-this"), [])
    check(isinstance(conn.call("COMMAND"), list))
    check(isinstance(conn.call("COMMAND", "DOCS"), list))
    check(conn.call("COMMAND", "COUNT") > 10)
    eq(conn.call("CLIENT", "SETNAME", "t"), "OK")
    check(isinstance(conn.call("CLIENT", "ID"), int))
    eq(conn.call("SELECT", "0"), "OK")
    check(isinstance(conn.call("SELECT", "1"), Err))
    eq(conn.call("QUIT"), "OK")
    check(conn.closed_by_peer(), "QUIT closes")
    conn.close()


@suite.test
def test_info_and_cluster_views():
    c = suite.cluster("info", n=3)
    c.start_all()
    leader = c.wait_leader()
    conn = c.conn(leader)
    for i in range(20):
        conn.call("SET", "k%d" % i, "v")
    inf = parse_info(conn.call("INFO", "raft"))
    eq(inf["role"], "leader")
    eq(inf["node_id"], str(leader))
    eq(inf["leader_id"], str(leader))
    for k in ("term", "commit_index", "last_applied", "last_log_index",
              "snapshot_index", "members"):
        check(k in inf, k)
    eq(inf["members"], "3")
    check(int(inf["commit_index"]) >= 21)
    # One awaited write at a time: one fdatasync each on the leader.
    b0, a0 = int(inf["wal_batches"]), int(inf["wal_appends"])
    d0 = int(inf["wal_direct_batches"])
    for i in range(10):
        conn.call("SET", "w%d" % i, "v")
    wal = parse_info(conn.call("INFO", "raft"))
    check(int(wal["wal_batches"]) - b0 >= 10, (b0, wal["wal_batches"]))
    # Direct I/O (the default) writes every one of these small batches,
    # unless the data directory's filesystem refuses O_DIRECT.
    d1 = int(wal["wal_direct_batches"])
    if takes_o_direct(c.dir):
        eq(d1 - d0, int(wal["wal_batches"]) - b0, wal)
    else:
        eq(d1, 0, wal)
    check(int(wal["wal_appends"]) - a0 >= 10, (a0, wal["wal_appends"]))
    check(int(wal["wal_bytes_written"]) > 0 and wal["wal_engine"] == "posix",
          wal)
    for i in (1, 2, 3):
        m = inf["member_%d" % i]
        check("role=voter" in m, m)
        if i != leader:
            check("match=" in m and "state=replicate" in m, m)
    full = parse_info(conn.call("INFO"))
    check("redis_version" in full and "connected_clients" in full)
    eq(full["db0"].split(",")[0], "keys=30")
    nodes = conn.call("CLUSTER", "MEMBERS").decode().splitlines()
    eq(len(nodes), 3)
    mine = [l for l in nodes if "myself" in l][0]
    check("leader" in mine and mine.startswith(str(leader)), mine)
    ci = parse_info(conn.call("CLUSTER", "INFO"))
    eq(ci["cluster_state"], "ok")
    eq(ci["cluster_leader"], str(leader))
    eq(ci["cluster_size"], "1")
    eq(ci["cluster_voters"], "3")
    conn.close()
    # Followers apply everything and say who leads.
    last = int(wal["last_log_index"])
    for i in c.live():
        fi = c.wait_applied(i, last)
        eq(fi["leader_id"], str(leader))
        if i != leader:
            eq(fi["role"], "follower")
            eq(c.info(i, "keyspace")["db0"].split(",")[0], "keys=30")


@suite.test
def test_pipeline_reads_its_own_writes():
    c = suite.cluster("pipe", n=3)
    c.start_all()
    conn = c.conn(c.wait_leader())
    cmds = []
    for i in range(300):
        cmds.append(("SET", "p", str(i)))
        cmds.append(("GET", "p"))
        cmds.append(("PING",))
        cmds.append(("INCR", "ctr"))
    replies = conn.pipeline(cmds)
    for i in range(300):
        eq(replies[4 * i], "OK")
        eq(replies[4 * i + 1], str(i).encode(), "GET after SET %d" % i)
        eq(replies[4 * i + 2], "PONG")
        eq(replies[4 * i + 3], i + 1)
    conn.close()


def write_concurrently(c, leader, threads=16, each=100):
    """SETs from many clients at once; every one must be acknowledged."""
    errors = []

    def run(t):
        try:
            conn = c.conn(leader)
            for i in range(each):
                r = conn.call("SET", "b:%d:%d" % (t, i), str(i))
                if r != "OK":
                    errors.append(r)
            conn.close()
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(repr(e))
    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    eq(errors, [])


@suite.test
def test_write_batches_bound_the_batches_in_flight():
    # The default, --write-batches 1: writes that arrive while a batch is
    # in flight wait for it and go together as the next one.
    c = suite.cluster("wbatch", n=3)
    c.start_all()
    leader = c.wait_leader()
    write_concurrently(c, leader)
    st = c.info(leader, "stats")
    eq(st["write_batches_in_flight_max"], "1")
    check(int(st["write_batch_waits"]) > 0, st)
    check(0 < int(st["write_batches"]) < int(st["writes"]), st)
    conn = c.conn(leader)
    eq(conn.call("GET", "b:15:99"), b"99")
    eq(parse_info(conn.call("INFO", "keyspace"))["db0"].split(",")[0],
       "keys=1600")
    conn.close()
    # --write-batches 3: never more than three.
    c3 = suite.cluster("wbatch3", n=3, extra=["--write-batches", "3"])
    c3.start_all()
    leader = c3.wait_leader()
    write_concurrently(c3, leader)
    st = c3.info(leader, "stats")
    check(1 <= int(st["write_batches_in_flight_max"]) <= 3, st)


@suite.test
def test_snapshots_by_volume():
    """--snapshot-bytes: a snapshot once the applied entries hold that
    many bytes, long before --snapshot-entries would ask for one."""
    c = suite.cluster("snapvol", n=3, extra=["--snapshot-entries", "100000",
                                             "--snapshot-bytes", "200000"])
    c.start_all()
    leader = c.wait_leader()
    conn = c.conn(leader)
    big = b"v" * 1000
    for i in range(150):
        eq(conn.call("SET", "s%d" % i, big), "OK")
    eq(c.info(leader)["snapshots_taken"], "0")
    for i in range(150, 260):
        eq(conn.call("SET", "s%d" % i, big), "OK")
    wait_for(lambda: all(int(c.info(i)["snapshots_taken"]) >= 1
                         for i in c.live()), 10, "a snapshot on every node")
    check(int(c.info(leader)["snapshot_index"]) >= 190, c.info(leader))
    conn.close()


def snapshot_in_background(c, nid):
    """Send CLUSTER SNAPSHOT to node nid on a connection of its own and
    wait until a child is writing it; the connection, for the reply."""
    snap = c.conn(nid)
    snap.send("CLUSTER", "SNAPSHOT")
    wait_for(lambda: c.info(nid)["snapshot_in_progress"] == "1", 5,
             "a snapshot in progress")
    return snap


def snapshot_child(c, nid):
    """The pid of node nid's snapshot child (it must have exactly one)."""
    pid = c.nodes[nid].proc.pid
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        kids = f.read().split()
    eq(len(kids), 1, kids)
    return int(kids[0])


@suite.test
def test_background_snapshot():
    """--snapshot-fork (the default): a child serializes the state as of
    the snapshot's index while the node goes on applying and answering;
    CLUSTER SNAPSHOT answers once the snapshot is stored."""
    c = suite.cluster("snapfork", n=3,
                      extra=["--snapshot-entries", "0",
                             "--snapshot-trailing", "0",
                             "--snapshot-test-delay-ms", "1500"])
    c.start_all()
    leader = c.wait_leader()
    conn = c.conn(leader)
    for i in range(200):
        eq(conn.call("SET", "k%d" % i, "v%d" % i), "OK")
        eq(conn.call("INCR", "counter"), i + 1)
    at_start = int(c.info(leader)["last_applied"])
    snap = snapshot_in_background(c, leader)
    # The node keeps serving while the child works (1.5 s of it).
    t0 = time.time()
    for i in range(200, 300):
        eq(conn.call("INCR", "counter"), i + 1)
    check(time.time() - t0 < 1.0, "writes waited for the snapshot")
    eq(c.info(leader)["snapshot_in_progress"], "1")
    eq(snap.reply(), "OK")
    inf = c.info(leader)
    eq(inf["snapshot_in_progress"], "0")
    eq(inf["snapshots_forked"], "1")
    eq(inf["snapshots_taken"], "1")
    eq(inf["snapshots_failed"], "0")
    check(int(inf["snapshot_last_ms"]) >= 1500, inf)
    # The image holds the state at its index, not the INCRs applied while
    # the child ran: restarted from it (the log before it compacted away)
    # and the log after it, the counter is exact.
    check(at_start <= int(inf["snapshot_index"]) < at_start + 5, inf)
    snap.close()
    conn.close()
    c.kill(leader)
    c.start(leader)
    c.wait_applied(leader, int(inf["last_applied"]))
    eq(c.info(leader)["last_restore_index"], inf["snapshot_index"])
    c.wait_leader()
    eq(c.follow("GET", "counter")[0], b"300")
    eq(c.follow("GET", "k199")[0], b"v199")


@suite.test
def test_background_snapshot_failures():
    """A child that dies: the snapshot is not stored, CLUSTER SNAPSHOT says
    so, the node goes on, and the next snapshot is taken on the loop.  A
    node that dies: its child dies with it, and it restarts."""
    c = suite.cluster("snapkill", n=3,
                      extra=["--snapshot-entries", "0",
                             "--snapshot-test-delay-ms", "5000"])
    c.start_all()
    leader = c.wait_leader()
    conn = c.conn(leader)
    eq(conn.call("SET", "a", "1"), "OK")
    snap = snapshot_in_background(c, leader)
    child = snapshot_child(c, leader)
    # The child holds no socket or file of the node's, only its pipe (and
    # stdin, stdout, stderr), once it has started.
    wait_for(lambda: len(os.listdir("/proc/%d/fd" % child)) <= 4, 5,
             "the child to close the node's descriptors")
    os.kill(child, signal.SIGKILL)
    r = snap.reply()
    check(isinstance(r, Err) and "not stored" in str(r), r)
    inf = c.info(leader)
    eq((inf["snapshots_failed"], inf["snapshots_taken"],
        inf["snapshot_index"]), ("1", "0", "0"))
    eq(conn.call("SET", "b", "2"), "OK")
    t0 = time.time()
    eq(snap.call("CLUSTER", "SNAPSHOT"), "OK")  # on the loop: no delay
    check(time.time() - t0 < 4, "the retry forked again")
    inf = c.info(leader)
    eq((inf["snapshots_taken"], inf["snapshots_forked"]), ("1", "1"))
    check(int(inf["snapshot_index"]) > 0, inf)
    # Up to date: nothing to do, and that is no error.
    eq(snap.call("CLUSTER", "SNAPSHOT"), "OK")
    # The node dies during a snapshot: its child goes too.
    eq(conn.call("SET", "c", "3"), "OK")
    snap.close()
    snap = snapshot_in_background(c, leader)
    child = snapshot_child(c, leader)
    snap.close()
    conn.close()
    c.kill(leader)

    def child_gone():
        try:
            with open("/proc/%d/status" % child) as f:
                return "zombie" in f.read()
        except OSError:
            return True
    wait_for(child_gone, 5, "the child to die with its parent")
    c.start(leader)
    c.wait_leader()
    eq(c.follow("GET", "c")[0], b"3")


@suite.test
def test_snapshot_on_the_loop():
    """--snapshot-fork no: CLUSTER SNAPSHOT serializes on the node's loop,
    no child, and the snapshot is there when the reply comes."""
    c = suite.cluster("snapinline", n=3,
                      extra=["--snapshot-entries", "0",
                             "--snapshot-fork", "no"])
    c.start_all()
    leader = c.wait_leader()
    conn = c.conn(leader)
    eq(conn.call("SET", "a", "1"), "OK")
    eq(conn.call("CLUSTER", "SNAPSHOT"), "OK")
    inf = c.info(leader)
    eq((inf["snapshot_fork"], inf["snapshots_taken"],
        inf["snapshots_forked"], inf["snapshot_in_progress"]),
       ("no", "1", "0", "0"))
    check(int(inf["snapshot_index"]) >= 2, inf)
    conn.close()


@suite.test
def test_wal_direct_io_off():
    """--wal-direct-io no: every batch is a pwrite and an fdatasync, none
    direct; the data survives a restart of the whole cluster."""
    c = suite.cluster("nodirect", n=3, extra=["--wal-direct-io", "no"])
    c.start_all()
    leader = c.wait_leader()
    conn = c.conn(leader)
    for i in range(20):
        eq(conn.call("SET", "d%d" % i, str(i)), "OK")
    inf = c.info(leader)
    check(int(inf["wal_batches"]) >= 20, inf)
    eq(inf["wal_direct_batches"], "0")
    conn.close()
    c.stop_all_checked()
    c.start_all()
    leader = c.wait_leader()
    conn = c.conn(leader)
    eq(conn.call("GET", "d19"), b"19")
    conn.close()


@suite.test
def test_mem_storage_cluster():
    c = suite.cluster("mem", n=3, storage="mem")
    c.start_all()
    leader = c.wait_leader()
    conn = c.conn(leader)
    eq(conn.call("SET", "m", "1"), "OK")
    eq(conn.call("GET", "m"), b"1")
    eq(c.info(leader)["storage"], "mem")
    check("wal_batches" not in c.info(leader), "WAL counters without a WAL")
    conn.close()


@suite.test
def test_sigterm_exits_cleanly_and_restart_keeps_data():
    c = suite.cluster("term", n=3, storage="wal")
    c.start_all()
    c.wait_leader()
    eq(c.follow("SET", "durable", "yes")[0], "OK")
    codes = [c.kill(i, signal.SIGTERM) for i in (1, 2, 3)]
    eq(codes, [0, 0, 0], "exit codes after SIGTERM")
    for i in (1, 2, 3):
        c.start(i)  # --peers is ignored: the directory holds state
    c.wait_leader()
    eq(c.follow("GET", "durable")[0], b"yes")
    # A second process on the same directory is refused.
    n1 = c.nodes[1]
    import subprocess
    p = subprocess.run([c.kvnode, "--id", "1", "--data", n1.dir, "--client",
                        "127.0.0.1:1", "--raft", "127.0.0.1:1"],
                       capture_output=True, timeout=20)
    check(p.returncode != 0, "second process started")
    check(b"another" in p.stderr or b"in use" in p.stderr, p.stderr)


@suite.test
def test_command_line_errors_and_help():
    import subprocess
    p = subprocess.run([suite.kvnode, "--help"], capture_output=True,
                       timeout=10)
    eq(p.returncode, 0)
    for word in (b"--id", b"--data", b"--client", b"--raft", b"--peers",
                 b"--storage", b"SIGTERM"):
        check(word in p.stdout, word)
    for bad in (["--id", "0"], ["--id", "x"], ["--storage", "disk"],
                ["--peers", "1=a"], ["--bogus"], []):
        p = subprocess.run([suite.kvnode] + bad, capture_output=True,
                           timeout=10)
        eq(p.returncode, 2, "args %r: %r" % (bad, p.stderr))
        check(p.stderr, "no message for %r" % bad)
    for opt, v in (("--write-batches", "-1"), ("--write-batches", "1025"),
                   ("--write-batches", "x"), ("--write-batches", ""),
                   ("--snapshot-bytes", "x"), ("--snapshot-bytes", "-5"),
                   ("--snapshot-fork", "maybe"), ("--snapshot-fork", ""),
                   ("--wal-direct-io", "on"), ("--wal-direct-io", ""),
                   ("--snapshot-test-delay-ms", "-1"),
                   ("--snapshot-test-delay-ms", "600001")):
        p = subprocess.run([suite.kvnode, opt, v, "--id", "1"],
                           capture_output=True, timeout=10)
        eq(p.returncode, 2)
        check(opt[2:].encode() in p.stderr, p.stderr)


if __name__ == "__main__":
    suite.main()
