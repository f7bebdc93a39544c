/**
 * S3 failures, classified where they happen. An answer with an HTTP status is S3 refusing one request: after
 * the SDK's retries it becomes the file's log row, and the load goes on. No answer at all (refused or dropped
 * connections, timeouts) after the retries means S3 cannot be reached: the load stops and is resumed later,
 * rather than turning every remaining file into an error row.
 */

export class S3Refused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'S3Refused';
  }
}

export class S3Unreachable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'S3Unreachable';
  }
}

export function classifyS3Error(err: unknown, what: string): S3Refused | S3Unreachable | Error {
  if (err instanceof S3Refused || err instanceof S3Unreachable) return err;
  const e = err as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number }; $response?: unknown };
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && status >= 300) {
    const code = e.name && e.name !== 'Error' && e.name !== 'UnknownError' ? e.name : `Http${status}`;
    return new S3Refused(status, code, `${what}: ${status} ${code}`);
  }
  if (e.name === 'AbortError') return err as Error;
  return new S3Unreachable(`${what}: ${e.code ?? e.name ?? 'error'}: ${e.message ?? String(err)}`, { cause: err });
}
