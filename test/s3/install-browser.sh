#!/usr/bin/env bash
# install-browser.sh — install what test/screen.test.ts drives the station screen with (Debian package), only if
# missing. Silent when it is there; otherwise one line on stderr saying what it installed.
#   chromium   /usr/bin/chromium, run headless by playwright-core (a browser build downloaded by playwright
#              itself cannot be fetched here, and would not be Debian's security-updated one anyway)
set -euo pipefail
exec bash "$(dirname "$0")/apt-ensure.sh" install-browser chromium:chromium
