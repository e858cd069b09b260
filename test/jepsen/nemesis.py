"""nemesis.py — the fault schedule: planned from the seed before the run,
then played against the cluster while the clients work.

plan() draws the whole schedule from the seed: when each fault starts,
its kind, how long it lasts, and a private seed from which the fault
picks its victims (the leader or a random member, a partition's shape,
a drop probability).  The same seed gives the same schedule and the same
choices; what the cluster does in between (who wins an election, how
fast a node restarts) is not under the seed's control, so a replay
explores the same faults, not an identical trace.

Kinds (each ends by undoing itself; heal_all() undoes everything):
  kill-one    SIGKILL the leader or a member; restart it later
  kill-all    SIGKILL every member at once; restart them all
  pause       SIGSTOP the leader or a member; SIGCONT later
  partition   cut the network: one node isolated, majority/minority
              halves, or a bridge (one node sees both sides)    [netns]
  flaky       every member loses 10-40% of the packets from its peers
              (or its links flap without iptables)              [netns]
  members     replace a member under load: start a node with a new id,
              CLUSTER ADD it, wait until it votes, CLUSTER REMOVE the old
  disk-full   fill a member's data tmpfs until its WAL gets ENOSPC; free
              it and restart the node if it stopped             [netns]
  corrupt     SIGKILL a follower, flip a byte in an acknowledged WAL
              record, restart it: it must repair from the leader
"""

import os
import random
import struct
import time

import kvtest
from client import Client, Rec

ALL_KINDS = ["kill-one", "kill-all", "pause", "partition", "flaky",
             "members", "disk-full", "corrupt"]
NETNS_ONLY = {"partition", "flaky", "disk-full"}


def plan(seed, seconds, kinds):
    rnd = random.Random(seed)
    out = []
    t = 2.0  # let the cluster settle and the clients start
    while t < seconds - 4.0:
        kind = rnd.choice(kinds)
        dur = rnd.uniform(1.0, 4.0)
        out.append((t, kind, dur, rnd.getrandbits(32)))
        t += dur + rnd.uniform(1.0, 3.0)
    return out


