/**
 * One error taxonomy for the whole station. Every error that reaches a person carries a name a script can
 * branch on (the contract's names where it has one) and the exit code of the class it belongs to, so the CLI
 * catches once at the top and never has to guess.
 */

/** Exit codes of every `station` command. */
export const Exit = {
  ok: 0,
  /** the operation was refused (contract error names) */
  refused: 1,
  /** bad usage, bad config, a file that cannot be read */
  usage: 2,
  /** a load that ended CompletedWithErrors */
  completedWithErrors: 3,
  /** a load refused or aborted */
  aborted: 4,
} as const;
export type ExitCode = (typeof Exit)[keyof typeof Exit];

export class StationError extends Error {
  constructor(
    /** e.g. `UnableToCancelJobId`, `MalformedManifest`, `BadConfig` */
    readonly code: string,
    message: string,
    readonly exitCode: ExitCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StationError';
  }
}

/** An operation of the contract refused; nothing was changed. */
export function refused(code: string, message: string): StationError {
  return new StationError(code, message, Exit.refused);
}

export function usageError(message: string): StationError {
  return new StationError('Usage', message, Exit.usage);
}

export function configError(message: string): StationError {
  return new StationError('BadConfig', message, Exit.usage);
}

export function unreadableFile(path: string, cause: unknown): StationError {
  return new StationError('UnreadableFile', `cannot read ${path}: ${describe(cause)}`, Exit.usage, { cause });
}

/** A short, human description of any thrown value (an errno code first, where there is one). */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
