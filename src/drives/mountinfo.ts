import { readFile } from 'node:fs/promises';

export interface MountEntry {
  mountpoint: string;
  fsType: string;
  source: string;
}

/** Octal escapes in mountinfo fields (`\040` for a space). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The mounts the kernel shows this process (`/proc/self/mountinfo`). */
export async function readMounts(file = '/proc/self/mountinfo'): Promise<MountEntry[]> {
  const text = await readFile(file, 'utf8');
  const mounts: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const before = line.slice(0, sep).split(' ');
    const after = line.slice(sep + 3).split(' ');
    if (before.length < 5 || after.length < 2) continue;
    mounts.push({ mountpoint: unescape(before[4]!), fsType: after[0]!, source: unescape(after[1]!) });
  }
  return mounts;
}

/** `path` is `root` or inside it. */
export function isUnder(path: string, root: string): boolean {
  const r = root.endsWith('/') ? root.slice(0, -1) : root;
  return path === r || path.startsWith(`${r}/`);
}
