import { randomUUID } from 'node:crypto';
import { deliverWebhook, type WebhookMessageType } from '../../emulator/deliver.js';
import { isValidWebhookSecret } from '../../config/settings.js';
import { ConfigError, UsageError } from '../../lib/errors.js';
import { sampleMessage, sampleTypeNames } from '../../twitch/sample-events.js';
import { stringOpt, type CommandContext } from '../command.js';

const MESSAGE_TYPES: readonly WebhookMessageType[] = ['notification', 'revocation', 'webhook_callback_verification'];

/**
 * `eventsubd trigger`: signs and sends one sample message; exit 1 when the receiver does not answer 2xx (or
 * the challenge). Declared (flags, help) in ../commands.ts.
 */
export async function trigger(ctx: CommandContext): Promise<number> {
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
    dispatcher: await ctx.dispatcher(),
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
}
