import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/config.js';

/** A message on the fleet's subjects that does not carry a valid seal (forged, altered, replayed or stale). */
export class FleetAuthError extends Error {
  override readonly name = 'FleetAuthError';
}

interface Sealed {
  readonly ts: number;
  readonly nonce: string;
  readonly body: string;
  readonly mac: string;
}

const MAX_SKEW_MS = 30_000;

/**
 * Authenticates every message between orchestrators, graders, lab pages and worker agents with an
 * HMAC-SHA256 over (context, time, nonce, body) under the fleet secret. The context is the subject
 * a message was meant for (or the request it answers), so a sealed message cannot be replayed to
 * another worker, stream or request; a nonce seen within the time window is refused. Holding NATS
 * credentials alone therefore runs nothing in a lab and answers no grader; NATS accounts still keep
 * the traffic private (this is integrity, not encryption).
 */
export class FleetAuth {
  private readonly key: Buffer;
  private readonly seen = new Map<string, number>();
  private prunedAt = 0;
  private readonly now: () => number;

  constructor(secret: Uint8Array, opts: { now?: () => number } = {}) {
    if (secret.length < 32) throw new Error('the fleet secret must be at least 32 bytes');
    this.key = Buffer.from(secret);
    this.now = opts.now ?? Date.now;
  }

  seal(context: string, value: unknown): Uint8Array {
    const ts = this.now();
    const nonce = randomBytes(12).toString('base64url');
    const body = JSON.stringify(value);
    return Buffer.from(JSON.stringify({ ts, nonce, body, mac: this.mac(context, ts, nonce, body) } satisfies Sealed));
  }

  /** The nonce of a sealed message (a reply is sealed to the request's nonce). */
  nonceOf(data: Uint8Array): string {
    return this.parse(data).nonce;
  }

  /** The value, after checking the seal, the time window and (unless `allowRepeat`) that the nonce is new. */
  open(context: string, data: Uint8Array, allowRepeat = false): unknown {
    const m = this.parse(data);
    const expected = Buffer.from(this.mac(context, m.ts, m.nonce, m.body), 'base64url');
    const given = Buffer.from(m.mac, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new FleetAuthError(`message on ${context} is not sealed with the fleet secret`);
    const now = this.now();
    if (Math.abs(now - m.ts) > MAX_SKEW_MS)
      throw new FleetAuthError(`message on ${context} is ${Math.round((now - m.ts) / 1000)} s old (clock skew or replay)`);
    if (!allowRepeat) {
      this.prune(now);
      if (this.seen.has(m.nonce)) throw new FleetAuthError(`message on ${context} was replayed`);
      this.seen.set(m.nonce, m.ts);
    }
    return JSON.parse(m.body) as unknown;
  }

  private parse(data: Uint8Array): Sealed {
    let m: unknown;
    try {
      m = JSON.parse(Buffer.from(data).toString('utf8'));
    } catch {
      throw new FleetAuthError('fleet message is not JSON');
    }
    const o = m as Partial<Sealed> | null;
    if (!o || typeof o.ts !== 'number' || typeof o.nonce !== 'string' || typeof o.body !== 'string' || typeof o.mac !== 'string')
      throw new FleetAuthError('fleet message is not sealed');
    return o as Sealed;
  }

  private mac(context: string, ts: number, nonce: string, body: string): string {
    return createHmac('sha256', this.key).update(`${context}\n${ts}\n${nonce}\n${body}`).digest('base64url');
  }

  /** Forgets nonces older than the window (at most once a second: a busy terminal seals many frames). */
  private prune(now: number): void {
    if (this.seen.size < 1024 || now - this.prunedAt < 1000) return;
    this.prunedAt = now;
    for (const [nonce, ts] of this.seen) if (now - ts > 2 * MAX_SKEW_MS) this.seen.delete(nonce);
  }
}

const SECRET_FILE = 'fleet.secret';
let processSecret: Uint8Array | undefined;

/**
 * FG_FLEET_SECRET, shared by every orchestrator, scoreboard, lab page and worker of a fleet
 * (required outside dev and test). Unset in dev: a random secret kept in FG_DATA_DIR/fleet.secret
 * (processes sharing a data dir agree); in test: random per process.
 */
export function fleetSecretFromConfig(config: Pick<Config, 'env' | 'dataDir' | 'forge'>): Uint8Array {
  if (config.forge.fleetSecret) return Buffer.from(config.forge.fleetSecret, 'utf8');
  if (config.env === 'test') return (processSecret ??= randomBytes(32));
  if (config.env !== 'dev') throw new Error('FG_FLEET_SECRET is required outside dev and test when labs run on worker agents');
  mkdirSync(config.dataDir, { recursive: true });
  const file = path.join(config.dataDir, SECRET_FILE);
  try {
    writeFileSync(file, randomBytes(32).toString('base64'), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8');
}
