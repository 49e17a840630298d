import type { Platform } from '../../platform/platform.js';
import { DatabaseReplayGuard, RedisReplayGuard } from './replay.js';
import { ScenarioTokens } from './scenario-tokens.js';
import { loadTokenSigningKey } from './signing-key.js';

/**
 * The scenario tokens (SAT, access) of this process: signed with FG_TOKEN_KEY_PATH (staging and
 * prod refuse to start without it), in dev with a key kept under the data directory, otherwise
 * ephemeral; token ids remembered in Redis when configured, else in the database. The spawn and
 * orchestrator modules of one process share it.
 */
export async function createScenarioTokens(platform: Pick<Platform, 'config' | 'db' | 'redis' | 'log'>): Promise<ScenarioTokens> {
  const { config } = platform;
  const persistDevKey = config.env === 'dev' && platform.db.location !== 'memory';
  const key = await loadTokenSigningKey({ keyPath: config.keys.tokenKeyPath, dataDir: persistDevKey ? config.dataDir : undefined });
  platform.log.info({ kid: key.kid, key_source: key.source }, 'scenario token key loaded');
  const replay = platform.redis ? new RedisReplayGuard(platform.redis) : new DatabaseReplayGuard(platform.db);
  return new ScenarioTokens(key, replay);
}
