/**
 * Progress accounting, apart from copying: the uploader reports bytes and finished files here; the terminal
 * line, the periodic log line, the summary (and the daemon's status) read from here.
 */
export class Progress {
  totalFiles = 0;
  totalBytes = 0;
  /** false until the count of the device is done (it runs beside the uploads) */
  totalsKnown = false;
  doneFiles = 0;
  /** bytes of finished files plus bytes of parts acknowledged */
  doneBytes = 0;
  readonly byCode = new Map<string, number>();
  /** the file whose row came last, as the import log shows it (set by the loader); the station screen shows it only when told to */
  lastFile?: string;
  readonly startedAt = Date.now();
  private samples: Array<{ at: number; bytes: number }> = [];

  setTotals(files: number, bytes: number): void {
    this.totalFiles = files;
    this.totalBytes = bytes;
    this.totalsKnown = true;
  }

  addBytes(n: number): void {
    this.doneBytes += n;
  }

  fileDone(status: number, code: string): void {
    this.doneFiles++;
    const k = `${status} ${code}`;
    this.byCode.set(k, (this.byCode.get(k) ?? 0) + 1);
  }

  /** Bytes per second over the last ~10 seconds (the whole load until then). */
  rate(now = Date.now()): number {
    this.samples.push({ at: now, bytes: this.doneBytes });
    while (this.samples.length > 2 && now - this.samples[0]!.at > 10_000) this.samples.shift();
    const first = this.samples[0]!;
    const span = (now - first.at) / 1000;
    return span > 0.5 ? (this.doneBytes - first.bytes) / span : this.doneBytes / Math.max((now - this.startedAt) / 1000, 0.001);
  }

  snapshot(now = Date.now()) {
    const rate = this.rate(now);
    const left = Math.max(this.totalBytes - this.doneBytes, 0);
    return {
      files: this.doneFiles,
      totalFiles: this.totalFiles,
      bytes: this.doneBytes,
      totalBytes: this.totalBytes,
      bytesPerSecond: Math.round(rate),
      etaSeconds: rate > 0 && this.totalsKnown ? Math.round(left / rate) : undefined,
      elapsedSeconds: (now - this.startedAt) / 1000,
    };
  }

  /** `1,204/3,202 files  412.3/502.9 MiB  118.2 MiB/s  ETA 0:01` */
  line(): string {
    const s = this.snapshot();
    const eta = s.etaSeconds === undefined ? '--:--' : duration(s.etaSeconds);
    const [files, bytes] = this.totalsKnown ? [thousands(s.totalFiles), mib(s.totalBytes)] : ['?', '?'];
    return `${thousands(s.files)}/${files} files  ${mib(s.bytes)}/${bytes} MiB  ${mib(s.bytesPerSecond)} MiB/s  ETA ${eta}`;
  }

  summary(): string[] {
    const s = this.snapshot();
    const lines = [...this.byCode.entries()].sort().map(([code, n]) => `  ${code.padEnd(26)} ${n}`);
    const avg = s.elapsedSeconds > 0 ? this.doneBytes / s.elapsedSeconds : 0;
    return [
      `files: ${thousands(s.files)}`,
      ...lines,
      `bytes: ${thousands(s.bytes)} (${mib(s.bytes)} MiB) in ${s.elapsedSeconds.toFixed(1)} s, ${mib(avg)} MiB/s`,
    ];
  }
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

export function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

/** `1,234,567`: what toLocaleString('en') writes, without loading ICU's number formats (~10 ms, at the end of every load). */
function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+$)/g, ',');
}
