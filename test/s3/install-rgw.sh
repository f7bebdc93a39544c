#!/usr/bin/env bash
# install-rgw.sh — install what test/s3/rgw-start.sh needs (Debian packages), only if missing.
# Silent when everything is there; otherwise one line on stderr saying what it installed.
# WITH_MGR=1 also installs ceph-mgr (rgw-start.sh only starts a manager when asked: radosgw does not need one).
set -euo pipefail

pkgs=()
# binary -> package that ships it (ceph-authtool, monmaptool and ceph come with ceph-common)
for pair in radosgw:radosgw radosgw-admin:radosgw ceph-mon:ceph-mon ceph-osd:ceph-osd \
            ceph:ceph-common ceph-authtool:ceph-common monmaptool:ceph-common curl:curl; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || pkgs+=("${pair#*:}")
done
if [ "${WITH_MGR:-0}" = 1 ] && ! command -v ceph-mgr >/dev/null 2>&1; then pkgs+=(ceph-mgr); fi
[ ${#pkgs[@]} -eq 0 ] && exit 0
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)

if [ "$(id -u)" != 0 ]; then
  echo "install-rgw: missing packages: ${pkgs[*]}; run as root or: sudo apt-get install -y --no-install-recommends ${pkgs[*]}" >&2
  exit 1
fi

# apt is noisy: keep its output in a log and show it only on failure
log=$(mktemp /tmp/install-rgw.XXXXXX.log)
t0=$SECONDS
if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-rgw: apt-get failed installing: ${pkgs[*]} (log: $log)" >&2
  exit 1
fi
rm -f "$log"
echo "install-rgw: installed ${pkgs[*]} in $((SECONDS - t0)) s" >&2
