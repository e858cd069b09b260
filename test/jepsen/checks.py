"""checks.py — what a history must satisfy.  Each check returns a list
of anomalies (kind, text); an empty list is a pass.

  linearizable  per register key, the ok reads and writes (and the
                writes of unknown outcome) have a linearisation
                (wgl.py).  The final reads, done after every fault was
                healed, are part of the history.
  lost-write    per register key, the final value was written by a SET
                (acknowledged or of unknown outcome) that no acknowledged
                SET followed in real time: an acknowledged SET that
                started after it ended would otherwise have been lost.
                A value nobody wrote is a phantom.
  counter       per counter key: with A acknowledged INCRs and U of
                unknown outcome (the counter starts absent, i.e. 0),
                the final value F must satisfy A <= F <= A + U; every
                acknowledged INCR returned a distinct value in 1..F (two
                equal replies mean two increments were merged into one).
"""

import wgl


def register_ops(history, key):
    ops = []
    for r in history:
        if r.key != key or r.f not in ("r", "w"):
            continue
        if r.f == "r":
            if r.type != "ok":
                continue
            ops.append(wgl.Op("r", r.result, r.call, r.ret, r.client))
        else:
            if r.type == "ok":
                ops.append(wgl.Op("w", r.value, r.call, r.ret, r.client))
            elif r.type == "info":
                ops.append(wgl.Op("w", r.value, r.call, None, r.client))
    return ops


def check_linearizable(history, key, budget_s, t0):
    ops = register_ops(history, key)
    res = wgl.check(ops, budget_s=budget_s)
    if res.ok is True:
        return [], res
    if res.ok is None:
        return [("inconclusive", "%s: the search ran out of its %.0fs budget "
                 "(%d states)" % (key, budget_s, res.explored))], res
    tail = res.best[-6:]
    lines = ["%s: not linearizable (%d ops, %d states searched)"
             % (key, len(res.ops), res.explored),
             "  last ops of the longest linearisable prefix:"]
    lines += ["    " + fmt(o, t0) for o in tail]
    lines.append("  cannot return yet: " + fmt(res.blocked, t0))
    # The ops concurrent with the blocked one help a human see why.
    b = res.blocked
    near = [o for o in res.ops if o is not b and o.call <= b.ret
            and (o.ret is None or o.ret >= b.call)][:8]
    if near:
        lines.append("  concurrent with it:")
        lines += ["    " + fmt(o, t0) for o in near]
    return [("linearizable", "\n".join(lines))], res


def fmt(o, t0):
    ret = "?" if o.ret is None else "%.3f" % ((o.ret - t0) / 1e9)
    return "%s %r by client %s, [%.3f, %s]" % (
        "write" if o.kind == "w" else "read", o.value, o.client,
        (o.call - t0) / 1e9, ret)


def check_lost_write(history, key, final):
    if final is None or final.type != "ok":
        return [("lost-write", "%s: no final read" % key)]
    v = final.result
    writes = [r for r in history if r.key == key and r.f == "w"
              and r.type in ("ok", "info")]
    acked = [r for r in writes if r.type == "ok"]
    if v is None:
        if acked:
            return [("lost-write", "%s: final value absent after %d "
                     "acknowledged SETs" % (key, len(acked)))]
        return []
    w = [r for r in writes if r.value == v]
    if not w:
        return [("lost-write", "%s: final value %r was never written "
                 "(phantom)" % (key, v))]
    w = w[0]
    later = [r for r in acked if w.ret is not None and r.call > w.ret]
    if later:
        lost = later[0]
        return [("lost-write", "%s: final value %r, but SET %r was "
                 "acknowledged after it completed (lost)" % (
                     key, v, lost.value))]
    return []


def check_counter(history, key, final):
    incs = [r for r in history if r.key == key and r.f == "incr"]
    acked = [r for r in incs if r.type == "ok"]
    unknown = [r for r in incs if r.type == "info"]
    out = []
    if final is None or final.type != "ok":
        return [("counter", "%s: no final read" % key)], None
    f = int(final.result) if final.result is not None else 0
    a, u = len(acked), len(unknown)
    if not a <= f <= a + u:
        out.append(("counter", "%s: final value %d outside [%d acked, "
                    "%d acked + unknown]" % (key, f, a, a + u)))
    seen = {}
    for r in acked:
        v = r.result
        if not isinstance(v, int) or v < 1 or v > f:
            out.append(("counter", "%s: INCR by client %d returned %r, "
                        "final value %d" % (key, r.client, v, f)))
        elif v in seen:
            out.append(("counter", "%s: two acknowledged INCRs returned "
                        "%d (clients %d and %d)" % (key, v, seen[v],
                                                    r.client)))
        seen[v] = r.client
    return out[:10], (a, u, f)
