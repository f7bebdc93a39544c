import { list as listDrives } from 'drivelist';
import { lsblk } from './blockdev.js';

export interface Partition {
  /** `/dev/sdb1`, `/dev/loop3` */
  device: string;
  mounted: boolean;
  removable: boolean;
  /** a loop device backed by a file (how tests and images attach drives) */
  loop: boolean;
}

interface LsblkDevice {
  name: string;
  path: string;
  type: string;
  mountpoint: string | null;
  rm: boolean | string;
  pkname: string | null;
}

const SYSTEM_MOUNTS = new Set(['/', '/boot', '/boot/efi', '/usr', '/var', '/home', '[SWAP]']);

/**
 * The block devices that could hold a customer's file system: partitions, and disks or loop devices without
 * partitions. Never a system disk: drivelist's `isSystem`, or any disk with a partition mounted where the
 * system lives. lsblk covers what drivelist skips (loop devices).
 */
export async function listPartitions(): Promise<Partition[]> {
  const [devices, drives] = await Promise.all([lsblk<LsblkDevice>('NAME,PATH,TYPE,MOUNTPOINT,RM,PKNAME'), listDrives().catch(() => [])]);
  const systemDisks = new Set(drives.filter((d) => d.isSystem).map((d) => d.device));
  for (const d of devices) {
    if (d.mountpoint && SYSTEM_MOUNTS.has(d.mountpoint)) systemDisks.add(d.pkname ? `/dev/${d.pkname}` : d.path);
  }
  const parents = new Set(devices.map((d) => d.pkname).filter((n): n is string => n !== null));
  return devices
    .filter((d) => (d.type === 'part' || d.type === 'disk' || d.type === 'loop') && !parents.has(d.name))
    .filter((d) => !systemDisks.has(d.path) && !(d.pkname && systemDisks.has(`/dev/${d.pkname}`)))
    .filter((d) => !d.name.startsWith('zram') && !d.name.startsWith('ram'))
    .map((d) => ({
      device: d.path,
      mounted: d.mountpoint !== null,
      removable: d.rm === true || d.rm === '1',
      loop: d.type === 'loop',
    }));
}
