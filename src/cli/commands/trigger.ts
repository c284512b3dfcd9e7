import { randomUUID } from 'node:crypto';
import { deliverWebhook, type DeliverResult, type WebhookMessageType } from '../../emulator/deliver.js';
import { isValidWebhookSecret, type Config } from '../../config/settings.js';
import { nearestName } from '../../lib/edit-distance.js';
import { ConfigError, UsageError } from '../../lib/errors.js';
import { sampleMessage, sampleTypeNames } from '../../twitch/sample-events.js';
import { stringOpt, type CommandContext } from '../command.js';

const MESSAGE_TYPES: readonly WebhookMessageType[] = ['notification', 'revocation', 'webhook_callback_verification'];
/** `--count` at most: enough for a burst, not a load test. */
const MAX_COUNT = 10_000;

/**
 * `eventsubd trigger`: signs and sends one sample message (or `--count N`, each with its own message id) of
 * any catalogue type, named as Twitch or twitch-cli names it; exit 1 when any answer is not 2xx (or the
 * challenge). `--to` and `--secret` default to the daemon's own receiver and first secret. Declared (flags,
 * help) in ../commands.ts.
 */
export async function trigger(ctx: CommandContext): Promise<number> {
  const name = ctx.args.positionals[0]!;
  const { to, secret } = target(ctx);
  ctx.redactor.add(secret);
  const messageType = (stringOpt(ctx.args, 'message-type') ?? 'notification') as WebhookMessageType;
  if (!MESSAGE_TYPES.includes(messageType)) {
    throw new UsageError(`--message-type must be one of ${MESSAGE_TYPES.join(', ')}: current value is "${messageType}"`);
  }
  const count = parseCount(stringOpt(ctx.args, 'count'));
  const messageId = stringOpt(ctx.args, 'message-id');
  if (messageId !== undefined && count > 1) throw new UsageError('--message-id and --count N > 1 exclude each other: each message gets a new id');
  const status =
    messageType === 'revocation'
      ? (stringOpt(ctx.args, 'status') ?? 'authorization_revoked')
      : messageType === 'webhook_callback_verification'
        ? 'webhook_callback_verification_pending'
        : undefined;
  const sample = sampleMessage(name, {
    version: stringOpt(ctx.args, 'version'),
    broadcasterId: stringOpt(ctx.args, 'broadcaster'),
    subscriptionId: stringOpt(ctx.args, 'subscription-id') ?? randomUUID(),
    status,
    callback: to,
    now: new Date(ctx.clock.now()),
  });
  if ('error' in sample) throw new UsageError(unknownName(name, sample.error));
  const { type, version } = sample.subscription;
  const dispatcher = await ctx.dispatcher();
  const results: Array<DeliverResult & { ok: boolean }> = [];
  for (let i = 0; i < count; i++) {
    const res = await deliverWebhook({
      url: to,
      secret,
      messageType,
      subscription: sample.subscription,
      ...(sample.events ? { events: sample.events } : { event: sample.event }),
      ...(messageId ? { messageId } : {}),
      ...(stringOpt(ctx.args, 'timestamp') ? { timestamp: stringOpt(ctx.args, 'timestamp')! } : {}),
      clock: ctx.clock,
      signal: ctx.signal,
      dispatcher,
    });
    const ok = res.status >= 200 && res.status < 300;
    const challengeOk = messageType !== 'webhook_callback_verification' || (res.status === 200 && res.body === res.challenge);
    results.push({ ...res, ok: ok && challengeOk });
  }
  report(ctx, { name: `${type} v${version}`, to, messageType, results });
  return results.every((r) => r.ok) ? 0 : 1;
}

/** `--to` and `--secret`, or the daemon's own receiver (EVENTSUBD_LISTEN + the webhook path) and first secret. */
function target(ctx: CommandContext): { to: string; secret: string } {
  let to = stringOpt(ctx.args, 'to');
  let secret = stringOpt(ctx.args, 'secret');
  if (to === undefined || secret === undefined) {
    const config = ctx.config();
    to ??= receiverUrl(config);
    secret ??= config.eventsubSecrets[0];
    if (secret === undefined) {
      throw new ConfigError('trigger needs the webhook secret to sign with: pass --secret S or set EVENTSUB_SECRET', { setting: 'EVENTSUB_SECRET' });
    }
  }
  if (!isValidWebhookSecret(secret)) {
    throw new ConfigError(`--secret must be 10-100 printable ASCII characters: current length is ${secret.length}`, { setting: '--secret' });
  }
  let url: URL;
  try {
    url = new URL(to);
  } catch {
    throw new UsageError(`--to must be a URL: current value is "${to}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--to must be an http:// or https:// URL');
  return { to, secret };
}

/** The receiver as the daemon listens: a wildcard address is reached on loopback. */
function receiverUrl(config: Config): string {
  const { host, port } = config.listen;
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' || host === '[::]' ? '::1' : host;
  const hostPart = reachable.includes(':') && !reachable.startsWith('[') ? `[${reachable}]` : reachable;
  const path = config.callbackUrl ? new URL(config.callbackUrl).pathname : '/eventsub';
  return `http://${hostPart}:${port}${path}`;
}

/** The error for a name or version `sampleMessage` refused: the nearest name when there is one, else every name. */
function unknownName(name: string, error: string): string {
  if (!error.startsWith('Unknown type')) return error;
  const nearest = nearestName(name, sampleTypeNames());
  return nearest ? `${error}: did you mean "${nearest}"?` : `${error}: known names are ${sampleTypeNames().join(', ')}`;
}

function parseCount(value: string | undefined): number {
  if (value === undefined) return 1;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_COUNT) throw new UsageError(`--count must be a whole number from 1 to ${MAX_COUNT}: current value is "${value}"`);
  return n;
}

function report(
  ctx: CommandContext,
  run: { name: string; to: string; messageType: WebhookMessageType; results: ReadonlyArray<DeliverResult & { ok: boolean }> },
): void {
  const { name, to, messageType, results } = run;
  const verification = messageType === 'webhook_callback_verification';
  if (results.length === 1) {
    const res = results[0]!;
    ctx.out.result(
      { status: res.status, body: res.body.slice(0, 1000), message_id: res.messageId, timestamp: res.timestamp, ok: res.ok },
      () => [
        `${messageType} ${name} -> ${to}: HTTP ${res.status}${res.body ? ` ${JSON.stringify(res.body.slice(0, 200))}` : ''}`,
        `  message id ${res.messageId}, timestamp ${res.timestamp}`,
        ...(verification ? [res.ok ? '  challenge answered correctly' : '  challenge NOT answered correctly'] : []),
      ],
    );
    return;
  }
  const byStatus: Record<string, number> = {};
  for (const r of results) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  const failed = results.filter((r) => !r.ok);
  ctx.out.result(
    {
      count: results.length,
      ok: failed.length === 0,
      succeeded: results.length - failed.length,
      failed: failed.length,
      by_status: byStatus,
      messages: results.map((r) => ({ status: r.status, message_id: r.messageId, ok: r.ok })),
    },
    () => [
      `${results.length} ${messageType} ${name} -> ${to}: ${results.length - failed.length} answered 2xx, ${failed.length} failed`,
      `  by status: ${Object.entries(byStatus).map(([s, n]) => `${s} x${n}`).join(', ')}`,
      ...failed.slice(0, 10).map((r) => `  failed: message id ${r.messageId}: HTTP ${r.status}${r.body ? ` ${JSON.stringify(r.body.slice(0, 200))}` : ''}`),
    ],
  );
}
