#!/usr/bin/env bash
# groups_sweep.sh — multi-group simulator sweeps (simulate --groups):
# N3 seeds with 3 groups per process, N8 with 8, N32 with 32, on seeds
# from BASE+200001, BASE+300001, BASE+400001.  Prints every failure and
# the summed "N passed, N failed".
# Usage: groups_sweep.sh SIMULATE N3 N8 N32 [BASE]
set -u
sim=$1 n3=$2 n8=$3 n32=$4 base=${5:-0}
passed=0 failed=0
run() { # groups seeds from
	local out p f
	out=$("$sim" --groups "$1" --seeds "$2" --from "$3" 2>&1)
	printf '%s\n' "$out" | grep -v '^[0-9]* passed, [0-9]* failed$'
	p=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
	f=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
	if [[ -z $p || -z $f ]]; then
		echo "FAIL simulate --groups $1 --seeds $2 --from $3: no summary"
		failed=$((failed + 1))
		return
	fi
	passed=$((passed + p))
	failed=$((failed + f))
}
[[ $n3 -gt 0 ]] && run 3 "$n3" $((base + 200001))
[[ $n8 -gt 0 ]] && run 8 "$n8" $((base + 300001))
[[ $n32 -gt 0 ]] && run 32 "$n32" $((base + 400001))
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
