/** EmulatorOptions checked once, with their defaults (types.ts documents each). */
import type { WsSessions } from './ws-sessions.js';
import type { Dispatcher } from 'undici';
import { systemClock, type Clock } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { BucketConfig } from './bucket.js';
import type { EmulatorClient, EmulatorOptions } from './types.js';
import type { VerificationMode } from './deliveries.js';

export interface ResolvedOptions {
  host: string;
  port: number;
  clock: Clock;
  clients: Partial<EmulatorClient>[] | undefined;
  tokenTtlSeconds: number;
  bucket: BucketConfig;
  pageSize: number;
  maxTotalCost: number;
  deliverTo: URL | undefined;
  verification: VerificationMode;
  dispatcher: Dispatcher | undefined;
  stateFile: string | undefined;
  wsSessions: WsSessions | undefined;
  reconnectNewSessionId: boolean;
  logger: Logger;
}

export const DEFAULT_TOKEN_TTL_SECONDS = 5_011_271;

/** @throws ConfigError when an option breaks a rule. */
export function resolveOptions(options: EmulatorOptions): ResolvedOptions {
  const bucket = options.bucket ?? { limit: 800, windowMs: 60_000 };
  positive('bucket.limit', bucket.limit);
  positive('bucket.windowMs', bucket.windowMs);
  const tokenTtlSeconds = options.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  positive('tokenTtlSeconds', tokenTtlSeconds);
  const pageSize = options.pageSize ?? 100;
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new ConfigError(`Emulator pageSize must be a positive integer: current value is ${pageSize}`, { setting: 'pageSize' });
  const maxTotalCost = options.maxTotalCost ?? 10_000;
  if (!(maxTotalCost >= 0)) throw new ConfigError(`Emulator maxTotalCost must not be negative: current value is ${maxTotalCost}`, { setting: 'maxTotalCost' });
  const deliverTo = options.deliverTo === undefined ? undefined : loopbackOrigin(options.deliverTo);
  const verification = options.verification ?? (deliverTo ? 'deliver' : 'accept');
  if (verification === 'deliver' && !deliverTo) {
    throw new ConfigError("Emulator verification 'deliver' needs deliverTo: the public callback cannot be reached", { setting: 'deliverTo' });
  }
  return {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    clock: options.clock ?? systemClock,
    clients: options.clients,
    tokenTtlSeconds,
    bucket: { limit: bucket.limit, windowMs: bucket.windowMs },
    pageSize,
    maxTotalCost,
    deliverTo,
    verification,
    dispatcher: options.dispatcher,
    stateFile: options.stateFile,
    wsSessions: options.wsSessions,
    reconnectNewSessionId: options.reconnectNewSessionId ?? true,
    logger: options.logger ?? silentLogger,
  };
}

function positive(name: string, value: number): void {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new ConfigError(`Emulator ${name} must be a positive number: current value is ${value}`, { setting: name });
  }
}

/** Only loopback origins: the emulator must never POST to the internet. */
function loopbackOrigin(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`Emulator deliverTo must be a URL: current value is ${raw}`, { setting: 'deliverTo' });
  }
  const host = url.hostname;
  const loopback = host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !loopback) {
    throw new ConfigError(`Emulator deliverTo must be a loopback http(s) origin: current value is ${url.origin}`, { setting: 'deliverTo' });
  }
  return new URL(url.origin);
}
