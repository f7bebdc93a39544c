export const MAX_PARTS = 10_000;
const MiB = 1024 * 1024;

/** The part size for a file: at least the configured one, grown (in whole MiB) so no file needs more than 10,000 parts. */
export function partSizeFor(fileSize: number, minPartSize: number): number {
  const needed = Math.ceil(fileSize / MAX_PARTS / MiB) * MiB;
  return Math.max(minPartSize, needed);
}
