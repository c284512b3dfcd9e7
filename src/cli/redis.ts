/**
 * A CLI command in Redis mode (README "Running several replicas"): one connection for the command's life, the same
 * Redis and keys as the daemons. Redis down is an error here (REDIS_UNAVAILABLE, exit 1), not a wait: a command
 * answers now or says why.
 */
import type { Config } from '../config/settings.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { RedisConnection } from '../storage/redis-connection.js';

export type RedisConfig = Config & { redis: NonNullable<Config['redis']> };

/** @throws ConfigError (CONFIG_INVALID), AppError (REDIS_NOT_DURABLE, REDIS_UNAVAILABLE) as `RedisConnection.connectOnce`. */
export async function connectRedis(config: RedisConfig, clock: Clock, logger: Logger): Promise<RedisConnection> {
  const { RedisConnection } = await import('../storage/redis-connection.js');
  return RedisConnection.connectOnce({ url: config.redis.url, durability: config.redis.durability, clock, logger: logger.child({ component: 'redis' }) });
}
