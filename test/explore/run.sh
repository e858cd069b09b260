#!/usr/bin/env bash
# test/explore/run.sh — what `make explore` runs: the explorer's profiles
# (docs/explorer.md), sharing a budget of SECONDS in total.  Each run ends
# with "N passed, N failed"; the last line sums them.
#
#   bash test/explore/run.sh build/test/explore/explore 120
set -u
bin=${1:?explorer binary}
total=${2:-60}
pass=0
fail=0
# share of the budget (percent), name, options
profiles=(
	"30|interleavings|--start leader --crashes 1 --proposals 2 --reads 2 --elections 1 --heartbeats 2"
	"20|elections|--start fresh --crashes 1 --proposals 1 --reads 0 --elections 3 --heartbeats 2 --heal-depth 8"
	"10|reads|--delays 6 --devs H --park read_index_resp --proposals 1 --reads 2 --crashes 1 --elections 0 --heartbeats 0"
	"15|snapshots|--delays 6 --devs HU --park append --dups 1 --snapshot 1 --defer 1 --proposals 1 --reads 0 --crashes 0 --elections 0 --heartbeats 0"
	"25|deviations|--delays 3 --devs DHTWXU --park all --dups 1 --drops 1 --proposals 1 --reads 1 --crashes 1 --elections 1 --heartbeats 1 --snapshot 2"
)
for p in "${profiles[@]}"; do
	IFS='|' read -r share name opts <<<"$p"
	secs=$(( total * share / 100 ))
	[[ $secs -lt 1 ]] && secs=1
	echo "== $name ($secs s): explore $opts"
	# shellcheck disable=SC2086
	out=$("$bin" --seconds "$secs" $opts 2>&1)
	rc=$?
	echo "$out" | grep -v '^[0-9]* passed, [0-9]* failed$'
	line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
	if [[ -z $line || $rc -gt 1 ]]; then
		echo "$name: no summary (exit $rc)"
		fail=$((fail + 1))
		continue
	fi
	p=${line%% passed*}
	f=${line#*passed, }
	f=${f%% failed*}
	pass=$((pass + p))
	fail=$((fail + f))
done
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
