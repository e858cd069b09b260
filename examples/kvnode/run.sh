#!/usr/bin/env bash
# run.sh — start a local three-node kvnode cluster on loopback (make run).
#
#   make run                    build kvnode, start nodes 1-3 (only those not
#                               running: a dead node is restarted, live ones
#                               are left alone), wait for a leader
#   make run GROUPS=N           the same with --groups N: the slots split
#                               over N Raft groups, leaders spread over
#                               the three nodes (same N for the life of
#                               the data: kvnode refuses another N)
#   make stop                   stop them (examples/kvnode/stop.sh)
#
# Environment (all optional):
#   KVNODE_RUN_DIR   data and logs (default: run/kvnode in the source tree)
#   KVNODE_PORT      first client port (default 7001: clients on 7001-7003)
#   KVNODE_RAFT_PORT first Raft port (default KVNODE_PORT + 10000)
#   KVNODE_STORAGE   wal (default) or mem
#   KVNODE_GROUPS    Raft groups (default 1; make passes GROUPS)
#   KVNODE_BIN       the kvnode binary (make passes it)
#
# `run.sh --check-tools` only checks that the build tools are installed.
set -u

DIR=${KVNODE_RUN_DIR:-run/kvnode}
PORT=${KVNODE_PORT:-7001}
RPORT=${KVNODE_RAFT_PORT:-$((PORT + 10000))}
STORAGE=${KVNODE_STORAGE:-wal}
NG=${KVNODE_GROUPS:-1}
BIN=${KVNODE_BIN:-build/examples/kvnode/kvnode}

need() { # need COMMAND PACKAGE WHY
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "kvnode run: '$1' is missing ($3)."
		echo "  install it with:  sudo apt-get install $2"
		return 1
	fi
}

if [[ ${1:-} == --check-tools ]]; then
	ok=0
	need make make "to build kvnode" || ok=1
	if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
		echo "kvnode run: no C compiler (cc/gcc) found (to build kvnode)."
		echo "  install it with:  sudo apt-get install build-essential"
		ok=1
	fi
	exit $ok
fi

if [[ ! -x $BIN ]]; then
	echo "kvnode run: $BIN is not built; run 'make run' (or 'make kvnode') from the source tree."
	exit 1
fi
if ! [[ $NG =~ ^[0-9]+$ ]] || ((NG < 1 || NG > 64)); then
	echo "kvnode run: GROUPS=$NG must be a number in 1..64"
	exit 1
