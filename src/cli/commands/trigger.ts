import { randomUUID } from 'node:crypto';
import { deliverWebhook, type WebhookMessageType } from '../../emulator/deliver.js';
import { isValidWebhookSecret } from '../../config/settings.js';
import { ConfigError, UsageError } from '../../lib/errors.js';
import { sampleMessage, sampleTypeNames } from '../../twitch/sample-events.js';
import { JSON_OPTION, stringOpt, type CommandSpec } from '../command.js';

const MESSAGE_TYPES: readonly WebhookMessageType[] = ['notification', 'revocation', 'webhook_callback_verification'];

export const trigger: CommandSpec = {
  path: ['trigger'],
  summary: 'sign and send a test notification, revocation or verification the way Twitch does',
  usage: 'TYPE --to URL --secret S [--message-type notification|revocation|webhook_callback_verification] [--json]',
  options: {
    to: { type: 'string', value: 'URL', description: 'the webhook URL to POST to' },
    secret: { type: 'string', value: 'S', description: 'the webhook secret to sign with (10-100 ASCII characters)' },
    'message-type': { type: 'string', value: 'T', description: 'notification (default), revocation or webhook_callback_verification' },
    status: { type: 'string', value: 'S', description: 'revocation reason (default authorization_revoked)' },
    broadcaster: { type: 'string', value: 'ID', description: 'broadcaster user id in the condition and event (default 1337)' },
    'subscription-id': { type: 'string', value: 'ID', description: 'subscription id (default: random)' },
    'message-id': { type: 'string', value: 'ID', description: 'Twitch-Eventsub-Message-Id (default: random; repeat one to test dedup)' },
    timestamp: { type: 'string', value: 'T', description: 'Twitch-Eventsub-Message-Timestamp, sent and signed verbatim (default: now)' },
    json: JSON_OPTION,
  },
  positionals: [1, 1],
  async run(ctx) {
    const type = ctx.args.positionals[0]!;
    const to = stringOpt(ctx.args, 'to');
    const secret = stringOpt(ctx.args, 'secret');
    if (!to) throw new UsageError('Missing required flag --to URL');
    if (!secret) throw new UsageError('Missing required flag --secret S');
    if (!isValidWebhookSecret(secret)) {
      throw new ConfigError(`--secret must be 10-100 printable ASCII characters: current length is ${secret.length}`, { setting: '--secret' });
    }
    ctx.redactor.add(secret);
    let url: URL;
    try {
      url = new URL(to);
    } catch {
      throw new UsageError(`--to must be a URL: current value is "${to}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--to must be an http:// or https:// URL');
    const messageType = (stringOpt(ctx.args, 'message-type') ?? 'notification') as WebhookMessageType;
    if (!MESSAGE_TYPES.includes(messageType)) {
      throw new UsageError(`--message-type must be one of ${MESSAGE_TYPES.join(', ')}: current value is "${messageType}"`);
    }
    const status = messageType === 'revocation' ? (stringOpt(ctx.args, 'status') ?? 'authorization_revoked') : undefined;
    const sample = sampleMessage(type, {
      broadcasterId: stringOpt(ctx.args, 'broadcaster') ?? '1337',
      userId: '9001',
      now: new Date(ctx.clock.now()),
      subscriptionId: stringOpt(ctx.args, 'subscription-id') ?? randomUUID(),
      callback: to,
      ...(status
        ? { status }
        : messageType === 'webhook_callback_verification'
          ? { status: 'webhook_callback_verification_pending' }
          : {}),
    });
    if (!sample) throw new UsageError(`Unknown type "${type}": known types are ${sampleTypeNames().join(', ')}`);
    const res = await deliverWebhook({
      url: to,
      secret,
      messageType,
      subscription: sample.subscription as { type: string; version: string },
      event: sample.event,
      ...(stringOpt(ctx.args, 'message-id') ? { messageId: stringOpt(ctx.args, 'message-id')! } : {}),
      ...(stringOpt(ctx.args, 'timestamp') ? { timestamp: stringOpt(ctx.args, 'timestamp')! } : {}),
      clock: ctx.clock,
      signal: ctx.signal,
      ...(ctx.dispatcher ? { dispatcher: ctx.dispatcher } : {}),
    });
    const ok = res.status >= 200 && res.status < 300;
    const challengeOk = messageType !== 'webhook_callback_verification' || (res.status === 200 && res.body === res.challenge);
    ctx.out.result(
      { status: res.status, body: res.body.slice(0, 1000), message_id: res.messageId, timestamp: res.timestamp, ok: ok && challengeOk },
      () => [
        `${messageType} ${type} -> ${to}: HTTP ${res.status}${res.body ? ` ${JSON.stringify(res.body.slice(0, 200))}` : ''}`,
        `  message id ${res.messageId}, timestamp ${res.timestamp}`,
        ...(messageType === 'webhook_callback_verification' ? [challengeOk ? '  challenge answered correctly' : '  challenge NOT answered correctly'] : []),
      ],
    );
    return ok && challengeOk ? 0 : 1;
  },
};
