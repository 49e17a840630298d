import { Redis } from 'ioredis';
import type { HealthCheck } from '../health.js';

export type { Redis } from 'ioredis';

/**
 * A Redis client that fails fast instead of queueing: when Redis is down, callers get an error
 * at once (and answer 503) rather than hanging; it reconnects by itself when Redis returns.
 */
export function createRedis(url: string): Redis {
  const client = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  });
  // Connection errors surface on commands; without a listener ioredis would log to stderr.
  client.on('error', () => {});
  return client;
}

export function redisHealth(client: Redis): HealthCheck {
  return {
    name: 'redis',
    async check() {
      if (client.status !== 'ready') throw new Error(`redis connection is ${client.status}`);
      await client.ping();
    },
  };
}
