import { readFileSync } from 'node:fs';
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { Logger } from 'pino';
import type { MailSettings } from '../config.js';
import { configError, describe } from '../errors.js';
import type { Db } from '../jobs/db.js';
import { Outbox, type OutboxMessage } from './outbox.js';

/**
 * Delivers the outbox through the configured SMTP server: every message due is tried once per pass; a failure is
 * logged with its job and tried again after a back-off that doubles per attempt (`mail.retry`), for as long as it
 * takes: a server that is down delays mail, it never loses it. Only a server's final word (a 5xx refusing every
 * recipient, or the message) makes a message `undeliverable`. Runs beside the loads and never waits on them, nor
 * they on it.
 */

/** An attempt holds its message this long: longer than the SMTP timeouts below add up to. */
const LEASE_MS = 5 * 60_000;
const TIMEOUTS = { connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 60_000 };

export interface PassResult {
  sent: number;
  failed: number;
  undeliverable: number;
}

export class MailSender {
  private readonly outbox: Outbox;
  private readonly transport: Transporter<SMTPTransport.SentMessageInfo>;
  private timer?: NodeJS.Timeout;
  private pass?: Promise<PassResult>;

  constructor(
    db: Db,
    private readonly settings: MailSettings,
    private readonly log: Logger,
    env: NodeJS.ProcessEnv,
    private readonly clock: () => number = Date.now,
  ) {
    this.outbox = new Outbox(db);
    const { host, port, secure, user } = settings.smtp;
    const pass = smtpPassword(settings, env);
    this.transport = nodemailer.createTransport({
      host,
      port,
      secure,
      ...TIMEOUTS,
      ...(user !== undefined && pass !== undefined && { auth: { user, pass } }),
      // nodemailer's own logger stays off: it would print the SMTP dialogue, AUTH included.
      logger: false,
      debug: false,
    });
  }

  /** Tries what is due now, and again every second or at the first retry delay if shorter. */
  start(): void {
    const every = Math.min(1000, this.settings.retry.firstDelayMs);
    this.timer = setInterval(() => void this.sendDue(), every);
    void this.sendDue();
  }

  /** Stops trying; an attempt under way finishes (bounded by the SMTP timeouts) and is recorded. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.pass;
    this.transport.close();
  }

  /** One pass over the messages due; passes never overlap. */
  sendDue(): Promise<PassResult> {
    this.pass ??= this.runPass().finally(() => (this.pass = undefined));
    return this.pass;
  }

  private async runPass(): Promise<PassResult> {
    const result: PassResult = { sent: 0, failed: 0, undeliverable: 0 };
    try {
      for (const m of this.outbox.due(this.clock())) {
        if (!this.outbox.claim(m, this.clock() + LEASE_MS)) continue;
        result[await this.attempt({ ...m, attempts: m.attempts + 1 })]++;
      }
    } catch (err) {
      // The database itself (busy past its timeout, disk full): the next pass tries again.
      this.log.error({ err: describe(err) }, 'notification e-mail: the outbox could not be read or updated');
    }
    return result;
  }

  private async attempt(m: OutboxMessage): Promise<keyof PassResult> {
    const log = this.log.child({ jobId: m.jobId, outboxId: m.id, jobStatus: m.jobStatus });
    try {
      const info = await this.transport.sendMail({
        from: this.settings.from,
        to: m.recipients,
        subject: m.subject,
        text: m.body,
        // The same Message-ID on every attempt: a repeat after a lost answer is recognisably the same message.
        messageId: `<job-${m.jobId}.${m.id}.${m.queuedAt}@${domainOf(this.settings.from)}>`,
        date: new Date(m.queuedAt),
      });
      const rejected = info.rejected.map(String);
      const note = rejected.length > 0 ? `refused by the server: ${rejected.join(', ')}` : undefined;
      this.outbox.sent(m.id, this.clock(), note);
      if (note) log.warn({ accepted: info.accepted.map(String), rejected }, `notification e-mail sent, but some recipients were ${note}`);
      else log.info({ recipients: m.recipients, attempts: m.attempts }, 'notification e-mail sent');
      return 'sent';
    } catch (err) {
      const why = smtpError(err);
      if (isFinal(err)) {
        this.outbox.undeliverable(m.id, why);
        log.error({ recipients: m.recipients, err: why }, `notification e-mail for job ${m.jobId} is undeliverable: the SMTP server refused it for good`);
        return 'undeliverable';
      }
      const next = this.clock() + this.delayAfter(m.attempts);
      this.outbox.retryLater(m.id, why, next);
      log.warn(
        { attempt: m.attempts, nextAttemptAt: new Date(next).toISOString(), err: why },
        `notification e-mail for job ${m.jobId} not sent (attempt ${m.attempts}); will retry`,
      );
      return 'failed';
    }
  }

  /** Doubles per attempt from the first delay, up to the largest. */
  private delayAfter(attempts: number): number {
    const { firstDelayMs, maxDelayMs } = this.settings.retry;
    return Math.min(maxDelayMs, firstDelayMs * 2 ** Math.min(attempts - 1, 30));
  }
}

/**
 * The SMTP password: `STATION_SMTP_PASSWORD`, else the file `mail.smtp.passwordFile` (its trailing line break
 * dropped). Read only by what sends mail, so commands that do not send need no access to it.
 */
export function smtpPassword(settings: MailSettings, env: NodeJS.ProcessEnv): string | undefined {
  if (settings.smtp.user === undefined) return undefined;
  if (env.STATION_SMTP_PASSWORD) return env.STATION_SMTP_PASSWORD;
  const file = settings.smtp.passwordFile;
  if (file === undefined) throw configError('mail.smtp.user is given without a password: set STATION_SMTP_PASSWORD or mail.smtp.passwordFile');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw configError(`mail.smtp.passwordFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? describe(err)}`);
  }
  const password = text.replace(/\r?\n$/, '');
  if (password === '') throw configError(`mail.smtp.passwordFile: ${file} is empty`);
  return password;
}

/** The server's own refusal (a 5xx for every recipient, or for the message) will not change by trying again. */
function isFinal(err: unknown): boolean {
  const e = err as { code?: string; responseCode?: number };
  return (e.code === 'EENVELOPE' || e.code === 'EMESSAGE') && (e.responseCode ?? 0) >= 500;
}

/** nodemailer's messages carry the server's answer; `describe` adds the error code (ECONNREFUSED, EAUTH, ...). */
function smtpError(err: unknown): string {
  return describe(err);
}

function domainOf(mailbox: string): string {
  const address = /<([^>]+)>/.exec(mailbox)?.[1] ?? mailbox;
  return address.slice(address.lastIndexOf('@') + 1).trim() || 'import-station';
}