class Nemesis:
    def __init__(self, cluster, say, anomaly):
        self.c = cluster
        self.say = say
        self.anomaly = anomaly
        self.removed = set()
        self.counts = {}

    # -- helpers -----------------------------------------------------
    def _victim(self, rnd, prefer_leader=0.5):
        members = [i for i in self.c.members if self.c.nodes[i].alive()]
        if not members:
            return None, ""
        if rnd.random() < prefer_leader:
            lead = self.c.leader()
            if lead in members:
                return lead, " (leader)"
        return rnd.choice(members), ""

    def _restart(self, nid):
        if self.c.nodes[nid].alive():
            return True
        ok = self.c.start(nid, peers=False)
        if not ok:
            self.c.nodes[nid].exit_ok = True  # reported here, once
            rc = self.c.nodes[nid].proc.returncode
            self.anomaly("restart", "node %d did not restart (exit %s); "
                         "log: %s" % (nid, rc, self.c.nodes[nid].log))
        return ok

    def _cluster_call(self, *args, deadline=10.0):
        cl = Client(-2, self.c, 0, None, [], [], op_deadline=deadline)
        rec = Rec(-2, "admin", "", None)
        cl.invoke(rec, args, True)
        cl.close()
        return rec

    def _members_view(self):
        """The leader's CLUSTER MEMBERS, {id: role}; {} if no node says
        it leads.  A removed id may also be absent: callers treat absent
        as removed."""
        for nid in list(self.c.nodes):
            node = self.c.nodes[nid]
            if not node.alive() or node.paused:
                continue
            try:
                cn = self.c.conn(nid, timeout=2)
                try:
                    text = cn.call("CLUSTER", "MEMBERS")
                finally:
                    cn.close()
            except (OSError, kvtest.Closed, ValueError):
                continue
            if isinstance(text, bytes):
                text = text.decode()
            if not isinstance(text, str) or ",leader" not in text:
                continue
            out, lead = {}, False
            for line in text.splitlines():
                f = line.split()
                if len(f) >= 4:
                    flags = f[3].split(",")
                    out[int(f[0])] = flags[0]
                    lead = lead or ("myself" in flags and "leader" in flags)
            if lead:
                return out
        return {}

    # -- the faults --------------------------------------------------
    def run_one(self, kind, dur, seed):
        rnd = random.Random(seed)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        getattr(self, "f_" + kind.replace("-", "_"))(rnd, dur)

    def f_kill_one(self, rnd, dur):
        nid, why = self._victim(rnd)
        if nid is None:
            return
        self.c.kill(nid)
        self.say("kill-one: SIGKILL node %d%s for %.1fs" % (nid, why, dur))
        time.sleep(dur)
        self._restart(nid)

    def f_kill_all(self, rnd, dur):
        live = [i for i in self.c.members if self.c.nodes[i].alive()]
        for i in live:
            self.c.kill(i)
        self.say("kill-all: SIGKILL nodes %s" % live)
        time.sleep(dur / 2)
        for i in live:
            self._restart(i)

    def f_pause(self, rnd, dur):
        nid, why = self._victim(rnd)
        if nid is None:
            return
        self.c.pause(nid)
        self.say("pause: SIGSTOP node %d%s for %.1fs" % (nid, why, dur))
        time.sleep(dur)
        self.c.resume(nid)

    def f_partition(self, rnd, dur):
        ids = sorted(self.c.members)
        shape = rnd.choice(["isolate", "halves", "bridge"])
        if shape == "isolate":
            nid, why = self._victim(rnd)
            if nid is None:
                return
            groups = [[nid], [i for i in ids if i != nid]]
            self.c.partition(groups)
            desc = "node %d%s isolated" % (nid, why)
        elif shape == "halves":
            rnd.shuffle(ids)
            k = len(ids) // 2
            groups = [ids[:k], ids[k:]]
            self.c.partition(groups)
            desc = "%s | %s" % (groups[0], groups[1])
        else:
            rnd.shuffle(ids)
            mid, rest = ids[0], ids[1:]
            k = len(rest) // 2
            a, b = rest[:k], rest[k:]
            self.c.partition([a, b])  # mid still sees both sides
            desc = "bridge: %s | %s, node %d sees both" % (a, b, mid)
        self.say("partition: %s for %.1fs" % (desc, dur))
        time.sleep(dur)
        self.c.heal()

    def f_flaky(self, rnd, dur):
        p = rnd.uniform(0.1, 0.4)
        self.c.flaky(list(self.c.members), p, rnd)
        self.say("flaky: drop %.0f%% of peer packets%s for %.1fs" % (
            100 * p, "" if self.c.iptables else " (link flaps)", dur))
        time.sleep(dur)
        self.c.heal()

    def f_disk_full(self, rnd, dur):
        nid, why = self._victim(rnd, 0.3)
        if nid is None:
            return
        self.c.nodes[nid].exit_ok = True  # exit 1 on ENOSPC is right
        self.c.fill_disk(nid)
        self.say("disk-full: node %d%s data tmpfs filled for %.1fs" % (
            nid, why, dur))
        time.sleep(dur)
        self.c.free_disk(nid)
        node = self.c.nodes[nid]
        if not node.alive():
            node.exit_ok = True
            self.say("disk-full: node %d had stopped (exit %s); restarting"
                     % (nid, node.proc.returncode))
            self._restart(nid)

    def f_members(self, rnd, dur):
        if len(self.c.members) > len(self.c.initial_ids):
            self.say("members: skipped (a change is still unfinished)")
            return
        old = rnd.choice(sorted(self.c.members))
        new = self.c.add_node()
        if not self.c.start(new.id, peers=False):
            self.anomaly("members", "new node %d did not start" % new.id)
            return
        rec = self._cluster_call("CLUSTER", "ADD", str(new.id),
                                 "%s:%d" % (new.host, new.raft_port),
                                 "%s:%d" % (new.host, new.client_port))
        self.say("members: CLUSTER ADD %d -> %s %s" % (new.id, rec.type,
                                                        rec.result))
        if rec.type == "fail":
            self.c.kill(new.id)
            return
        self.c.members.append(new.id)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if self._members_view().get(new.id) == "voter":
                break
            time.sleep(0.2)
        else:
            self.say("members: node %d not a voter after 20s; old node %d "
                     "kept" % (new.id, old))
            return
        rec = self._cluster_call("CLUSTER", "REMOVE", str(old))
        self.say("members: node %d votes; CLUSTER REMOVE %d -> %s %s" % (
            new.id, old, rec.type, rec.result))
        end = time.monotonic() + 20
        while rec.type != "fail" and time.monotonic() < end:
            view = self._members_view()
            if view and view.get(old, "removed") == "removed":
                self.c.members.remove(old)
                self.removed.add(old)
                self.c.kill(old)
                self.say("members: node %d removed and stopped" % old)
                return
            time.sleep(0.2)
        self.say("members: removal of %d not seen; it stays" % old)

    def f_corrupt(self, rnd, dur):
        if not all(self.c.nodes[i].alive() for i in self.c.members):
            # A node that refused a corrupt log stays down: corrupting a
            # second one would only take the quorum away.
            self.say("corrupt: skipped (a member is down)")
            return
        lead = self.c.leader()
        cands = [i for i in self.c.members if i != lead
                 and self.c.nodes[i].alive()]
        if not cands:
            return
        nid = rnd.choice(sorted(cands))
        self.c.kill(nid)
        where = corrupt_wal(os.path.join(self.c.nodes[nid].dir, "raft"), rnd)
        self.say("corrupt: node %d killed; %s" % (nid, where))
        time.sleep(dur / 2)
        self._restart(nid)

    # -- the end -----------------------------------------------------
    def heal_all(self):
        self.c.heal()
        for i in list(self.c.members):
            rc = self.c.check_exit(i)
            if rc is not None:
                self.c.unexpected.append((i, rc))
        for nid, rc in self.c.unexpected:
            self.anomaly("crash", "node %d exited by itself (status %s); "
                         "log: %s" % (nid, rc, self.c.nodes[nid].log))
        self.c.unexpected = []
        for i in list(self.c.members):
            self.c.resume(i)
            self.c.free_disk(i)
            if not self.c.nodes[i].alive():
                self._restart(i)


