import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

/**
 * The station's logger: pino JSON lines. A command logs to stderr (its stdout is its answer); the daemon logs to
 * stdout for journald. Secrets are never passed to it; `redact` is a second fence for anything named like one.
 */
export function makeLogger(level: LogLevel, fd: 1 | 2 = 2): Logger {
  return pino(
    {
      level,
      base: { service: 'import-station' },
      redact: { paths: ['secret', 'secretKey', '*.secret', '*.secretKey', 'credentials', 'password', '*.password', '*.pass'], censor: '[secret]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ fd, sync: true }),
  );
}
