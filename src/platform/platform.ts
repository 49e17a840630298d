import type { DestinationStream } from 'pino';
import type { Config } from '../config/config.js';
import { InProcessBus, NatsBus, type Bus } from './bus/bus.js';
import { createRedis, redisHealth, type Redis } from './cache/redis.js';
import { openDatabase, type Database } from './db/database.js';
import { HealthRegistry } from './health.js';
import { createLogger, securityLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';

/**
 * The shared parts every role runs on, built once per process from the parsed config.
 * Modules take the pieces they use (Pick<Platform, ...>), never the whole.
 */
export interface Platform {
  readonly config: Config;
  readonly log: Logger;
  /** The `frostgate.security` logger. */
  readonly security: Logger;
  readonly metrics: Metrics;
  readonly db: Database;
  readonly redis: Redis | undefined;
  readonly bus: Bus;
  readonly health: HealthRegistry;
  /** Registers cleanup run by close(), last registered first. */
  onClose(fn: () => Promise<void> | void): void;
  close(): Promise<void>;
}

export interface PlatformOptions {
  readonly logDestination?: DestinationStream;
  /** Embedded database directory override; 'memory' gives a throwaway database (tests). */
  readonly embeddedDir?: string;
  readonly migrate?: boolean;
  readonly onMigrationApplied?: (name: string) => void;
}

export class DependencyStartupError extends Error {
  readonly code = 'dependency_unreachable';
}

export async function createPlatform(config: Config, options: PlatformOptions = {}): Promise<Platform> {
  const log = createLogger({ level: config.log.level, ...(options.logDestination ? { destination: options.logDestination } : {}) });
  const closers: Array<() => Promise<void> | void> = [];
  const close = async () => {
    for (const fn of closers.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        log.error({ err }, 'error while closing a platform component');
      }
    }
  };
  try {
    const health = new HealthRegistry();
    const db = await openDatabase({
      url: config.db.url,
      embeddedDir: options.embeddedDir ?? config.dataDir,
      poolSize: config.db.poolSize,
      gatePoolSize: config.db.gatePoolSize,
      appRole: config.db.appRole,
      migrate: options.migrate ?? (config.env === 'dev' || config.env === 'test'),
      ...(options.onMigrationApplied ? { onMigrationApplied: options.onMigrationApplied } : {}),
    });
    closers.push(() => db.close());
    health.register({ name: 'db', check: async () => ({ kind: db.kind, ping_ms: await db.ping() }) });
    if (db.kind === 'embedded') {
      const maintenance = setInterval(() => void db.analyze().catch((err: unknown) => log.warn({ err }, 'embedded database ANALYZE failed')), 10 * 60_000);
      maintenance.unref();
      closers.push(() => clearInterval(maintenance));
    }

    let redis: Redis | undefined;
    if (config.redis.url) {
      const client = createRedis(config.redis.url);
      redis = client;
      closers.push(() => void client.disconnect());
      health.register(redisHealth(client));
    }

    let bus: Bus;
    if (config.nats.url) {
      try {
        bus = await NatsBus.connect(config.nats.url);
      } catch (err) {
        throw new DependencyStartupError(
          `NATS at ${config.nats.url} is unreachable (${(err as Error).message}): start it, or unset FG_NATS_URL for the in-process bus`,
        );
      }
    } else {
      bus = new InProcessBus();
    }
    closers.push(() => bus.close());
    health.register(bus.health());

    return {
      config,
      log,
      security: securityLogger(log),
      metrics: createMetrics(),
      db,
      redis,
      bus,
      health,
      onClose: (fn) => void closers.push(fn),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
