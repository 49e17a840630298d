import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/config.js';

const SECRET_FILE = 'variables.secret';

/** test: one random secret per process, shared by the orchestrator and grader of that process. */
let processSecret: Uint8Array | undefined;

/**
 * The secret per-scenario template variables are derived from. The orchestrator (which writes
 * `{{flag}}` into a device) and the grader (which checks an answer against it) must use the
 * same one, possibly in different processes: FG_VARIABLES_SECRET (required in staging and
 * prod). Unset in dev: a random secret created once in the data directory, so the processes
 * of one installation (same FG_DATA_DIR) agree. Unset in test: random per process (tests run
 * every role in one process, and their data dir may not exist). Either way nobody recomputes
 * the values from a scenario id alone.
 */
export function variablesSecretFromConfig(config: Pick<Config, 'env' | 'dataDir' | 'forge'>): Uint8Array {
  if (config.forge.variablesSecret) return Buffer.from(config.forge.variablesSecret, 'utf8');
  if (config.env === 'test') return (processSecret ??= randomBytes(32));
  if (config.env !== 'dev') throw new Error('FG_VARIABLES_SECRET is required outside dev and test');
  mkdirSync(config.dataDir, { recursive: true });
  const file = path.join(config.dataDir, SECRET_FILE);
  try {
    // 'wx': the first process creates it; a concurrent one fails here and reads the winner's.
    writeFileSync(file, randomBytes(32).toString('base64'), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const text = readFileSync(file, 'utf8').trim();
  if (text.length < 32) throw new Error(`${file} is truncated; remove it to have a new one generated`);
  return Buffer.from(text, 'utf8');
}
