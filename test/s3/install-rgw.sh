#!/usr/bin/env bash
# install-rgw.sh — install what test/s3/rgw-start.sh needs (Debian packages), only if missing.
# Silent when everything is there; otherwise one line on stderr saying what it installed.
# WITH_MGR=1 also installs ceph-mgr (rgw-start.sh only starts a manager when asked: radosgw does not need one).
set -euo pipefail
# ceph-authtool, monmaptool and ceph come with ceph-common
mgr=
[ "${WITH_MGR:-0}" = 1 ] && mgr=ceph-mgr:ceph-mgr
exec bash "$(dirname "$0")/apt-ensure.sh" install-rgw radosgw:radosgw radosgw-admin:radosgw ceph-mon:ceph-mon ceph-osd:ceph-osd \
  ceph:ceph-common ceph-authtool:ceph-common monmaptool:ceph-common curl:curl $mgr
