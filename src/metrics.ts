import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The station's Prometheus metrics, all in this module: the load reports through the plain hooks of `LoadMetrics`
 * (no prom-client types outside this file), and what is a state rather than an event (requests in flight, bytes
 * buffered, drives, jobs) is read from its owner when Prometheus scrapes, so nothing has to remember to update it.
 *
 * One registry per daemon, not prom-client's global one: a process that builds two (tests) gets two sets.
 */

/** What a load tells as it goes; `Station.metrics` in src/load/loader.ts. Absent for `station load`. */
export interface LoadMetrics {
  /** bytes S3 acknowledged (a single PUT's body, a part) in this run; files skipped on resume are not counted */
  bytesUploaded(bytes: number): void;
  /** a file's row, as the import log has it: `200 OK`, `103 Ignored`, `500 DeviceReadError`, ... */
  fileDone(status: number, code: string): void;
  /** one S3 call made by src/load/objects.ts, the SDK's retries included, timed from when it got a request slot */
  request(operation: string, seconds: number, ok: boolean): void;
}

/** The states read at scrape time. */
export interface MetricSources {
  requestsInFlight(): number;
  requestsWaiting(): number;
  bytesBuffered(): number;
  memoryBudget(): number;
  /** drive stage → drives in it now */
  drives(): Map<string, number>;
  /** job status → jobs in the store */
  jobs(): Map<string, number>;
}

/** Buckets for one S3 call: a small PUT on loopback takes milliseconds, a 5 GiB part over a WAN minutes. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export class StationMetrics {
  readonly registry = new Registry();
  readonly hooks: LoadMetrics;
  private sources?: MetricSources;

  constructor() {
    const registers = [this.registry];
    const bytes = new Counter({ name: 'station_uploaded_bytes_total', help: 'Bytes of file data S3 acknowledged (single PUTs and parts) since the daemon started', registers });
    const files = new Counter({ name: 'station_uploaded_files_total', help: 'Files stored in S3 (import log rows 200 OK) since the daemon started', registers });
    const errors = new Counter({
      name: 'station_file_errors_total',
      help: 'Files not stored, by the status and code of their import log row (status 400 and over), since the daemon started',
      labelNames: ['status', 'code'] as const,
      registers,
    });
    const latency = new Histogram({
      name: 'station_s3_request_duration_seconds',
      help: "Duration of one S3 call for a load (the SDK's retries included), by operation and outcome",
      labelNames: ['operation', 'outcome'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.hooks = {
      bytesUploaded: (n) => bytes.inc(n),
      fileDone: (status, code) => {
        if (status === 200) files.inc();
        else if (status >= 400) errors.inc({ status: String(status), code });
      },
      request: (operation, seconds, ok) => latency.observe({ operation, outcome: ok ? 'ok' : 'error' }, seconds),
    };
    const read = (name: string, help: string, value: (s: MetricSources) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect: () => {
          if (this.sources) gauge(name).set(value(this.sources));
        },
      });
    const gauge = (name: string) => this.registry.getSingleMetric(name) as Gauge;
    read('station_s3_requests_in_flight', 'S3 requests being made now (at most upload.maxRequests)', (s) => s.requestsInFlight());
    read('station_s3_requests_waiting', 'S3 requests waiting for a request slot', (s) => s.requestsWaiting());
    read('station_memory_buffered_bytes', 'Part bytes held in memory now, whole station (at most upload.memory)', (s) => s.bytesBuffered());
    read('station_memory_budget_bytes', 'The memory budget for part bytes (upload.memory)', (s) => s.memoryBudget());
    const byLabel = (name: string, help: string, label: string, values: (s: MetricSources) => Map<string, number>) =>
      new Gauge({
        name,
        help,
        labelNames: [label],
        registers,
        collect: () => {
          const g = gauge(name);
          g.reset(); // a stage or status no longer present must not keep its last count
          if (this.sources) for (const [key, n] of values(this.sources)) g.set({ [label]: key }, n);
        },
      });
    byLabel('station_drives_attached', 'Drives the daemon knows of now, by stage (waiting, verifying, loading, done, refused, removed, ...)', 'stage', (s) => s.drives());
    byLabel('station_jobs', 'Jobs in the station database, by job status', 'status', (s) => s.jobs());
    collectDefaultMetrics({ register: this.registry });
  }

  /** Where the scrape-time values come from, once the station's parts exist. */
  readFrom(sources: MetricSources): void {
    this.sources = sources;
  }

  /** The text exposition format, for GET /metrics. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
