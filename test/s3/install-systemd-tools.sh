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
exec bash "$(dirname "$0")/apt-ensure.sh" install-systemd-tools systemd-analyze:systemd systemd-notify:systemd python3:python3