fi
rport() { echo $((RPORT + $1 - 1)); } # node i's raft port
for v in "KVNODE_PORT=$PORT" "KVNODE_RAFT_PORT=$RPORT"; do
	if ! [[ ${v#*=} =~ ^[0-9]+$ ]] || ((${v#*=} < 1024 || ${v#*=} > 65000)); then
		echo "kvnode run: $v must be a number in 1024..65000"
		exit 1
	fi
done

# Is something listening on 127.0.0.1:$1?  (bash's /dev/tcp, no tools.)
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

alive() { # alive PIDFILE
	local pid
	[[ -f $1 ]] || return 1
	pid=$(<"$1")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q kvnode
}

mkdir -p "$DIR" || exit 1
# Nodes already running are left alone; only the others are started (so
# `make run` after a node died restarts just that one, with its data).
todo=()
for i in 1 2 3; do
	if alive "$DIR/node$i.pid"; then
		echo "kvnode run: node $i is already running (pid $(<"$DIR/node$i.pid"))."
	else
		todo+=("$i")
	fi
done
for i in "${todo[@]}"; do
	for p in $((PORT + i - 1)) $(rport "$i"); do
		if port_busy "$p"; then
			echo "kvnode run: port $p on 127.0.0.1 is in use."
			echo "  pick other ports:  make run KVNODE_PORT=7101   (or stop what uses $p)"
			exit 1
		fi
	done
done

peers=""
for i in 1 2 3; do
	peers+="${peers:+,}$i=127.0.0.1:$(rport "$i")/127.0.0.1:$((PORT + i - 1))"
done

for i in "${todo[@]}"; do
	rp=$(rport "$i")
	echo "kvnode run: starting node $i (client port $((PORT + i - 1)), raft port $rp$( ((NG > 1)) && echo ", $NG groups"))"
	nohup "$BIN" --id "$i" --data "$DIR/node$i" \
		--client "127.0.0.1:$((PORT + i - 1))" \
		--raft "127.0.0.1:$rp" --groups "$NG" \
		--peers "$peers" --storage "$STORAGE" \
		>>"$DIR/node$i.log" 2>&1 </dev/null &
	echo $! >"$DIR/node$i.pid"
done

# INFO raft over bash's /dev/tcp (an inline command; redis-cli not needed):
# read the bulk reply's length line, then that many bytes.
info_raft() { # info_raft PORT
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'INFO raft\r\n' >&3
		IFS= read -r -t 2 hdr <&3 || exit 1
		hdr=${hdr%$'\r'}
		[[ $hdr =~ ^\$[0-9]+$ ]] || exit 1
		IFS= read -r -t 2 -N "${hdr#\$}" body <&3
		printf '%s' "$body"
	) 2>/dev/null
}

leader=""
for _ in $(seq 1 150); do
	for i in 1 2 3; do
		# kill -0, not alive(): right after the fork the child's
		# command line is still the shell's, not kvnode's.
		if ! kill -0 "$(<"$DIR/node$i.pid")" 2>/dev/null; then
			echo "kvnode run: node $i exited at start; its log ($DIR/node$i.log) ends:"
			tail -n 5 "$DIR/node$i.log" | sed 's/^/  /'
			echo "  (the other nodes are left running; 'make stop' stops them)"
			exit 1
		fi
	done
	# Done when one node leads and every node knows it (a restarted
	# node must have heard from the leader before it can redirect).
	# With groups: every node knows a leader for every group.
	leader="" known=0 gknown=0
	for i in 1 2 3; do
		inf=$(info_raft $((PORT + i - 1)))
		grep -q '^role:leader' <<<"$inf" && leader=$i
		grep -q '^leader_id:[1-9]' <<<"$inf" && known=$((known + 1))
		gknown=$((gknown + $(grep -c '^group_[0-9]*:.*leader_id=[1-9]' <<<"$inf")))
	done
	[[ -n $leader && $known == 3 && $gknown == $((3 * NG)) ]] && break
	sleep 0.1
done
if [[ -z $leader ]]; then
	echo "kvnode run: no leader after 15 s; see the logs in $DIR/node*.log"
	exit 1
fi

cat <<EOF
kvnode: 3-node cluster running ($STORAGE storage$( ((NG > 1)) && echo ", $NG Raft groups")); node $leader $( ((NG > 1)) && echo "leads group 0" || echo "is the leader").
  data and logs:  $DIR/node{1,2,3}  $DIR/node{1,2,3}.log
  clients:        127.0.0.1:$PORT  127.0.0.1:$((PORT + 1))  127.0.0.1:$((PORT + 2))
  raft (peers):   127.0.0.1:$(rport 1)  127.0.0.1:$(rport 2)  127.0.0.1:$(rport 3)

Connect with redis-cli (-c follows the MOVED redirects to the leader):
  redis-cli -c -p $PORT
  redis-cli -c -p $PORT SET greeting hello
  redis-cli -c -p $((PORT + 1)) GET greeting
  redis-cli -p $PORT INFO raft
  redis-cli -p $PORT CLUSTER NODES
$(if ((NG > 1)); then echo "  redis-benchmark --cluster -p $PORT -t set,get,incr -q      (every group's leader)"; else echo "  redis-benchmark -p $((PORT + leader - 1)) -t set,get,incr -q      (against the leader)"; fi)
  redis-cli --cluster check 127.0.0.1:$PORT
Stop it with:  make stop        (the data stays in $DIR; delete it to start afresh)
'make run' again restarts only the nodes that are down.
EOF
if ! command -v redis-cli >/dev/null 2>&1; then
	cat <<EOF

redis-cli is not installed (optional).  Install it with:
  sudo apt-get install redis-tools
or talk to a node without it:
  exec 3<>/dev/tcp/127.0.0.1/$PORT; printf 'PING\r\n' >&3; head -c 7 <&3
EOF
fi
