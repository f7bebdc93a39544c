/**
 * Where the command's words are in argv: the first two arguments that are not options, past the values of the
 * common options that take one (`station --config FILE job list`). Apart from run.ts, with nothing to import, so
 * that main.ts can tell a `station load` before the commands are loaded.
 */
export function commandWordsAt(argv: string[]): number[] {
  const at: number[] = [];
  for (let i = 0; i < argv.length && at.length < 2; i++) {
    const arg = argv[i]!;
    if (arg === '--config' || arg === '--data-dir') i++;
    else if (!arg.startsWith('-')) at.push(i);
  }
  return at;
}
