#!/usr/bin/env bash
# install-systemd-tools.sh — install what test/systemd.test.ts and test/notify.test.ts need (Debian packages),
# only if missing. Silent when everything is there; otherwise one line on stderr saying what it installed.
#   systemd  systemd-analyze (verify, security --offline), systemd-notify (what src/daemon/notify.ts runs)
#   python3  the tests' stand-in for PID 1's notification socket (Node has no AF_UNIX datagram sockets)
# Installing systemd in a container without systemd as PID 1 starts nothing: its postinst calls systemctl only
# when /run/systemd/system exists. It does enable a few units (symlinks), create /etc/machine-id, add system
# users (systemd-journal, systemd-network) and run systemd-tmpfiles --create. --no-install-recommends keeps out
# dbus, systemd-timesyncd and the like.
set -euo pipefail

pkgs=()
# binary -> package that ships it
for pair in systemd-analyze:systemd systemd-notify:systemd python3:python3; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || pkgs+=("${pair#*:}")
done
[ ${#pkgs[@]} -eq 0 ] && exit 0
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)

if [ "$(id -u)" != 0 ]; then
  echo "install-systemd-tools: missing packages: ${pkgs[*]}; run as root or: sudo apt-get install -y --no-install-recommends ${pkgs[*]}" >&2
  exit 1
fi

# apt is noisy: keep its output in a log and show it only on failure. `apt-get update` only when the install
# fails without it (package lists missing or stale).
log=$(mktemp /tmp/install-systemd-tools.XXXXXX.log)
t0=$SECONDS
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"; }
if ! install >"$log" 2>&1 && ! { apt-get update && install; } >>"$log" 2>&1; then
  cat "$log" >&2
  echo "install-systemd-tools: apt-get failed installing: ${pkgs[*]} (log: $log)" >&2
  exit 1
fi
rm -f "$log"
echo "install-systemd-tools: installed ${pkgs[*]} in $((SECONDS - t0)) s" >&2
