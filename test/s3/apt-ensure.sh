#!/usr/bin/env bash
# apt-ensure.sh NAME BINARY:PACKAGE... — installs (Debian) the package of every BINARY that is not on the PATH.
# Silent when everything is there; otherwise one line on stderr saying what NAME installed. apt's own output is
# kept in a log shown only on failure. `apt-get update` runs only when the install fails without it.
set -euo pipefail
name=$1
shift
# mkfs.*, blkid and friends live in sbin, which a non-root PATH lacks
PATH=$PATH:/usr/sbin:/sbin

pkgs=()
for pair in "$@"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || pkgs+=("${pair#*:}")
done
[ ${#pkgs[@]} -eq 0 ] && exit 0
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)

if [ "$(id -u)" != 0 ]; then
  echo "$name: missing packages: ${pkgs[*]}; run as root or: sudo apt-get install -y --no-install-recommends ${pkgs[*]}" >&2
  exit 1
fi

log=$(mktemp "/tmp/$name.XXXXXX.log")
t0=$SECONDS
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"; }
if ! install >"$log" 2>&1 && ! { apt-get update && install; } >>"$log" 2>&1; then
  cat "$log" >&2
  echo "$name: apt-get failed installing: ${pkgs[*]} (log: $log)" >&2
  exit 1
fi
rm -f "$log"
echo "$name: installed ${pkgs[*]} in $((SECONDS - t0)) s" >&2
