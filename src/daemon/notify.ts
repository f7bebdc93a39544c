import { spawn } from 'node:child_process';

/**
 * sd_notify(3) for the daemon, without a native addon: Node has no AF_UNIX datagram sockets, so each notification
 * is sent by running `systemd-notify` (Debian's `systemd` package; options as of systemd 252).
 *
 * Attribution. systemd accepts a notification only if it can tell which unit sent it. A message from a child
 * process is attributed by the sender's cgroup, looked up when PID 1 reads the datagram; a short-lived sender may
 * be gone by then and the message is dropped (systemd-notify(1), sd_notify(3)). Two things prevent that here:
 * - `--pid=<our PID>`: systemd-notify sends the datagram with SCM_CREDENTIALS naming our PID, the unit's main
 *   process, which PID 1 tracks itself, so the message is attributed even after systemd-notify exits. The kernel
 *   allows a forged sender PID only with CAP_SYS_ADMIN, which the daemon has (it mounts drives); without it
 *   systemd-notify falls back to its own PID. It also adds `MAINPID=<our PID>`, a no-op when we are the main PID.
 * - no `--no-block`: systemd-notify then sends `BARRIER=1` with a pipe and waits (up to 5 s) until PID 1 has read
 *   everything before it, so even the fallback sender is alive when its message is read. `NotifyAccess=all` in
 *   the unit lets PID 1 accept that fallback (a process of the unit's cgroup that is not the main one).
 * systemd 252 has no `--stopping`/`--reloading`: those are sent as `STOPPING=1` etc. (an unknown option makes
 * systemd-notify fail and report `ERRNO=22` to the service manager).
 *
 * Notifications never throw: each call resolves to a NotifyResult, `error` set when systemd-notify could not be
 * run or failed (the daemon may log it; it must not die of it). At most one systemd-notify runs at a time; what
 * is asked meanwhile is merged into the next one (the latest status text wins, flags accumulate).
 */

export interface NotifyResult {
  /** a datagram went to $NOTIFY_SOCKET */
  sent: boolean;
  /** why not, when something failed (not set when notifications are simply off) */
  error?: string;
}

export interface SystemdNotifierOptions {
  /** the program to run; default `systemd-notify`, looked up in the env's PATH */
  command?: string;
  /** a systemd-notify still running after this is killed; default 10 s (its own wait for PID 1 is 5 s) */
  timeoutMs?: number;
}

interface Batch {
  ready: boolean;
  status?: string;
  vars: Map<string, string>;
  waiters: Array<(result: NotifyResult) => void>;
}

/** PID 1 reads notification datagrams into a 4 KiB buffer and drops longer ones whole. */
const MAX_STATUS_BYTES = 1024;
const VAR_NAME = /^[A-Z][A-Z0-9_]*$/;

export class SystemdNotifier {
  /** $NOTIFY_SOCKET is set: we run under systemd with Type=notify (or something speaking its protocol) */
  readonly enabled: boolean;
  private readonly env: NodeJS.ProcessEnv;
  private readonly command: string;
  private readonly timeoutMs: number;
  private pending?: Batch;
  private running = false;

