import { Exit, StationError } from '../../errors.js';
import { makeLogger } from '../../log.js';
import type { Command } from '../command.js';

export const daemonCommand: Command = {
  name: 'daemon',
  summary: 'run the station: watch for drives, load each one, resume whatever was interrupted (systemd service)',
  usage: '',
  positionals: [],
  details:
    'Logs JSON lines on stdout (journald). SIGTERM or SIGINT: no new work, in-flight requests settled, exit 0.\n' +
    "Drives: a file system mounted at or under a mount root, a new directory directly under one, or (with\n" +
    'drives.autoMount) an unmounted partition, which the daemon mounts read-only itself.',
  async run(ctx) {
    const config = ctx.config();
    const log = makeLogger(config.log.level, 1);
    const [{ Daemon }, { SystemdNotifier }] = await Promise.all([import('../../daemon/daemon.js'), import('../../daemon/notify.js')]);
    const daemon = new Daemon(config, ctx.store(), log, new SystemdNotifier());
    const stopped = new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        log.info({ signal }, 'signal received');
        void daemon.stop().then(resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM')).once('SIGINT', () => stop('SIGINT'));
    });
    await daemon.start();
    await stopped;
    return Exit.ok;
  },
};

export const statusCommand: Command = {
  name: 'status',
  summary: 'what the running daemon is doing now, per drive (and which drives are safe to unplug)',
  usage: '',
  positionals: [],
  async run(ctx) {
    const [{ socketPath }, { fetchStatus }] = await Promise.all([import('../../daemon/daemon.js'), import('../../daemon/status-server.js')]);
    const path = socketPath(ctx.config());
    let status: StatusDoc;
    try {
      status = (await fetchStatus(path)) as StatusDoc;
    } catch (err) {
      throw new StationError('DaemonNotRunning', `no daemon answers on ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, Exit.refused);
    }
    ctx.print(status, () => statusLines(status));
  },
};

interface StatusDoc {
  pid: number;
  mountRoots: string[];
  drives: Array<{
    drive: string;
    stage: string;
    detail?: string;
    jobId?: string;
    safeToUnplug: boolean;
    progress?: { files: number; totalFiles: number; bytes: number; totalBytes: number; bytesPerSecond: number; etaSeconds?: number };
  }>;
}

function statusLines(s: StatusDoc): string[] {
  const lines = [`daemon ${s.pid}, watching ${s.mountRoots.join(', ')}`];
  if (s.drives.length === 0) lines.push('no drives attached');
  for (const d of s.drives) {
    const p = d.progress;
    let progress = '';
    if (p) {
      // An erase counts bytes written; a load, files and bytes uploaded.
      const done = d.stage === 'erasing' ? `${mib(p.bytes)}/${mib(p.totalBytes)} MiB written` : `${p.files}/${p.totalFiles} files, ${mib(p.bytes)}/${mib(p.totalBytes)} MiB`;
      progress = `: ${done}, ${mib(p.bytesPerSecond)} MiB/s${p.etaSeconds !== undefined ? `, ETA ${p.etaSeconds} s` : ''}`;
    }
    const unplug = d.safeToUnplug ? '' : ' (do not unplug)';
    lines.push(`${d.drive}  ${d.jobId ?? '-'}  ${d.stage}${progress}${d.detail ? ` - ${d.detail}` : ''}${unplug}`);
  }
  return lines;
}

function mib(n: number): string {
  return (n / 1024 / 1024).toFixed(1);
}
