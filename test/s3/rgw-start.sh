#!/usr/bin/env bash
# rgw-start.sh DIR PORT — start a throw-away single-node Ceph cluster (mon + osd + radosgw) on
# 127.0.0.1 with everything under DIR, create an S3 user, and print on stdout:
#   S3_ENDPOINT=http://127.0.0.1:PORT  AWS_ACCESS_KEY_ID=…  AWS_SECRET_ACCESS_KEY=…  AWS_REGION=us-east-1
# Logs go to stderr; daemon logs to DIR/log. Stop with rgw-stop.sh DIR [--wipe]. Needs root and
# the packages from install-rgw.sh. DIR must be absent, empty, or hold an earlier cluster of ours
# (which is then stopped and wiped first).
#
# Env: CEPH_OBJECTSTORE=memstore (default; data in RAM, ~1.6 GB per GiB stored, capped by MEMSTORE_BYTES)
#        or bluestore (sparse file DIR/osd.0.block of BLUESTORE_BYTES; bounded RAM, better for benchmarks)
#      MON_PORT (default PORT+1)  WITH_MGR=1 to also start ceph-mgr (radosgw does not need it)
#      S3_ACCESS_KEY / S3_SECRET_KEY (fixed test defaults below)
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 DIR PORT" >&2; exit 2; }
PORT=$2
MON_PORT=${MON_PORT:-$((PORT + 1))}
STORE=${CEPH_OBJECTSTORE:-memstore}
WITH_MGR=${WITH_MGR:-0}
ACCESS_KEY=${S3_ACCESS_KEY:-STATIONTESTACCESSKEY}
SECRET_KEY=${S3_SECRET_KEY:-stationtestsecretkey0000000000000000000000}
HERE=$(cd "$(dirname "$0")" && pwd)
case $STORE in memstore|bluestore) ;; *) echo "CEPH_OBJECTSTORE must be memstore or bluestore" >&2; exit 2 ;; esac

mkdir -p "$1"
DIR=$(cd "$1" && pwd)
MARK=$DIR/.rgw-cluster          # says "this DIR is ours": rgw-stop.sh --wipe only deletes such a DIR
export CEPH_CONF=$DIR/ceph.conf # for the ceph / radosgw-admin CLIs below
T0=$(date +%s%N)
log() { printf '[rgw-start +%d ms] %s\n' $((($(date +%s%N) - T0) / 1000000)) "$*" >&2; }

if [ -f "$MARK" ]; then
  log "stopping and wiping the earlier cluster in $DIR"
  "$HERE/rgw-stop.sh" "$DIR" --wipe
  mkdir -p "$DIR"
elif [ -n "$(ls -A "$DIR")" ]; then
  echo "rgw-start: refusing non-empty $DIR (not made by rgw-start.sh)" >&2; exit 1
fi
for p in "$PORT" "$MON_PORT"; do # a taken port otherwise shows up as a hang or a cryptic daemon log
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "rgw-start: port $p is in use" >&2; exit 1; fi
done

# From here on a failure stops whatever was started (the data stays for the logs).
ok=0
trap '[ $ok = 1 ] || { echo "rgw-start: failed; logs in $DIR/log" >&2; "$HERE/rgw-stop.sh" "$DIR" >/dev/null 2>&1; }' EXIT

mkdir -p "$DIR"/{run,log,crash,pids,rgw,osd.0,mgr.x}
touch "$MARK"
FSID=$(cat /proc/sys/kernel/random/uuid)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)

cat >"$CEPH_CONF" <<CONF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
crash dir = $DIR/crash
log to stderr = false
err to stderr = false
# else the mon appends to /var/log/ceph/ceph.log and ceph.audit.log, outside DIR
mon cluster log to file = false
# one OSD: pools of size 1 with few PGs
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon max pg per osd = 1000
# the mon shuts itself down below 5 % free disk by default: tests run on full laptops too
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $DIR/\$name
# each map change (osd boot, every pool radosgw creates) otherwise waits for the 1 s default:
# radosgw's first start would take ~10 s instead of ~1 s
paxos propose interval = 0.05
paxos min wait = 0.01

[mgr]
mgr data = $DIR/\$name

[osd]
osd data = $DIR/\$name
osd objectstore = $STORE
memstore device bytes = ${MEMSTORE_BYTES:-8589934592}
bluestore block path = $DIR/\$name.block
bluestore block create = true
bluestore block size = ${BLUESTORE_BYTES:-21474836480}
bluestore fsck on mount = false
osd memory target = 1073741824

[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:$PORT
# radosgw forces ms_mon_client_mode=secure by default, which cannot be negotiated with
# auth=none: it then hangs at start (get_initial_auth_request returned -13)
ms mon client mode = crc
rgw data = $DIR/rgw
rgw thread pool size = 128
rgw enable usage log = false
CONF

# Ceph daemons daemonize and then write their pid file (radosgw only after forking): wait for it
# and record the PID, so rgw-stop.sh kills exactly our processes.
wait_pid() { # $1 = ceph name (run/$1.pid), $2 = name under pids/
  local i
  for i in $(seq 100); do [ -s "$DIR/run/$1.pid" ] && break; sleep 0.05; done
  [ -s "$DIR/run/$1.pid" ] || { echo "rgw-start: $1 wrote no pid file" >&2; exit 1; }
  cp "$DIR/run/$1.pid" "$DIR/pids/$2"
}
alive() { # recorded daemon is running and not a zombie (a zombie still answers kill -0)
  [ -s "$DIR/pids/$1" ] && grep -qE '^(ceph-|radosgw)' "/proc/$(cat "$DIR/pids/$1")/cmdline" 2>/dev/null
}
s3_up() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$PORT/")" = 200 ]; }

# mon (mkfs wants a mon. key even with auth=none)
ceph-authtool "$DIR/keyring" --create-keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring"
ceph-mon -i a
wait_pid mon.a mon
log "mon up on port $MON_PORT"

if [ "$WITH_MGR" = 1 ]; then
  ceph-mgr -i x
  wait_pid mgr.x mgr
  log "mgr started"
fi

# osd: no need to wait for it to be 'up': radosgw's first I/O blocks until the PGs are active
[ "$(ceph osd new "$OSD_UUID")" = 0 ] || { echo "rgw-start: expected osd id 0" >&2; exit 1; }
ceph-osd -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$DIR/log/osd-mkfs.out" 2>&1
ceph-osd -i 0
wait_pid osd.0 osd
log "osd started ($STORE)"

radosgw -n client.rgw.gw
wait_pid client.rgw.gw rgw
for _ in $(seq 300); do # ≤ 60 s: the first start creates radosgw's pools
  s3_up && break
  alive rgw || { echo "rgw-start: radosgw died, see $DIR/log/client.rgw.gw.log" >&2; exit 1; }
  sleep 0.1
done
s3_up || { echo "rgw-start: radosgw does not answer on port $PORT" >&2; exit 1; }
log "radosgw answering on port $PORT"

radosgw-admin user create --uid=station-test --display-name=station-test \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$DIR/log/user-create.json"
ok=1
log "S3 user created; ready"
cat <<OUT
S3_ENDPOINT=http://127.0.0.1:$PORT
AWS_ACCESS_KEY_ID=$ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$SECRET_KEY
AWS_REGION=us-east-1
OUT
