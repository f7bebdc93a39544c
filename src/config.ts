import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { configError, describe } from './errors.js';

/**
 * The station's configuration: a YAML file, then environment variables, then command-line flags, each later
 * source winning over the earlier; everything has a default, so an empty file (or none at the default path)
 * works. Validated here, once: unknown keys and bad values are refused with the key named.
 */

export interface Config {
  /** the file read, if any */
  file?: string;
  dataDir: string;
  s3: S3Settings;
  upload: UploadSettings;
  log: { level: LogLevel };
  drives: DriveSettings;
  /** notification e-mail when a job ends; absent (no `mail:` section): none is queued or sent */
  mail?: MailSettings;
  /** the station screen (a web page for a monitor beside the drive bays) and the Prometheus metrics */
  screen: ScreenSettings;
}

export interface ScreenSettings {
  /** serve the page, its live events and /metrics from the daemon */
  enabled: boolean;
  /** an IP address (or `localhost`) and a port; port 0: any free port, the one bound is logged */
  host: string;
  port: number;
  /** the address is this machine only (127.0.0.0/8, ::1, localhost); anything else is logged as a warning at start */
  loopback: boolean;
  /** the name of the file each drive finished last, on its card; off: no customer file name reaches the page */
  showFileNames: boolean;
}

export interface MailSettings {
  smtp: SmtpSettings;
  /** the From: of every message, e.g. `Import station <station@example.com>` */
  from: string;
  /** how long after a failed attempt the next one is made: doubled per attempt from `firstDelayMs` up to `maxDelayMs` */
  retry: { firstDelayMs: number; maxDelayMs: number };
}

export interface SmtpSettings {
  host: string;
  port: number;
  /** TLS from the first byte (port 465); otherwise STARTTLS whenever the server offers it */
  secure: boolean;
  user?: string;
  /** a file holding the SMTP password (read when mail is sent, never logged); `STATION_SMTP_PASSWORD` wins over it */
  passwordFile?: string;
}

export interface DriveSettings {
  /** folders whose new sub-folders or mounts are drives */
  mountRoots: string[];
  pollIntervalMs: number;
  /** mount unmounted partitions read-only, under the data directory's run folder */
  autoMount: boolean;
}

export interface S3Settings {
  /** unset: AWS S3 itself */
  endpoint?: string;
  region: string;
  /** path-style URLs: the default for S3-compatible endpoints, which rarely have wildcard DNS */
  forcePathStyle: boolean;
  /** 'WHEN_REQUIRED' for S3-compatible servers: the SDK's default CRC32 breaks some of them (streamed bodies sent aws-chunked are stored with their framing, or refused) */
  requestChecksumCalculation: ChecksumSetting;
  responseChecksumValidation: ChecksumSetting;
  /** sign headers only, not the body: every body carries Content-MD5 instead */
  unsignedPayload: boolean;
  /** single PUTs signed and sent without the SDK's command pipeline (much less CPU per small file) */
  directPut: boolean;
  /** a connection silent this long (no answer, no progress) is given up, and the request tried again */
  requestTimeoutMs: number;
  /** false when neither the config nor the environment names an S3 connection */
  configured: boolean;
}

export interface UploadSettings {
  /** requests in flight, for the whole station */
  maxRequests: number;
  /** part bytes held in memory, for the whole station */
  memoryBytes: number;
  /** files of this size and larger go up as multipart uploads */
  multipartThreshold: number;
  /** the smallest part size; grown per file so no file needs more than 10,000 parts */
  partSize: number;
  /** tries of one request before its file is given up */
  maxAttempts: number;
}

export type ChecksumSetting = 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_CONFIG_FILE = '/etc/import-station/config.yaml';
export const DEFAULT_DATA_DIR = '/var/lib/import-station';
/** The screen's default port: 7480 is radosgw's, 8080 every other web tool's; 8470 is rarely taken. */
export const DEFAULT_SCREEN_LISTEN = '127.0.0.1:8470';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Where settings come from besides the file: flags first, then the environment. */
export interface ConfigSources {
  configFile?: string;
  dataDir?: string;
  env: NodeJS.ProcessEnv;
}

