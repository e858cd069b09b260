#!/usr/bin/env bash
# counter.sh — the tutorial's replicated counter (examples/counter) as
# three real processes on loopback: each must print "counter = 10" and
# exit 0.  Usage: counter.sh [BINARY] (default $BUILD/examples/counter).
set -u
bin=${1:-${SR_TEST_BUILD:-build}/examples/counter}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sr-counter.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# Three ports nobody listens on now, below the kernel's ephemeral range
# (a port it chose could go to any connect() before the counters bind
# it; the C tests use 23000-26999, the kvnode tests 27000-28999).
ports=$(python3 -c 'import os, random, socket
r = random.Random(os.getpid())
got = []
while len(got) < 3:
    p = r.randrange(29000, 30000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        if p not in got:
            got.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(" ".join(map(str, got)))')

pids=()
for i in 1 2 3; do
	timeout 20 "$bin" $i "$tmp/d$i" $ports >"$tmp/out$i" 2>"$tmp/err$i" &
	pids+=($!)
done
for i in 1 2 3; do
	wait "${pids[$((i - 1))]}"
	rc=$?
	out=$(cat "$tmp/out$i")
	if [[ $rc -eq 0 && $out == "counter = 10" ]]; then
		echo "ok   counter_member_$i"
		passed=$((passed + 1))
	else
		echo "FAIL counter_member_$i"
		echo "  exit $rc, stdout '$out'"
		sed 's/^/  /' "$tmp/err$i" | tail -n 10
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
