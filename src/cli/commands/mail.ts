import { Exit, StationError } from '../../errors.js';
import { makeLogger } from '../../log.js';
import { Outbox, type OutboxMessage } from '../../mail/outbox.js';
import type { Command } from '../command.js';

const list: Command = {
  name: 'mail list',
  summary: 'the outbox: notification e-mail queued, sent or undeliverable, newest first, with attempts and the last error',
  usage: '',
  positionals: [],
  async run(ctx) {
    const messages = new Outbox(ctx.store().db).list();
    ctx.print({ messages: messages.map(messageJson) }, () =>
      messages.length === 0
        ? ['no notification e-mail']
        : messages.map((m) => {
            const when = m.state === 'sent' ? `sent ${iso(m.sentAt!)}` : m.state === 'queued' ? `next attempt ${iso(m.nextAttemptAt)}` : 'not retried';
            const error = m.lastError !== undefined ? ` - ${m.lastError}` : '';
            return `${m.id}  ${m.jobId}  ${m.jobStatus}  ${m.state}  ${m.recipients.join(', ')}  attempts ${m.attempts}, ${when}${error}`;
          }),
    );
  },
};

const send: Command = {
  name: 'mail send',
  summary: 'deliver the notification e-mail that is due now (the daemon does this by itself; for a station run without it)',
  usage: '',
  positionals: [],
  details:
    'Tries once every queued message whose retry time has come, then exits: 0 when all of them were sent, 4 when\n' +
    'some are still queued (their next attempt is in `station mail list`). Needs the config\'s mail section.',
  async run(ctx) {
    const config = ctx.config();
    if (!config.mail) throw new StationError('MailOff', 'notification e-mail is off: the config has no mail section', Exit.usage);
    const log = makeLogger(config.log.level);
    const { MailSender } = await import('../../mail/sender.js');
    const sender = new MailSender(ctx.store().db, config.mail, log, ctx.env);
    const result = await sender.sendDue();
    await sender.stop();
    const queued = new Outbox(ctx.store().db).queuedCount();
    ctx.print({ ...result, queued }, () => [
      `${result.sent} sent, ${result.failed} failed (to be retried), ${result.undeliverable} undeliverable; ${queued} still queued`,
    ]);
    return result.failed > 0 ? Exit.aborted : Exit.ok;
  },
};

function messageJson(m: OutboxMessage) {
  return {
    id: m.id,
    jobId: m.jobId,
    jobStatus: m.jobStatus,
    recipients: m.recipients,
    subject: m.subject,
    state: m.state,
    queuedAt: iso(m.queuedAt),
    attempts: m.attempts,
    ...(m.state === 'queued' && { nextAttemptAt: iso(m.nextAttemptAt) }),
    ...(m.lastError !== undefined && { lastError: m.lastError }),
    ...(m.sentAt !== undefined && { sentAt: iso(m.sentAt) }),
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

export const mailCommands = [list, send];
