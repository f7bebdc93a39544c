#!/usr/bin/env bash
# with-rgw.sh CMD ARGS... — run CMD against a fresh radosgw: install the packages if missing, start a
# cluster in a new temp dir on free ports, export STATION_TEST_RGW_ENDPOINT / _ACCESS_KEY / _SECRET_KEY
# (test/support/rgw.ts then reuses this server instead of starting its own), run CMD, and always
# stop and wipe the cluster afterwards. Exits with CMD's exit code.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
S3=$(cd "$(dirname "$0")/../s3" && pwd)

bash "$S3/install-rgw.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/station-rgw.XXXXXX")
cleanup() {
  local rc=$?
  bash "$S3/rgw-stop.sh" "$TMP/cluster" --wipe || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
# the daemons are detached from us: turn signals into a normal exit so the EXIT trap stops them
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM

free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# radosgw on PORT, its monitor on PORT+1. Checking then binding can race with another process,
# so a failed start is tried once more on other ports (rgw-start.sh wipes its own leftovers).
out=
for attempt in 1 2; do
  for _ in $(seq 100); do
    PORT=$((20000 + RANDOM % 40000))
    free "$PORT" && free $((PORT + 1)) && break
  done
  if out=$(bash "$S3/rgw-start.sh" "$TMP/cluster" "$PORT"); then break; fi
  out=
done
[ -n "$out" ] || { echo "with-rgw: could not start radosgw" >&2; exit 1; }

val() { sed -n "s/^$1=//p" <<<"$out"; }
export STATION_TEST_RGW_ENDPOINT; STATION_TEST_RGW_ENDPOINT=$(val S3_ENDPOINT)
export STATION_TEST_RGW_ACCESS_KEY; STATION_TEST_RGW_ACCESS_KEY=$(val AWS_ACCESS_KEY_ID)
export STATION_TEST_RGW_SECRET_KEY; STATION_TEST_RGW_SECRET_KEY=$(val AWS_SECRET_ACCESS_KEY)

set +e
"$@"
exit $?
