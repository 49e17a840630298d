import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { verifyInclusion } from '../../src/ledger/proof-verify.js';
import { recordLeafHash } from '../../src/ledger/record.js';
import { CLI, ROOT, cliEnv } from '../helpers/cli.js';
import {
  startThrowawayNats,
  startThrowawayPostgres,
  startThrowawayRedis,
  trackChild,
  waitForPort,
  type ThrowawayPostgres,
  type ThrowawayServer,
} from '../helpers/servers.js';

/**
 * Shared parts of the chaos tests and the stress harness (scripts/stress.ts): throwaway
 * dependencies, a real FrostGate reached over HTTP, write traffic (/defend and /ingest) that
 * records every answer, and the no-lost-writes check: every batch answered 202 is decided, and
 * every decision answered 200 or made from such a batch is in the database and provably in the
 * tenant's ledger.
 */

export interface Dependencies {
  readonly redis: ThrowawayServer;
  readonly postgres: ThrowawayPostgres;
  readonly nats: ThrowawayServer & { dispose(): Promise<void> };
  /** FG_* variables pointing a server at them. */
  readonly env: Record<string, string>;
  dispose(): Promise<void>;
}

export const REDIS_PASSWORD = 'chaos-redis-password-0123456789abcdef';

/** A Redis (with a password, as production requires), a Postgres cluster and a NATS of our own. */
export async function startDependencies(): Promise<Dependencies> {
  const started: Array<{ dispose(): Promise<void> }> = [];
  try {
    const redis = await startThrowawayRedis(REDIS_PASSWORD);
    started.push({ dispose: () => redis.stop() });
    const postgres = await startThrowawayPostgres();
    started.push(postgres);
    const nats = await startThrowawayNats();
    started.push({
      dispose: async () => {
        await nats.stop();
        await nats.dispose();
      },
    });
    return {
      redis,
      postgres,
      nats,
      env: { FG_DB_URL: postgres.url, FG_REDIS_URL: redis.url, FG_NATS_URL: nats.url },
      async dispose() {
        for (const s of started.reverse()) await s.dispose().catch(() => undefined);
      },
    };
  } catch (err) {
    for (const s of started.reverse()) await s.dispose().catch(() => undefined);
    throw err;
  }
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Headers;
}

/** One HTTP call; status 0 when no answer came (connection refused or reset, timeout). */
export async function call(baseUrl: string, method: string, path: string, key: string | undefined, body?: unknown, rawBody?: string): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (key !== undefined) headers['x-api-key'] = key;
  if (body !== undefined || rawBody !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      signal: AbortSignal.timeout(10_000),
      ...(rawBody !== undefined ? { body: rawBody } : body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      parsed = { text };
    }
    return { status: res.status, body: parsed, headers: res.headers };
  } catch (err) {
    return { status: 0, body: { error: (err as Error).message }, headers: new Headers() };
  }
}

export interface TenantClient {
  readonly tenant: string;
  /** A key with defend:write, ingest:write and decisions:read. */
  readonly key: string;
}

/** Tenants made through the API with the platform admin key, each with a sensor key. */
export async function createTenants(baseUrl: string, adminKey: string, count: number, prefix = 'chaos'): Promise<TenantClient[]> {
  const clients: TenantClient[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${randomBytes(3).toString('hex')}-${i}`;
    const res = await call(baseUrl, 'POST', '/tenants', adminKey, {
      id,
      first_key: { scopes: ['defend:write', 'ingest:write', 'decisions:read'], name: 'sensor' },
    });
    if (res.status !== 201) throw new Error(`creating tenant ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    clients.push({ tenant: id, key: (res.body.first_key as { key: string }).key });
  }
  return clients;
}

const KEY_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz23456789';
/** A well-formed API key that no server issued (built at run time: no key literal in the repository). */
export function unknownKey(): string {
  const id = [...randomBytes(12)].map((b) => KEY_ID_ALPHABET[b % KEY_ID_ALPHABET.length]).join('');
  return ['fg', id, randomBytes(32).toString('base64url')].join('_');
}