export function loadConfig(sources: ConfigSources): Config {
  const { env } = sources;
  const explicit = sources.configFile ?? env.STATION_CONFIG;
  const file = explicit ?? DEFAULT_CONFIG_FILE;
  const raw = readConfigFile(file, explicit !== undefined);
  const values = validate(raw ?? {}, SCHEMA, '', file);

  const [endpoint, endpointSource] = env.AWS_ENDPOINT_URL_S3
    ? [env.AWS_ENDPOINT_URL_S3, 'AWS_ENDPOINT_URL_S3']
    : env.AWS_ENDPOINT_URL
      ? [env.AWS_ENDPOINT_URL, 'AWS_ENDPOINT_URL']
      : [values['s3.endpoint'] as string | undefined, `${file}: s3.endpoint`];
  if (endpoint !== undefined) checkUrl(endpoint, endpointSource);
  const custom = endpoint !== undefined;
  const checksums: ChecksumSetting = custom ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  const upload: UploadSettings = {
    maxRequests: (values['upload.maxRequests'] as number) ?? 32,
    memoryBytes: (values['upload.memory'] as number) ?? 96 * MiB,
    multipartThreshold: (values['upload.multipartThreshold'] as number) ?? 64 * MiB,
    partSize: (values['upload.partSize'] as number) ?? 16 * MiB,
    maxAttempts: (values['upload.maxAttempts'] as number) ?? 5,
  };
  // An eighth of the memory is kept for small files (load/buffers.ts); a part must fit in the rest.
  if (upload.partSize > (upload.memoryBytes / 8) * 7) {
    throw configError(`${file}: upload.partSize (${upload.partSize}) is larger than 7/8 of upload.memory (${upload.memoryBytes}), what parts may use`);
  }
  if (upload.multipartThreshold > 5 * GiB) {
    throw configError(`${file}: upload.multipartThreshold is over 5 GiB, the largest single PUT S3 takes`);
  }
  return {
    ...(raw !== undefined && { file }),
    dataDir: sources.dataDir ?? env.STATION_DATA_DIR ?? (values.dataDir as string | undefined) ?? DEFAULT_DATA_DIR,
    s3: {
      ...(endpoint !== undefined && { endpoint }),
      region: env.AWS_REGION || env.AWS_DEFAULT_REGION || (values['s3.region'] as string | undefined) || 'us-east-1',
      forcePathStyle: (values['s3.forcePathStyle'] as boolean | undefined) ?? custom,
      requestChecksumCalculation: (values['s3.requestChecksumCalculation'] as ChecksumSetting | undefined) ?? checksums,
      responseChecksumValidation: (values['s3.responseChecksumValidation'] as ChecksumSetting | undefined) ?? checksums,
      unsignedPayload: (values['s3.unsignedPayload'] as boolean | undefined) ?? true,
      directPut: (values['s3.directPut'] as boolean | undefined) ?? true,
      requestTimeoutMs: (values['s3.requestTimeoutMs'] as number | undefined) ?? 120_000,
      configured: custom || raw?.s3 !== undefined || Boolean(env.AWS_ACCESS_KEY_ID || env.AWS_PROFILE),
    },
    upload,
    log: { level: envLogLevel(env.STATION_LOG_LEVEL) ?? (values['log.level'] as LogLevel | undefined) ?? 'info' },
    drives: {
      mountRoots: (values['drives.mountRoots'] as string[] | undefined) ?? ['/media', '/run/media', '/mnt'],
      pollIntervalMs: (values['drives.pollIntervalMs'] as number | undefined) ?? 1000,
      autoMount: (values['drives.autoMount'] as boolean | undefined) ?? true,
    },
    ...mailSettings(values, file),
    screen: screenSettings(values),
  };
}

/**
 * The `screen:` section. Loopback unless the operator names another address: the page shows job IDs and drives to
 * whoever can reach it, and has no login.
 */
function screenSettings(values: Record<string, unknown>): ScreenSettings {
  const listen = (values['screen.listen'] as Listen | undefined) ?? listenAddress(DEFAULT_SCREEN_LISTEN);
  return {
    enabled: (values['screen.enabled'] as boolean | undefined) ?? true,
    ...listen,
    showFileNames: (values['screen.showFileNames'] as boolean | undefined) ?? false,
  };
}

/**
 * The `mail:` section: any key in it turns notification e-mail on, and then the server and the sender must be
 * named (a half-written section is a mistake, not a wish for no mail). The password is neither read nor required
 * here: commands that send no mail must not need it (`STATION_SMTP_PASSWORD` is in the service's environment, not
 * an operator's shell); `smtpPassword` in src/mail/sender.ts asks for it.
 */
