import type { ParseArgsConfig } from 'node:util';
import { loadConfig, type Config } from '../config.js';
import type { ExitCode } from '../errors.js';
import { JobStore } from '../jobs/store.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** One sub-command: its words, what it takes, and what it does. */
export interface Command {
  /** the words after `station`, e.g. `job create` */
  name: string;
  summary: string;
  /** the arguments after the name, e.g. `MANIFEST [--signature-out FILE]` */
  usage: string;
  /** positional argument names, all required */
  positionals: string[];
  options?: Options;
  /** more help, shown by --help */
  details?: string;
  run(ctx: Context): Promise<ExitCode | void>;
}

/** Options every command takes. */
export const COMMON_OPTIONS: Options = {
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

/** What a command runs with: its parsed arguments, and the station's config and store opened on first use. */
export class Context {
  private cachedConfig?: Config;
  private cachedStore?: JobStore;

  constructor(
    readonly values: Record<string, string | boolean | undefined>,
    readonly args: Record<string, string>,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  get json(): boolean {
    return this.values.json === true;
  }

  string(name: string): string | undefined {
    const v = this.values[name];
    return typeof v === 'string' ? v : undefined;
  }

  flag(name: string): boolean {
    return this.values[name] === true;
  }

  config(): Config {
    this.cachedConfig ??= loadConfig({ configFile: this.string('config'), dataDir: this.string('data-dir'), env: this.env });
    return this.cachedConfig;
  }

  store(): JobStore {
    // With a mail section, every command that ends a job (load, cancel, and expiry on open) queues its e-mail.
    const config = this.config();
    this.cachedStore ??= new JobStore(config.dataDir, Date.now, { mail: config.mail !== undefined });
    return this.cachedStore;
  }

  /** One JSON document for scripts with --json; plain lines for people otherwise. */
  print(json: unknown, lines: () => string[]): void {
    process.stdout.write(this.json ? `${JSON.stringify(json, null, 2)}\n` : lines().map((l) => `${l}\n`).join(''));
  }

  close(): void {
    this.cachedStore?.close();
  }
}