let eventSeq = 0;
/** A valid event, unique by event_id, from a varying address. */
export function sensorEvent(): Record<string, unknown> {
  eventSeq++;
  return {
    event_id: `chaos-${process.pid}-${Date.now().toString(36)}-${eventSeq}`,
    source: 'sshd',
    event_type: 'auth.failure',
    occurred_at: new Date().toISOString(),
    payload: { service: 'ssh', src_ip: `100.64.${(eventSeq >> 8) & 255}.${eventSeq & 255}`, username: `user${eventSeq % 97}` },
  };
}

/** One answered (or unanswered) request of the traffic, with when it was sent and answered. */
export type WritePath = 'defend' | 'ingest';

export interface Outcome {
  readonly path: WritePath;
  readonly tenant: string;
  readonly status: number;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly decisionId?: string;
  readonly ledgerIndex?: number;
  /** /ingest answered 202: the batch and how many events it holds. */
  readonly batchId?: string;
  readonly eventCount?: number;
  readonly code?: string;
}

/** The dependency checks /health/ready reports failed (other checks, e.g. labs, are not ours to judge). */
export function failedDependencies(ready: HttpAnswer): string[] {
  return ((ready.body.failed as string[] | undefined) ?? []).filter((name) => ['db', 'redis', 'nats'].includes(name)).sort();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it holds, failing with `what` after the deadline. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(25);
  }
}

/**
 * Closed-loop sensor traffic: `concurrency` workers, each sending its next write as soon as the
 * last is answered. Every `ingestEvery`-th write of a worker is a POST /ingest batch of
 * `batchSize` events (0: /defend only), the others POST /defend. Every outcome is kept; stop()
 * waits for the in-flight ones.
 */
export class WriteTraffic {
  readonly outcomes: Outcome[] = [];
  private running = false;
  private workers: Array<Promise<void>> = [];

  constructor(
    private readonly baseUrl: () => string,
    private readonly clients: readonly TenantClient[],
    private readonly options: { concurrency?: number; ingestEvery?: number; batchSize?: number } = {},
  ) {}

  start(): void {
    this.running = true;
    for (let w = 0; w < (this.options.concurrency ?? 6); w++) this.workers.push(this.worker(w));
  }

  private async worker(w: number): Promise<void> {
    let n = w;
    const every = this.options.ingestEvery ?? 0;
    while (this.running) {
      const client = this.clients[n % this.clients.length]!;
      const path: WritePath = every > 0 && n % every === every - 1 ? 'ingest' : 'defend';
      n++;
      const startedAt = Date.now();
      const events = path === 'ingest' ? Array.from({ length: this.options.batchSize ?? 5 }, () => sensorEvent()) : [];
      const res =
        path === 'ingest'
          ? await call(this.baseUrl(), 'POST', '/ingest', client.key, { events })
          : await call(this.baseUrl(), 'POST', '/defend', client.key, sensorEvent());
      const accepted = path === 'ingest' ? res.status === 202 : res.status === 200;
      const outcome: Outcome = {
        path,
        tenant: client.tenant,
        status: res.status,
        startedAt,
        endedAt: Date.now(),
        ...(accepted && path === 'defend' ? { decisionId: String(res.body.decision_id), ledgerIndex: Number(res.body.ledger_index) } : {}),
        ...(accepted && path === 'ingest' ? { batchId: String(res.body.batch_id), eventCount: Number(res.body.event_count) } : {}),
        ...(typeof res.body.code === 'string' ? { code: res.body.code } : {}),
      };
      this.outcomes.push(outcome);
      // Refused or unanswered: back off a little rather than spin (a well-behaved sensor retries later).
      if (!accepted) await sleep(res.status === 0 ? 50 : 10);
    }
  }

  count(pred: (o: Outcome) => boolean): number {
    let n = 0;
    for (const o of this.outcomes) if (pred(o)) n++;
    return n;
  }

