import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, STATION } from './station.js';
import { stationEnv, type LoadSetup } from './load.js';

export interface LogEvent {
  msg: string;
  level: number;
  jobId?: string;
  stage?: string;
  drive?: string;
  [k: string]: unknown;
}

/** `station daemon` as a subprocess, its JSON log lines collected. */
export class DaemonProcess {
  readonly events: LogEvent[] = [];
  readonly child: ChildProcess;
  stderr = '';
  private exited?: Promise<number | null>;
  /** a signal to send the moment a log event matches (see `killWhen`) */
  private trigger?: { match: (e: LogEvent) => boolean; signal: NodeJS.Signals };

  constructor(setup: LoadSetup, extraEnv: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [STATION, 'daemon'], { env: stationEnv(setup, extraEnv), cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let event: LogEvent;
        try {
          event = JSON.parse(line) as LogEvent;
        } catch {
          event = { msg: `not JSON: ${line}`, level: 60 };
        }
        this.events.push(event);
        if (this.trigger?.match(event)) {
          this.child.kill(this.trigger.signal);
          this.trigger = undefined;
        }
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /** Waits until a log event matches; fails with the log so far after `ms`. */
  async waitFor(match: (e: LogEvent) => boolean, what: string, ms = 60_000): Promise<LogEvent> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const found = this.events.find(match);
      if (found) return found;
      if (this.child.exitCode !== null) break;
      await sleep(50);
    }
    throw new Error(`daemon: no "${what}" within ${ms} ms (exit ${this.child.exitCode}); ${this.log()}`);
  }

  /** Sends the signal; the exit code. Fails with the log if the daemon has not exited after `ms` (a SIGTERM waits
   * up to 60 s for in-flight requests). */
  kill(signal: NodeJS.Signals, ms = 90_000): Promise<number | null> {
    this.child.kill(signal);
    return this.exit(ms);
  }

  /** Sends the signal from the handler of the output, as soon as a log event matches: no polling delay. */
  killWhen(match: (e: LogEvent) => boolean, signal: NodeJS.Signals): void {
    this.trigger = { match, signal };
  }

  /** The exit code; fails with the log if the daemon has not exited after `ms`. */
  async exit(ms = 90_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`daemon: still running ${ms} ms later; ${this.log()}`)), ms);
    });
    try {
      return await Promise.race([this.exited!, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The log so far and stderr, for a failure's message. */
  private log(): string {
    return `log:\n${this.events.map((e) => JSON.stringify(e)).join('\n')}\n${this.stderr}`;
  }
}

export const stageIs = (jobId: string, stage: string) => (e: LogEvent) => e.jobId === jobId && e.stage === stage;

/** Config lines for a daemon that watches one mount root, the folder `useMediaRoot` makes; checked every 200 ms. */
export const watchMedia = (autoMount: boolean): string =>
  `drives:\n  mountRoots: [/MEDIA-PLACEHOLDER]\n  pollIntervalMs: 200\n  autoMount: ${autoMount}\n`;

/** Makes `media/` in the station's temp folder and points the `watchMedia` config at it; returns its path. */
export function useMediaRoot(setup: LoadSetup): string {
  const media = join(setup.dir, 'media');
  mkdirSync(media);
  writeFileSync(setup.configFile, readFileSync(setup.configFile, 'utf8').replace('/MEDIA-PLACEHOLDER', media));
  return media;
}

/** `station daemon` for this station, killed at the end of the test if it still runs. */
export function startDaemon(t: { after: (fn: () => Promise<unknown>) => void }, setup: LoadSetup, extraEnv: Record<string, string> = {}): DaemonProcess {
  const d = new DaemonProcess(setup, extraEnv);
  t.after(async () => {
    if (d.child.exitCode === null) await d.kill('SIGKILL');
  });
  return d;
}