function mailSettings(values: Record<string, unknown>, file: string): { mail?: MailSettings } {
  if (!Object.keys(values).some((k) => k.startsWith('mail.'))) return {};
  const host = values['mail.smtp.host'] as string | undefined;
  const from = values['mail.from'] as string | undefined;
  if (host === undefined) throw configError(`${file}: mail.smtp.host is required in a mail section (remove the section for no e-mail)`);
  if (from === undefined) throw configError(`${file}: mail.from is required in a mail section: the address notification e-mail is sent from`);
  const user = values['mail.smtp.user'] as string | undefined;
  const passwordFile = values['mail.smtp.passwordFile'] as string | undefined;
  if (passwordFile !== undefined && user === undefined) throw configError(`${file}: mail.smtp.passwordFile is given without mail.smtp.user`);
  const secure = (values['mail.smtp.secure'] as boolean | undefined) ?? false;
  const retry = {
    firstDelayMs: (values['mail.retry.firstDelayMs'] as number | undefined) ?? 60_000,
    maxDelayMs: (values['mail.retry.maxDelayMs'] as number | undefined) ?? 3_600_000,
  };
  if (retry.firstDelayMs > retry.maxDelayMs) {
    throw configError(`${file}: mail.retry.firstDelayMs (${retry.firstDelayMs}) is larger than mail.retry.maxDelayMs (${retry.maxDelayMs})`);
  }
  return {
    mail: {
      smtp: {
        host,
        port: (values['mail.smtp.port'] as number | undefined) ?? (secure ? 465 : 587),
        secure,
        ...(user !== undefined && { user }),
        ...(passwordFile !== undefined && { passwordFile }),
      },
      from,
      retry,
    },
  };
}

function envLogLevel(value: string | undefined): LogLevel | undefined {
  if (value === undefined || value === '') return undefined;
  if (!(LOG_LEVELS as readonly string[]).includes(value)) throw configError(`STATION_LOG_LEVEL: "${value}" is not one of ${LOG_LEVELS.join(', ')}`);
  return value as LogLevel;
}

function readConfigFile(file: string, mustExist: boolean): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (!mustExist && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw configError(`cannot read the config file ${file}: ${describe(err)}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text, { uniqueKeys: true, prettyErrors: false });
  } catch (err) {
    throw configError(`${file}: not valid YAML: ${describe(err).split('\n')[0]}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw configError(`${file}: expected a mapping of settings`);
  return data as Record<string, unknown>;
}

// ---- the schema: every key the file may hold, with its parser -------------------------------------------------

type Parse = (value: unknown) => unknown; // throws a reason string
interface Schema {
  [key: string]: Parse | Schema;
}

const SCHEMA: Schema = {
  dataDir: text,
  s3: {
    endpoint: text,
    region: text,
    forcePathStyle: bool,
    requestChecksumCalculation: oneOf('WHEN_REQUIRED', 'WHEN_SUPPORTED'),
    responseChecksumValidation: oneOf('WHEN_REQUIRED', 'WHEN_SUPPORTED'),
    unsignedPayload: bool,
    directPut: bool,
    requestTimeoutMs: int(1000, 3_600_000),
  },
  upload: {
    maxRequests: int(1, 1024),
    memory: size(8 * MiB, 64 * GiB),
    multipartThreshold: size(5 * MiB, 5 * GiB),
    partSize: size(5 * MiB, 5 * GiB),
    maxAttempts: int(1, 50),
  },
  log: { level: oneOf(...LOG_LEVELS) },
  drives: {
    mountRoots: absolutePaths,
    pollIntervalMs: int(100, 60_000),
    autoMount: bool,
  },
  mail: {
    smtp: {
      host: text,
      port: int(1, 65_535),
      secure: bool,
      user: text,
      passwordFile: absolutePath,
    },
    from: mailbox,
    retry: {
      firstDelayMs: int(100, 86_400_000),
      maxDelayMs: int(100, 86_400_000),
    },
  },
  screen: {
    enabled: bool,
    listen: listenAddress,
    showFileNames: bool,
  },
};

/** Flattens the file into `a.b` keys, refusing unknown keys and bad values. */
function validate(data: Record<string, unknown>, schema: Schema, prefix: string, file: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    const name = prefix + key;
    const rule = schema[key];
    if (rule === undefined) {
      throw configError(`${file}: unknown key "${name}" (known here: ${Object.keys(schema).map((k) => prefix + k).join(', ')})`);
    }
    if (value === null || value === undefined) continue;
    if (typeof rule === 'function') {
      try {
        out[name] = rule(value);
      } catch (reason) {
        throw configError(`${file}: ${name}: ${String(reason)}`);
      }
    } else {
      if (typeof value !== 'object' || Array.isArray(value)) throw configError(`${file}: ${name}: expected a mapping`);
      Object.assign(out, validate(value as Record<string, unknown>, rule, `${name}.`, file));
    }
  }
  return out;
}