  async stop(): Promise<Outcome[]> {
    this.running = false;
    await Promise.all(this.workers);
    return this.outcomes;
  }
}

/** Whether the write was accepted: 200 on /defend, 202 on /ingest. */
export const isAccepted = (o: Outcome): boolean => (o.path === 'defend' ? o.status === 200 : o.status === 202);

/** Status counts, e.g. { "200": 812, "503": 97 }. */
export function statusCounts(outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[String(o.status)] = (counts[String(o.status)] ?? 0) + 1;
  return counts;
}

/** Status counts per path, e.g. { "defend 200": 812, "ingest 202": 97, "defend 503": 40 }. */
export function statusCountsByPath(outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[`${o.path} ${o.status}`] = (counts[`${o.path} ${o.status}`] ?? 0) + 1;
  return counts;
}

export interface LostWrite {
  readonly tenant: string;
  readonly decisionId: string;
  readonly why: string;
}

/**
 * Every accepted decision must be readable (GET /decisions/{id}, same ledger index), be the
 * record at its index of the tenant's decisions log, and be included in the tree of a freshly
 * signed checkpoint (the inclusion proof verified here against that checkpoint's root).
 */
export interface AcceptedDecision {
  readonly tenant: string;
  readonly decisionId: string;
  /** As answered by /defend; decisions of an ingest batch take theirs from GET /decisions/{id}. */
  readonly ledgerIndex?: number;
}

