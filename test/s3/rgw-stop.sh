#!/usr/bin/env bash
# rgw-stop.sh DIR [--wipe] — stop the cluster rgw-start.sh DIR started, by the PIDs it recorded in
# DIR/pids (each only if it is still a ceph/radosgw process: PIDs get reused).
#   default: SIGTERM, ≤ 5 s per group, then SIGKILL (a memstore OSD dumps its RAM to DIR on a clean stop)
#   --wipe:  SIGKILL at once (the data is thrown away anyway), then delete DIR
set -euo pipefail

[ $# -ge 1 ] && { [ $# -eq 1 ] || [ "$2" = --wipe ]; } || { echo "usage: $0 DIR [--wipe]" >&2; exit 2; }
DIR=$1
SIG=TERM; [ "${2:-}" = --wipe ] && SIG=KILL

ours() { # $1 = pid; /proc/PID/cmdline is empty for a zombie, which would still answer kill -0
  grep -qE '^(ceph-|radosgw)' "/proc/$1/cmdline" 2>/dev/null
}
stop() { # signal every named daemon, wait ≤ 5 s, SIGKILL what is left
  local name pid pids=() left i
  for name in "$@"; do
    [ -s "$DIR/pids/$name" ] || continue
    pid=$(cat "$DIR/pids/$name")
    if ours "$pid" && kill -"$SIG" "$pid" 2>/dev/null; then pids+=("$pid"); fi
  done
  for i in $(seq 50); do
    left=()
    for pid in "${pids[@]}"; do if ours "$pid"; then left+=("$pid"); fi; done
    pids=("${left[@]}")
    [ ${#pids[@]} -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    echo "rgw-stop: pid $pid ignored SIG$SIG for 5 s: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  done
  for name in "$@"; do rm -f "$DIR/pids/$name"; done
}

if [ -d "$DIR/pids" ]; then
  stop rgw          # radosgw first: once the mon and osd are gone it ignores SIGTERM
  stop osd mgr mon
fi
# only ever delete a directory rgw-start.sh made
if [ "$SIG" = KILL ] && [ -f "$DIR/.rgw-cluster" ]; then rm -rf "$DIR"; fi