def corrupt_wal(raft_dir, rnd):
    """Flip one payload byte of an acknowledged ENTRY record: one in the
    first half of the records of an older segment (never the last batch,
    which could be a torn, unacknowledged tail)."""
    segs = sorted(f for f in os.listdir(raft_dir) if f.endswith(".wal"))
    for name in segs:
        path = os.path.join(raft_dir, name)
        with open(path, "rb") as f:
            data = f.read()
        off, recs = 64, []
        while off + 48 <= len(data):
            ln, kind = struct.unpack_from("<II", data, off + 4)
            if kind == 0 or off + 48 + ln > len(data):
                break
            if kind == 1 and ln > 0:
                recs.append((off, ln))
            off += (48 + ln + 7) & ~7
        if len(recs) < 4:
            continue
        off, ln = rnd.choice(recs[:len(recs) // 2])
        pos = off + 48 + rnd.randrange(ln)
        with open(path, "r+b") as f:
            f.seek(pos)
            b = f.read(1)
            f.seek(pos)
            f.write(bytes([b[0] ^ 0x5A]))
        return "flipped byte %d of %s (record at %d)" % (pos, name, off)
    return "no acknowledged record old enough to corrupt"


__all__ = ["ALL_KINDS", "NETNS_ONLY", "plan", "Nemesis", "kvtest"]
