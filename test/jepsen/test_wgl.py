#!/usr/bin/env python3
"""test_wgl.py — the checker checked: hand-made histories with a known
answer, random histories generated from a real register (always
linearisable), and the same histories with one read made stale (never
linearisable).  Ends with "N passed, N failed"."""

import os
import random
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wgl import Op, check  # noqa: E402

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def test_sequential_history_is_linearizable():
    ops = [Op("w", "a", 0, 10), Op("r", "a", 11, 12), Op("w", "b", 13, 20),
           Op("r", "b", 21, 22)]
    assert check(ops).ok is True


@test
def test_concurrent_write_may_be_seen_or_not():
    for seen in ("a", "b"):
        ops = [Op("w", "a", 0, 10), Op("w", "b", 11, 30),
               Op("r", seen, 12, 13)]
        assert check(ops).ok is True, seen


@test
def test_stale_read_after_write_completed_is_caught():
    ops = [Op("w", "a", 0, 10), Op("w", "b", 11, 12), Op("r", "a", 13, 14)]
    r = check(ops)
    assert r.ok is False
    assert r.blocked.value == "a" and r.blocked.kind == "r"


@test
def test_read_of_a_value_never_written_is_caught():
    assert check([Op("w", "a", 0, 10), Op("r", "z", 11, 12)]).ok is False


@test
def test_unknown_write_may_happen_late_or_never():
    base = [Op("w", "a", 0, 10), Op("w", "b", 11, None)]
    assert check(base + [Op("r", "a", 30, 31)]).ok is True
    assert check(base + [Op("r", "b", 30, 31)]).ok is True
    assert check(base + [Op("r", "a", 30, 31), Op("r", "b", 40, 41)]).ok
    # Once seen, it cannot be undone by an older value.
    bad = base + [Op("r", "b", 30, 31), Op("r", "a", 40, 41)]
    assert check(bad).ok is False


@test
def test_unknown_write_cannot_take_effect_before_its_call():
    ops = [Op("w", "a", 0, 10), Op("r", "b", 11, 12), Op("w", "b", 20, None)]
    assert check(ops).ok is False


def simulate(n, conc, seed, stale=False):
    """A history of a real register: each op takes effect at a random
    point inside its [call, return]; 5 % of the writes lose their reply."""
    rnd = random.Random(seed)
    t, raw = 0, []
    for c in range(n):
        t += rnd.randint(1, 5)
        lp = t + rnd.randint(0, conc)
        raw.append((rnd.choice("wr"), t, lp, lp + rnd.randint(0, conc), c))
    state, prev, out = None, [], []
    for kind, call, lp, ret, c in sorted(raw, key=lambda x: x[2]):
        if kind == "w":
            prev.append(state)
            state = "v%d" % c
            out.append(Op("w", state, call,
                          None if rnd.random() < 0.05 else ret))
        else:
            out.append(Op("r", state, call, ret))
    if stale:
        # Long after the end, a read returns the value of a write that a
        # later acknowledged write followed strictly: never linearisable.
        acked = [o for o in out if o.kind == "w" and o.ret is not None]
        w1 = acked[len(acked) // 2]
        assert any(o.call > w1.ret for o in acked)
        end = max(o.ret or o.call for o in out)
        out.append(Op("r", w1.value, end + 10, end + 11))
    return out


@test
def test_random_register_histories_are_linearizable():
    for seed in range(20):
        r = check(simulate(2000, 10, seed))
        assert r.ok is True, "seed %d: %s" % (seed, r.blocked)


@test
def test_random_histories_with_a_stale_read_are_caught():
    for seed in range(20):
        r = check(simulate(2000, 10, seed, stale=True))
        assert r.ok is False, "seed %d" % seed


def main():
    passed = failed = 0
    for fn in TESTS:
        try:
            fn()
            passed += 1
            print("ok   " + fn.__name__)
        except Exception:
            failed += 1
            print("FAIL " + fn.__name__)
            for line in traceback.format_exc().splitlines():
                print("  " + line)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