export async function findLostWrites(baseUrl: string, clients: readonly TenantClient[], accepted: readonly AcceptedDecision[]): Promise<LostWrite[]> {
  const lost: LostWrite[] = [];
  const byTenant = new Map<string, Array<{ decisionId: string; ledgerIndex?: number }>>();
  for (const a of accepted) {
    const list = byTenant.get(a.tenant) ?? [];
    list.push(a);
    byTenant.set(a.tenant, list);
  }
  for (const [tenant, decisions] of byTenant) {
    const key = clients.find((c) => c.tenant === tenant)!.key;
    const cp = await call(baseUrl, 'GET', '/ledger/checkpoint?fresh=true', key);
    if (cp.status !== 200) throw new Error(`checkpoint of ${tenant}: ${cp.status} ${JSON.stringify(cp.body)}`);
    const treeSize = Number(cp.body.tree_size);
    const root = Buffer.from(String(cp.body.root_hash), 'base64');
    const records = new Map<number, { decision_id?: string }>();
    for (let start = 0; start < treeSize; start += 1000) {
      const page = await call(baseUrl, 'GET', `/ledger/entries?start=${start}&end=${Math.min(treeSize, start + 1000)}`, key);
      if (page.status !== 200) throw new Error(`ledger entries of ${tenant}: ${page.status}`);
      for (const e of page.body.entries as Array<{ index: number; record: { decision_id?: string } }>) records.set(e.index, e.record);
    }
    await forEachLimited(decisions, 8, async (d) => {
      const got = await call(baseUrl, 'GET', `/decisions/${d.decisionId}`, key);
      if (got.status !== 200) return void lost.push({ tenant, decisionId: d.decisionId, why: `GET /decisions/{id} answered ${got.status}` });
      const index = Number(got.body.ledger_index);
      if (d.ledgerIndex !== undefined && index !== d.ledgerIndex)
        return void lost.push({ tenant, decisionId: d.decisionId, why: `stored with ledger index ${index}, answered ${d.ledgerIndex}` });
      const record = records.get(index);
      if (record?.decision_id !== d.decisionId)
        return void lost.push({
          tenant,
          decisionId: d.decisionId,
          why: `ledger entry ${index} is ${record ? `decision ${String(record.decision_id)}` : 'missing'}`,
        });
      const proof = await call(baseUrl, 'GET', `/ledger/proof/inclusion?index=${index}&tree_size=${treeSize}`, key);
      if (proof.status !== 200) return void lost.push({ tenant, decisionId: d.decisionId, why: `inclusion proof answered ${proof.status}` });
      try {
        verifyInclusion({
          index,
          treeSize,
          leafHash: recordLeafHash(record),
          proof: (proof.body.proof as string[]).map((p) => Buffer.from(p, 'base64')),
          root,
        });
      } catch (err) {
        lost.push({ tenant, decisionId: d.decisionId, why: `inclusion proof does not verify: ${(err as Error).message}` });
      }
    });
  }
  return lost;
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** The decisions /defend answered 200 for. */
export function acceptedOf(outcomes: readonly Outcome[]): AcceptedDecision[] {
  return outcomes
    .filter((o) => o.path === 'defend' && o.status === 200 && o.decisionId)
    .map((o) => ({ tenant: o.tenant, decisionId: o.decisionId!, ledgerIndex: o.ledgerIndex! }));
}

/**
 * Waits for every batch /ingest answered 202 for to be decided (GET /ingest/batches/{id} until
 * completed, within the deadline) and returns the decisions they produced, plus every batch that
 * failed, did not finish, or decided fewer events than it held: a lost write as much as a missing
 * decision is.
 */
export async function settleBatches(
  baseUrl: string,
  clients: readonly TenantClient[],
  outcomes: readonly Outcome[],
  timeoutMs = 60_000,
): Promise<{ decisions: AcceptedDecision[]; lost: LostWrite[] }> {
  const batches = outcomes.filter((o) => o.path === 'ingest' && o.status === 202 && o.batchId);
  const decisions: AcceptedDecision[] = [];
  const lost: LostWrite[] = [];
  const deadline = Date.now() + timeoutMs;
  await forEachLimited(batches, 8, async (b) => {
    const key = clients.find((c) => c.tenant === b.tenant)!.key;
    for (;;) {
      const res = await call(baseUrl, 'GET', `/ingest/batches/${b.batchId!}`, key);
      const status = String(res.body.status);
      if (res.status === 200 && status === 'completed') {
        const ids = res.body.decision_ids as string[];
        if (ids.length !== b.eventCount) lost.push({ tenant: b.tenant, decisionId: b.batchId!, why: `batch decided ${ids.length} of ${b.eventCount} events` });
        for (const id of ids) decisions.push({ tenant: b.tenant, decisionId: id });
        return;
      }
      if ((res.status === 200 && status === 'failed') || res.status === 404)
        return void lost.push({
          tenant: b.tenant,
          decisionId: b.batchId!,
          why: `accepted batch is ${res.status === 404 ? 'unknown' : `failed: ${String(res.body.error)}`}`,
        });
      if (Date.now() > deadline)
        return void lost.push({
          tenant: b.tenant,
          decisionId: b.batchId!,
          why: `accepted batch still ${res.status === 200 ? status : `answered ${res.status}`} after ${timeoutMs} ms`,
        });
      await sleep(50);
    }
  });
  return { decisions, lost };
}

/**
 * `frostgate serve` as one node process (no tsx wrapper process in between), so SIGKILL hits the
 * server itself. Resolves once it listens; the bootstrap admin key is parsed from its banner.
 */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly baseUrl: string;
  readonly adminKey: string | undefined;
  readonly stderr: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function spawnServer(port: number, env: Record<string, string>): Promise<ServerProcess> {
  const child = trackChild(
    spawn(process.execPath, ['--import', 'tsx', CLI, 'serve'], {
      cwd: ROOT,
      env: cliEnv({ FG_ENV: 'test', FG_PORT: String(port), ...env }),
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  };
  try {
    await until(
      'the server to print its banner',
      () => {
        if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${stderr}`);
        return stderr.includes('Stop with Ctrl-C');
      },
      60_000,
    );
    await waitForPort(port);
  } catch (err) {
    await kill();
    throw err;
  }
  return { child, baseUrl: `http://127.0.0.1:${port}`, adminKey: /\n {4}(fg_\S+)\n/.exec(stderr)?.[1], stderr: () => stderr, kill };
}