function text(v: unknown): string {
  if (typeof v !== 'string' || v === '') throw 'expected a non-empty string';
  return v;
}

function absolutePaths(v: unknown): string[] {
  if (!Array.isArray(v) || v.length === 0) throw 'expected a list of absolute paths';
  for (const p of v) if (typeof p !== 'string' || !p.startsWith('/')) throw `"${String(p)}" is not an absolute path`;
  return v as string[];
}

function absolutePath(v: unknown): string {
  if (typeof v !== 'string' || !v.startsWith('/')) throw `expected an absolute path`;
  return v;
}

/** An address, optionally with a display name: `station@example.com` or `Import station <station@example.com>`. */
function mailbox(v: unknown): string {
  const m = typeof v === 'string' ? /^(?:[^<>@\r\n]*<([^<>\s]+)>|([^<>\s]+))$/.exec(v.trim()) : null;
  const address = m?.[1] ?? m?.[2];
  if (address === undefined || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(address)) throw 'expected an e-mail address, e.g. "Import station <station@example.com>"';
  return v as string;
}

interface Listen {
  host: string;
  port: number;
  loopback: boolean;
}

/**
 * `HOST:PORT` to listen on: an IPv4 address, an IPv6 address in brackets, or `localhost`. Host names are refused: one
 * that resolves to several addresses would leave which one is bound (and so who can see the page) to the resolver.
 */
function listenAddress(v: unknown): Listen {
  const m = typeof v === 'string' ? /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v) : null;
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  const usage = 'expected HOST:PORT with an IP address or localhost, e.g. "127.0.0.1:8470" or "[::1]:8470"';
  if (!m || host === undefined) throw usage;
  if (host !== 'localhost' && isIP(host) === 0) throw `"${host}" is not an IP address or localhost (${usage})`;
  if (m[1] !== undefined && isIP(host) !== 6) throw `"[${host}]" is not an IPv6 address`;
  if (m[2] !== undefined && isIP(host) === 6) throw `an IPv6 address goes in brackets: "[${host}]:${m[3]}"`;
  if (port > 65_535) throw `port ${port} is over 65535`;
  return { host, port, loopback: isLoopbackHost(host) };
}

/** A host that is this machine only: `localhost`, ::1 or 127.0.0.0/8 (IPv6 without its brackets). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

function bool(v: unknown): boolean {
  if (typeof v !== 'boolean') throw 'expected true or false';
  return v;
}

function oneOf<T extends string>(...allowed: T[]): (v: unknown) => T {
  return (v) => {
    if (!allowed.includes(v as T)) throw `expected one of ${allowed.join(', ')}`;
    return v as T;
  };
}

function int(min: number, max: number): (v: unknown) => number {
  return (v) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw `expected a whole number from ${min} to ${max}`;
    return v;
  };
}

const UNITS: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB, GiB, KB: 1e3, MB: 1e6, GB: 1e9 };

/** A size: a number of bytes, or a string like `64 MiB`. */
export function parseSize(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$/.exec(v) : null;
  const unit = m && UNITS[m[2] ?? ''];
  if (!m || unit === undefined || unit === null) throw 'expected a size: bytes, or a number with KiB, MiB, GiB, KB, MB or GB';
  return Math.round(Number(m[1]) * unit);
}

function size(min: number, max: number): (v: unknown) => number {
  return (v) => {
    const n = parseSize(v);
    if (n < min || n > max) throw `expected a size from ${min / MiB} MiB to ${max / GiB} GiB`;
    return n;
  };
}

function checkUrl(value: string, what: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(`${what}: "${value}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw configError(`${what}: "${value}" is not an http(s) URL`);
}
