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
here=$(dirname "$0")
# Either FUSE's v2 or v3 helper unmounts a FUSE file system; v3 is installed only when neither is there.
fuse=fusermount3:fuse3
command -v fusermount >/dev/null 2>&1 && fuse=
exec bash "$here/apt-ensure.sh" install-fs-tools mke2fs:e2fsprogs dumpe2fs:e2fsprogs mkfs.xfs:xfsprogs xfs_io:xfsprogs mkfs.vfat:dosfstools mcopy:mtools fusefat:fusefat mkntfs:ntfs-3g ntfs-3g:ntfs-3g mkfs.exfat:exfatprogs blkid:util-linux blockdev:util-linux lsblk:util-linux losetup:mount mount:mount umount:mount $fuse
