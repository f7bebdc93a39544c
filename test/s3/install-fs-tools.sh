#!/usr/bin/env bash
# install-fs-tools.sh — install what test/mount.test.ts needs to make and mount file-system images (Debian
# packages), only if missing. Silent when everything is there; otherwise one line on stderr saying what it installed.
#   e2fsprogs  mke2fs, dumpe2fs            xfsprogs    mkfs.xfs, xfs_io (shutdown: a dirty journal)
#   dosfstools mkfs.vfat                   mtools      mcopy, mmd (fill a FAT image without mounting it)
#   fusefat    FAT through FUSE (this kernel has no vfat)
#   ntfs-3g    mkntfs, ntfs-3g (FUSE); it pulls in fuse3 (fusermount3), which also satisfies fusefat
#   exfatprogs mkfs.exfat: only to show that an exFAT drive is refused
#   util-linux blkid, blockdev, lsblk      mount       mount, umount, losetup
set -euo pipefail
# mkfs.*, blkid and friends live in sbin, which a non-root PATH lacks
PATH=$PATH:/usr/sbin:/sbin

pkgs=()
# binary -> package that ships it
for pair in mke2fs:e2fsprogs dumpe2fs:e2fsprogs mkfs.xfs:xfsprogs xfs_io:xfsprogs mkfs.vfat:dosfstools mcopy:mtools \
            fusefat:fusefat mkntfs:ntfs-3g ntfs-3g:ntfs-3g mkfs.exfat:exfatprogs \
            blkid:util-linux blockdev:util-linux lsblk:util-linux losetup:mount mount:mount umount:mount; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || pkgs+=("${pair#*:}")
done
# Either FUSE's v2 or v3 helper unmounts a FUSE file system; install v3 only when neither is there.
command -v fusermount >/dev/null 2>&1 || command -v fusermount3 >/dev/null 2>&1 || pkgs+=(fuse3)
[ ${#pkgs[@]} -eq 0 ] && exit 0
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)

if [ "$(id -u)" != 0 ]; then
  echo "install-fs-tools: missing packages: ${pkgs[*]}; run as root or: sudo apt-get install -y --no-install-recommends ${pkgs[*]}" >&2
  exit 1
fi

# apt is noisy: keep its output in a log and show it only on failure. `apt-get update` only when the package
# lists are missing or the install fails for lack of them.
log=$(mktemp /tmp/install-fs-tools.XXXXXX.log)
t0=$SECONDS
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"; }
if ! install >"$log" 2>&1 && ! { apt-get update && install; } >>"$log" 2>&1; then
  cat "$log" >&2
  echo "install-fs-tools: apt-get failed installing: ${pkgs[*]} (log: $log)" >&2
  exit 1
fi
rm -f "$log"
echo "install-fs-tools: installed ${pkgs[*]} in $((SECONDS - t0)) s" >&2
