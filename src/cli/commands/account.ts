import { usageError } from '../../errors.js';
import { accessKeyIdProblem } from '../../manifest/fields.js';
import type { Command } from '../command.js';
import { readStdin } from '../input.js';

const add: Command = {
  name: 'account add',
  summary: "store an account's secret key, read from standard input",
  usage: 'ACCESS_KEY_ID',
  positionals: ['ACCESS_KEY_ID'],
  details:
    'The secret is read from standard input (one line), stored only in the data directory, and never printed.\n' +
    'Example: station account add AKIAIOSFODNN7EXAMPLE < secret.txt',
  async run(ctx) {
    const id = ctx.args.ACCESS_KEY_ID!;
    const problem = accessKeyIdProblem(id);
    if (problem) throw usageError(`ACCESS_KEY_ID "${id}": ${problem}`);
    if (process.stdin.isTTY) process.stderr.write(`secret key for ${id} (then Enter, Ctrl-D): `);
    const secret = (await readStdin()).replace(/\r?\n$/, '');
    if (secret === '') throw usageError('no secret key on standard input');
    if (/[\s\u0000-\u001f]/.test(secret)) throw usageError('the secret key on standard input has spaces or more than one line');
    const { replaced } = ctx.store().putAccount(id, secret);
    ctx.print({ accessKeyId: id, replaced }, () => [`account ${id} ${replaced ? 'secret replaced' : 'stored'}`]);
  },
};

const list: Command = {
  name: 'account list',
  summary: 'list the access key IDs the station knows (never their secrets)',
  usage: '',
  positionals: [],
  async run(ctx) {
    const ids = ctx.store().accountIds();
    ctx.print({ accounts: ids.map((accessKeyId) => ({ accessKeyId })) }, () => (ids.length ? ids : ['no accounts']));
  },
};

export const accountCommands = [add, list];