  /**
   * `env` is copied: the daemon may delete NOTIFY_SOCKET from process.env afterwards so that the programs it runs
   * (mount helpers) do not inherit it; systemd-notify still gets it from the copy.
   */
  constructor(env: NodeJS.ProcessEnv = process.env, options: SystemdNotifierOptions = {}) {
    this.env = { ...env };
    this.enabled = Boolean(env.NOTIFY_SOCKET);
    this.command = options.command ?? 'systemd-notify';
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Start-up finished (`READY=1`), with an optional status line. */
  ready(status?: string): Promise<NotifyResult> {
    return this.enqueue((b) => {
      b.ready = true;
      if (status !== undefined) b.status = status;
    });
  }

  /** The status line `systemctl status` shows (`STATUS=`). */
  status(text: string): Promise<NotifyResult> {
    return this.enqueue((b) => {
      b.status = text;
    });
  }

  /** Feeds the watchdog (`WATCHDOG=1`). */
  watchdog(): Promise<NotifyResult> {
    return this.notify({ WATCHDOG: '1' });
  }

  /** Shutting down (`STOPPING=1`). */
  stopping(): Promise<NotifyResult> {
    return this.notify({ STOPPING: '1' });
  }

  /** Asks for more time to start or stop (`EXTEND_TIMEOUT_USEC=`): the current timeout becomes `ms` from now. */
  extendTimeout(ms: number): Promise<NotifyResult> {
    return this.notify({ EXTEND_TIMEOUT_USEC: String(Math.max(0, Math.round(ms * 1000))) });
  }

  /**
   * Any `VAR=VALUE` fields (names in upper case; values on one line). READY and STATUS have their own methods;
   * fields given here are sent as written.
   */
  notify(fields: Record<string, string>): Promise<NotifyResult> {
    for (const [name, value] of Object.entries(fields)) {
      if (!VAR_NAME.test(name) || /[\n\0]/.test(value)) {
        return Promise.resolve({ sent: false, error: `not a notification field: ${JSON.stringify(`${name}=${value}`)}` });
      }
    }
    return this.enqueue((b) => {
      for (const [name, value] of Object.entries(fields)) b.vars.set(name, value);
    });
  }

  /**
   * How often to call watchdog(): half of `WatchdogSec=` (systemd's WATCHDOG_USEC), as sd_watchdog_enabled(3)
   * advises; undefined when there is no watchdog for this process (WATCHDOG_PID names another) or no socket.
   */
  watchdogIntervalMs(): number | undefined {
    if (!this.enabled) return undefined;
    const usec = this.env.WATCHDOG_USEC;
    if (usec === undefined || !/^\d+$/.test(usec) || Number(usec) <= 0) return undefined;
    const pid = this.env.WATCHDOG_PID;
    if (pid !== undefined && pid !== '' && pid !== String(process.pid)) return undefined;
    return Math.max(1, Math.floor(Number(usec) / 2000));
  }

  private enqueue(update: (batch: Batch) => void): Promise<NotifyResult> {
    if (!this.enabled) return Promise.resolve({ sent: false });
    const batch: Batch = (this.pending ??= { ready: false, vars: new Map<string, string>(), waiters: [] });
    update(batch);
    const result = new Promise<NotifyResult>((resolve) => batch.waiters.push(resolve));
    this.drain();
    return result;
  }

  private drain(): void {
    if (this.running || !this.pending) return;
    const batch = this.pending;
    this.pending = undefined;
    this.running = true;
    void this.send(batch).then((result) => {
      this.running = false;
      for (const resolve of batch.waiters) resolve(result);
      this.drain();
    });
  }

  /** Runs systemd-notify once for a batch; never rejects. */
  private send(batch: Batch): Promise<NotifyResult> {
    const args = [`--pid=${process.pid}`];
    if (batch.ready) args.push('--ready');
    if (batch.status !== undefined) args.push(`--status=${oneLine(batch.status)}`);
    if (batch.vars.size > 0) args.push('--', ...[...batch.vars].map(([name, value]) => `${name}=${value}`));
    return new Promise<NotifyResult>((resolve) => {
      let done = false;
      let stderr = '';
      const finish = (result: NotifyResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(result);
      };
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(this.command, args, { env: this.env, stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (err) {
        resolve({ sent: false, error: `${this.command}: ${(err as Error).message}` });
        return;
      }
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish({ sent: false, error: `${this.command} did not finish within ${this.timeoutMs} ms` });
      }, this.timeoutMs);
      timer.unref();
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
        if (stderr.length < 1000) stderr += chunk;
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'ENOENT' ? 'not found (install the Debian package systemd)' : err.message;
        finish({ sent: false, error: `${this.command}: ${why}` });
      });
      child.on('close', (code, signal) => {
        if (code === 0) finish({ sent: true });
        else finish({ sent: false, error: `${this.command} failed (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n')[0] ?? ''}`.trim() });
      });
    });
  }
}

/** A status must be one line (fields are newline-separated) and short enough for PID 1's buffer. */
function oneLine(text: string): string {
  const s = text.replace(/[\r\n\0]+/g, ' ');
  const bytes = Buffer.from(s);
  if (bytes.length <= MAX_STATUS_BYTES) return s;
  // cut on bytes, then drop a character the cut split (it decodes as U+FFFD)
  return `${bytes.subarray(0, MAX_STATUS_BYTES - 3).toString('utf8').replace(/\uFFFD$/, '')}...`;
}
