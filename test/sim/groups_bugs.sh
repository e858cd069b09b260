#!/usr/bin/env bash
# groups_bugs.sh — the multi-group simulator's checker must catch each
# injected bug of the shared transport and the shared WAL (groups.h):
# a message handed to another group's engine, appends reported durable
# before the batch's fsync, a batch whose fsync misses its last group.
# For each: run seeds until one fails (at most $SEEDS), then replay that
# seed without the bug, which must pass (so the bug, not the seed, failed
# it).  Usage: groups_bugs.sh [SIMULATE] (default build/test/sim/simulate).
set -u
sim=${1:-${SR_TEST_BUILD:-build}/test/sim/simulate}
SEEDS=${SEEDS:-100}
GROUPS_PER=${GROUPS_PER:-3}
passed=0 failed=0

for bug in misroute early-ack split; do
	out=$("$sim" --seeds "$SEEDS" --from 1 --groups "$GROUPS_PER" \
		--bug "$bug" --max-fail 1 2>&1)
	line=$(printf '%s\n' "$out" | grep -m1 '^FAIL seed ')
	if [[ -z $line ]]; then
		echo "FAIL bug_$bug: not caught in $SEEDS seeds"
		failed=$((failed + 1))
		continue
	fi
	seed=${line#FAIL seed }
	seed=${seed%%:*}
	if ! "$sim" --seed "$seed" --groups "$GROUPS_PER" >/dev/null 2>&1; then
		echo "FAIL bug_$bug: seed $seed fails without the bug too"
		failed=$((failed + 1))
		continue
	fi
	echo "ok   bug_$bug caught at seed $seed (passes without it): ${line#*: }"
	passed=$((passed + 1))
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
