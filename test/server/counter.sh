#!/usr/bin/env bash
# counter.sh — the tutorial's replicated counter (examples/counter) as
# three real processes on loopback: each must print "counter = 10" and
# exit 0.  Usage: counter.sh [BINARY] (default $BUILD/examples/counter).
set -u
bin=${1:-${SR_TEST_BUILD:-build}/examples/counter}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sr-counter.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# Three ports nobody listens on now.
ports=$(python3 -c 'import socket
ss=[socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')

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
