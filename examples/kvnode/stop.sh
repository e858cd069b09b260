#!/usr/bin/env bash
# stop.sh — stop the local cluster that run.sh started (make stop).
# SIGTERM each node listed in KVNODE_RUN_DIR (default run/kvnode), wait for
# a clean exit, SIGKILL what is still running after 10 s.  The data stays.
set -u

DIR=${KVNODE_RUN_DIR:-run/kvnode}

# A pid file counts only if that process is still a kvnode (pids get reused).
kvnode_pid() { # kvnode_pid PIDFILE -> prints the pid
	local pid
	[[ -f $1 ]] || return 1
	pid=$(<"$1")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q kvnode &&
		echo "$pid"
}

# Running, and not a zombie waiting for its (reparented) parent to reap it.
running() { # running PID
	local st
	st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[[ -n $st && $st != Z && $st != X ]]
}

stopped=0
for f in "$DIR"/node*.pid; do
	[[ -e $f ]] || continue
	if pid=$(kvnode_pid "$f"); then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 1 200); do
			running "$pid" || break
			sleep 0.05
		done
		if running "$pid"; then
			echo "kvnode stop: $(basename "$f" .pid) (pid $pid) did not exit; killing it"
			kill -KILL "$pid" 2>/dev/null
		fi
		stopped=$((stopped + 1))
	fi
	rm -f "$f"
done
if ((stopped)); then
	echo "kvnode: stopped $stopped node(s); data kept in $DIR (rm -rf $DIR to start afresh)"
else
	echo "kvnode: no running nodes found in $DIR"
fi
