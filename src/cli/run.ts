import { parseArgs } from 'node:util';
import { Exit, StationError, describe, type ExitCode } from '../errors.js';
import { COMMON_OPTIONS, Context, type Command } from './command.js';
import { accountCommands } from './commands/account.js';
import { jobCommands } from './commands/job.js';
import { daemonCommand, statusCommand } from './commands/daemon.js';
import { loadCommand } from './commands/load.js';
import { mailCommands } from './commands/mail.js';
import { signCommand } from './commands/sign.js';
import { commandWordsAt } from './words.js';

// Each command loads what only it needs (the daemon's watchers, mail, the S3 client) when it runs: every command
// pays for what is imported here, and `station load` has no use for chokidar, drivelist, prom-client or nodemailer.
const COMMANDS: Command[] = [...accountCommands, ...jobCommands, loadCommand, daemonCommand, statusCommand, ...mailCommands, signCommand];

const COMMON_HELP = `options every command takes:
  --config FILE     the config file (env STATION_CONFIG; default /etc/import-station/config.yaml)
  --data-dir DIR    the data directory (env STATION_DATA_DIR; default /var/lib/import-station)
  --json            one JSON document on stdout, for scripts
  -h, --help        this help`;

/**
 * Finds the command named by the first words of argv (common options may stand before it, as in
 * `station --config FILE job list`); returns it with the other arguments.
 */
function findCommand(argv: string[]): { command?: Command; rest: string[]; words: string[] } {
  const at = commandWordsAt(argv);
  const words = at.map((i) => argv[i]!);
  for (let n = words.length; n > 0; n--) {
    const command = COMMANDS.find((c) => c.name === words.slice(0, n).join(' '));
    if (command) return { command, rest: argv.filter((_, i) => !at.slice(0, n).includes(i)), words };
  }
  return { rest: argv, words };
}

function overview(prefix: string): string {
  const shown = COMMANDS.filter((c) => c.name.startsWith(prefix));
  const width = Math.max(...shown.map((c) => c.name.length));
  return [
    'usage: station COMMAND [ARGS] [--json] [--config FILE] [--data-dir DIR]',
    '',
    'commands:',
    ...shown.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "run 'station COMMAND --help' for a command's arguments",
  ].join('\n');
}

function commandHelp(c: Command): string {
  return [`usage: station ${c.name} ${c.usage}`.trimEnd(), '', c.summary, ...(c.details ? ['', c.details] : []), '', COMMON_HELP].join('\n');
}

async function run(argv: string[]): Promise<ExitCode> {
  const { command, rest, words } = findCommand(argv);
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  if (!command) {
    const known = words.length > 0 && COMMANDS.some((c) => c.name.startsWith(`${words[0]} `) || c.name === words[0]);
    if (words.length === 0 || (known && words.length === 1) || wantsHelp) {
      const text = `${overview(known ? `${words[0]} ` : '')}\n`;
      if (words.length === 0 && !wantsHelp) {
        process.stderr.write(text);
        return Exit.usage;
      }
      process.stdout.write(text);
      return Exit.ok;
    }
    throw new StationError('Usage', `unknown command "${words.join(' ')}"\n\n${overview('')}`, Exit.usage);
  }
  if (wantsHelp) {
    process.stdout.write(`${commandHelp(command)}\n`);
    return Exit.ok;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...COMMON_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new StationError('Usage', `${describe(err)}\nusage: station ${command.name} ${command.usage}`, Exit.usage);
  }
  if (parsed.positionals.length !== command.positionals.length) {
    throw new StationError(
      'Usage',
      `station ${command.name} takes ${command.positionals.join(' ') || 'no arguments'}\nusage: station ${command.name} ${command.usage}`,
      Exit.usage,
    );
  }
  const args = Object.fromEntries(command.positionals.map((name, i) => [name, parsed.positionals[i]!]));
  const ctx = new Context(parsed.values as Record<string, string | boolean | undefined>, args, process.env);
  try {
    return (await command.run(ctx)) ?? Exit.ok;
  } finally {
    ctx.close();
  }
}

// The station's files (the job store holds secret keys) are for its own user only.
process.umask(0o077);

// Errors are caught once, here: a StationError is expected and printed as `Name: message`; anything else is a bug
// and gets its stack.
run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof StationError) {
      process.stderr.write(`${err.code}: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else {
      process.stderr.write(`InternalError: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 70;
    }
  },
);
