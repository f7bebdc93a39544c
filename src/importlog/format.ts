import { stringify } from 'csv-stringify/sync';

/** One row of the import log (contract §6). */
export interface LogRow {
  /** when the file was processed (ms since the epoch) */
  at: number;
  /** path relative to the device root */
  file: string;
  status: number;
  code: string;
  /** `bucket/key`, or empty when the file has no key */
  key: string;
  /** lower-case hex MD5 of the whole file, for stored files */
  md5: string;
  bytes: number;
  contentType: string;
}

export const HEADER = ['DateTime', 'File', 'Status', 'Code', 'Key', 'MD5', 'Bytes', 'Content-Type'];
const FILE = 1;
const KEY = 4;

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `Tue 03 Feb 2009 21:57:43 GMT`, as the original service's logs. */
export function logDate(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]} ${two(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} GMT`;
}

/**
 * CSV text of rows (RFC 4180: CRLF between records, a field with a quote, comma or line break quoted and its
 * quotes doubled). File and Key are always quoted, as the original service wrote them.
 */
export function csv(rows: LogRow[], withHeader = false): string {
  const records = rows.map((r) => [logDate(r.at), r.file, String(r.status), r.code, r.key, r.md5, String(r.bytes), r.contentType]);
  const body = stringify(records, {
    record_delimiter: 'windows',
    cast: {
      string: (value, ctx) => (ctx.index === FILE || ctx.index === KEY ? { value, quoted: true, quoted_empty: true } : value),
    },
  });
  return withHeader ? `${HEADER.join(',')}\r\n${body}` : body;
}
