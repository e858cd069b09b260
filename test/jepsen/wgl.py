"""wgl.py — a linearizability checker for one register (Wing & Gong's
search with Lowe's memoisation, as test/sim/lincheck.c models it).

The history of one key is a list of Op: a write of a unique value or a
read that returned a value (None: the key was absent), each with the
time it was invoked and the time its reply arrived.  An operation whose
outcome is unknown (a write answered -TIMEOUT, or whose connection died
after it was sent) has no reply time: it may have taken effect at any
moment after its call, or never.  Reads that failed are left out (a
read changes nothing).

The search walks a time-ordered list of call and return events.  At a
call it tries to linearise that operation now (the register model must
accept it, and the pair (set of linearised ops, register value) must not
have been seen before — Lowe's cache, which turns the exponential search
into one that is fast on real histories); at a return whose operation is
still unlinearised it backtracks.  It succeeds once every completed
operation is linearised; pending ones may stay out.

Two sound reductions keep pending writes from blowing the search up
(values are unique, so a read names the one write it saw):
  - a pending write whose value nobody read is dropped: leaving it out
    of a linearisation changes no read, and every linearisation without
    it is one with it never taking effect;
  - a pending write whose value was read must have taken effect before
    the earliest reply of such a read: that becomes its return time.
"""

import time


class Op:
    __slots__ = ("kind", "value", "call", "ret", "client", "idx")

    def __init__(self, kind, value, call, ret, client=None):
        self.kind = kind  # "w" or "r"
        self.value = value
        self.call = call
        self.ret = ret  # None: the outcome is unknown (writes only)
        self.client = client
        self.idx = 0

    def __repr__(self):
        r = "?" if self.ret is None else "%.3f" % (self.ret / 1e9)
        return "%s(%r) client %s [%.3f, %s]" % (
            "write" if self.kind == "w" else "read", self.value,
            self.client, self.call / 1e9, r)


def reduce_pending(ops):
    """The reductions above; returns a new list."""
    first_read = {}
    for o in ops:
        if o.kind == "r" and o.value is not None:
            t = first_read.get(o.value)
            if t is None or o.ret < t:
                first_read[o.value] = o.ret
    out = []
    for o in ops:
        if o.kind == "w" and o.ret is None:
            t = first_read.get(o.value)
            if t is None:
                continue
            o = Op("w", o.value, o.call, max(t, o.call), o.client)
        out.append(o)
    return out


class Result:
    def __init__(self, ok, ops, explored, best=None, blocked=None,
                 timed_out=False):
        self.ok = ok
        self.ops = ops
        self.explored = explored  # cache entries
        self.best = best  # the end of the longest linearised prefix
        self.blocked = blocked  # the op whose return could not be passed
        self.timed_out = timed_out


def check(ops, init=None, budget_s=30.0):
    """Is this single-register history linearisable?  Result.ok is True,
    False, or None when the budget ran out first."""
    ops = reduce_pending(ops)
    n = len(ops)
    for i, o in enumerate(ops):
        o.idx = i
    # Events: (time, 0 call / 1 return, op).  At equal times calls come
    # first, which only makes operations more concurrent (permissive).
    ev = []
    for o in ops:
        ev.append((o.call, 0, o.idx))
        if o.ret is not None:
            ev.append((o.ret, 1, o.idx))
    ev.sort()
    m = len(ev)
    # Doubly linked list over the events; slot m is the head sentinel.
    nxt = [s + 1 for s in range(m)] + [0 if m else -1]
    prv = [s - 1 for s in range(m)] + [-1]
    if m:
        nxt[m - 1] = -1
        prv[0] = m
    is_ret = [e[1] for e in ev]
    op_of = [e[2] for e in ev]
    ret_slot = [None] * n
    call_slot = [None] * n
    for s, e in enumerate(ev):
        if e[1]:
            ret_slot[e[2]] = s
        else:
            call_slot[e[2]] = s
    returns_left = sum(is_ret)
    head = m

    def unlink(s):
        p, q = prv[s], nxt[s]
        nxt[p] = q
        if q != -1:
            prv[q] = p

    def relink(s):
        p, q = prv[s], nxt[s]
        nxt[p] = s
        if q != -1:
            prv[q] = s

    state = init
    lin = 0
    depth = 0
    best_depth, best_stack, blocked = -1, [], None
    stack = []  # (op index, state before)
    cache = set()
    entry = nxt[head] if m else -1
    deadline = time.monotonic() + budget_s
    steps = 0
    while returns_left:
        steps += 1
        if steps & 0xFFF == 0 and time.monotonic() > deadline:
            return Result(None, ops, len(cache), timed_out=True)
        if entry == -1:
            # Everything before a linearised call is a call, so a return
            # left is always ahead: reaching the end is a bug here.
            raise AssertionError("wgl: end of history with returns left")
        i = op_of[entry]
        if not is_ret[entry]:
            o = ops[i]
            if o.kind == "w":
                ok, new = True, o.value
            else:
                ok, new = o.value == state, state
            if ok:
                nl = lin | (1 << i)
                key = (nl, new)
                if key not in cache:
                    cache.add(key)
                    stack.append((i, state))
                    state, lin = new, nl
                    depth += 1
                    unlink(call_slot[i])
                    if ret_slot[i] is not None:
                        unlink(ret_slot[i])
                        returns_left -= 1
                    entry = nxt[head]
                    continue
            entry = nxt[entry]
        else:
            if depth > best_depth:
                best_depth = depth
                best_stack = [ops[j] for j, _ in stack[-6:]]
                blocked = ops[i]
            if not stack:
                return Result(False, ops, len(cache), best_stack, blocked)
            j, state = stack.pop()
            lin &= ~(1 << j)
            depth -= 1
            if ret_slot[j] is not None:
                relink(ret_slot[j])
                returns_left += 1
            relink(call_slot[j])
            entry = nxt[call_slot[j]]
    return Result(True, ops, len(cache))
