// /defend, /ingest and bouncer lookups over real HTTP, against a bare Fastify route in the same run.
// The servers run in their own processes (as deployed); autocannon drives them from this one.
// Run: npm run bench -- defend    (BENCH_DURATION_S=10 by default; BENCH_SKIP_PG=1 skips Postgres;
// BENCH_PART=defend|bouncer runs one part; BENCH_SKIP_PGLITE=1 skips the embedded database,
// BENCH_SKIP_INGEST=1 the /ingest run; BENCH_SERVER_NODE_ARGS='--cpu-prof' profiles the servers)
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { createThrowawayDatabase } from '../test/helpers/postgres.js';
import { describeBudget, describeCpu, startCpuMeter, type CpuSplit } from './support/cpu.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const CONNECTIONS = 50;

export interface Started<T> {
  readonly info: T;
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

/** Starts bench/support/<script> of this checkout, or of the checkout at `root` (a before/after comparison). */
export async function startProcess<T>(script: string, env: Record<string, string>, root = path.join(here, '..')): Promise<Started<T>> {
  // BENCH_SERVER_NODE_ARGS reaches only the server processes (e.g. --cpu-prof to profile them).
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', path.join(root, 'bench', 'support', script)], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const first = await Promise.race([
    new Promise<string>((resolve) => lines.once('line', resolve)),
    once(child, 'exit').then(([code]) => {
      throw new Error(`${script} exited with ${code} before it listened`);
    }),
  ]);
  return {
    info: JSON.parse(first) as T,
    pid: child.pid,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

export interface Result {
  /** CPU spent during the run (set where it was measured). */
  cpu?: CpuSplit | undefined;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  total: number;
}

export async function load(opts: autocannon.Options): Promise<Result> {
  const r = await autocannon({ duration: DURATION_S, ...opts, connections: opts.connections ?? CONNECTIONS });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors + r.timeouts, total: r.requests.total };
}

const occurredNow = () => new Date(Date.now() - 1000).toISOString();
let seq = 0;
/** A realistic mix: mostly benign traffic, some failed logins and scans from a spread of sources. */
export function event(): Record<string, unknown> {
  seq++;
  const ip = `100.64.${(seq >> 8) & 255}.${seq & 255}`;
  switch (seq % 4) {
    case 0:
      return { source: 'sshd', event_type: 'auth.failure', occurred_at: occurredNow(), payload: { service: 'ssh', src_ip: ip, username: `u${seq % 7}` } };
    case 1:
      return {
        source: 'fw',
        event_type: 'net.connection',
        occurred_at: occurredNow(),
        payload: { src_ip: ip, dst_ip: '100.64.0.1', dst_port: 1000 + (seq % 50) },
      };
    default:
      return {
        source: 'nginx',
        event_type: 'http.request',
        occurred_at: occurredNow(),
        payload: { src_ip: ip, path: '/', status: 200, user_agent: 'Mozilla/5.0' },
      };
  }
}

export interface ServerInfo {
  port: number;
  tenants: string[];
  keys: Record<string, string[]>;
  db: string;
}

function rotatingKeys(info: ServerInfo): () => string {
  const all = info.tenants.flatMap((t) => info.keys[t]!);
  let i = 0;
  return () => all[i++ % all.length]!;
}

export async function waitForIngest(base: string, key: string, batchIds: string[]): Promise<void> {
  for (const id of batchIds) {
    for (;;) {
      const status = (await (await fetch(`${base}/ingest/batches/${id}`, { headers: { 'x-api-key': key } })).json()) as { status: string };
      if (status.status === 'completed') break;
      if (status.status === 'failed') throw new Error(`ingest batch ${id} failed`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Group commits of a path so far, from the server's decision_group_size histogram. */
async function groupSizes(base: string, path: 'defend' | 'ingest'): Promise<string> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name}\\{path="${path}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const count = value('decision_group_size_count');
  // Retries after losing a race for the log head (zero is expected with one server process).
  const conflicts = Number(/^decision_group_conflicts_total (\S+)$/m.exec(text)?.[1] ?? NaN);
  return `${count} group commits, ${(value('decision_group_size_sum') / count).toFixed(1)} events per group on average, ${conflicts} conflicts so far`;
}

/** Figures that include refused requests (429s are cheap) measure the refusal, not the route. */
function warnIfRefused(r: Result, what: string): void {
  if (r.non2xx > 0 || r.errors > 0)
    console.log(`  WARNING: ${r.non2xx} answers were not 2xx and ${r.errors} requests failed: these figures do not measure ${what} alone`);
}

function printDefend(label: string, db: string, hello: Result, defend: Result, groups: string, cpu: CpuSplit | undefined): void {
  const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)}%`;
  console.log(`\n${label} (${db}), ${CONNECTIONS} connections, ${DURATION_S} s each`);
  console.log('  route                          req/s    p50 ms   p99 ms   non-2xx  errors');
  const row = (name: string, r: Result) =>
    console.log(
      `  ${name.padEnd(28)} ${r.rps.toFixed(0).padStart(7)} ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)} ${String(r.non2xx).padStart(9)} ${String(r.errors).padStart(7)}`,
    );
  row('bare Fastify POST /hello', hello);
  row('POST /defend', defend);
  warnIfRefused(defend, '/defend');
  console.log(`  /defend / bare = ${pct(defend.rps, hello.rps)} of the bare route's req/s (target >= 35% on Postgres, p99 <= 20 ms)`);
  console.log(`  /defend (with warm-up): ${groups}`);
  console.log(`  /defend: ${describeCpu(cpu, defend.total, 'request', db !== 'embedded')}`);
  const budget = describeBudget(cpu, defend.total, 'request', 0.35 * hello.rps);
  if (budget && db !== 'embedded') console.log(`  /defend: ${budget} (server, Postgres and load generator share them)`);
  console.log(`  bare:    ${describeCpu(hello.cpu, hello.total, 'request', false)}`);
}

async function benchServer(label: string, env: Record<string, string>, hello: Result): Promise<void> {
  const server = await startProcess<ServerInfo>('decision-server.ts', { BENCH_TENANTS: '2', BENCH_KEYS_PER_TENANT: '8', ...env });
  const base = `http://127.0.0.1:${server.info.port}`;
  try {
    const nextKey = rotatingKeys(server.info);
    const defendReq = () => ({
      method: 'POST' as const,
      path: '/defend',
      headers: { 'content-type': 'application/json', 'x-api-key': nextKey() },
      body: JSON.stringify(event()),
    });
    // Warm-up: JIT, connection pools, caches.
    await autocannon({ url: base, connections: 10, duration: 2, requests: [{ setupRequest: defendReq }] });
    const stopDefendCpu = startCpuMeter(server.pid);
    const defend = await load({ url: base, requests: [{ setupRequest: defendReq }] });
    const defendCpu = stopDefendCpu();

    // /ingest: batches of 1000 from 4 connections; throughput counts events decided and committed.
    const defendGroups = await groupSizes(base, 'defend');
    if (process.env.BENCH_SKIP_INGEST === '1') return printDefend(label, server.info.db, hello, defend, defendGroups, defendCpu);
    const ingestKey = server.info.keys[server.info.tenants[0]!]![0]!;
    const batches = 40;
    const stopIngestCpu = startCpuMeter(server.pid);
    const t0 = performance.now();
    const ids: string[] = [];
    let sent = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (sent++ < batches) {
          const body = JSON.stringify({ events: Array.from({ length: 1000 }, event) });
          const res = await fetch(`${base}/ingest`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': ingestKey }, body });
          if (res.status !== 202) throw new Error(`/ingest answered ${res.status}: ${await res.text()}`);
          ids.push(((await res.json()) as { batch_id: string }).batch_id);
        }
      }),
    );
    const acceptedMs = performance.now() - t0;
    await waitForIngest(base, ingestKey, ids);
    const ingestMs = performance.now() - t0;
    const ingestCpu = stopIngestCpu();

    printDefend(label, server.info.db, hello, defend, defendGroups, defendCpu);
    const ingestGroups = await groupSizes(base, 'ingest');
    console.log(
      `  /ingest: ${ids.length * 1000} events accepted in ${(acceptedMs / 1000).toFixed(2)} s, decided and committed in ${(ingestMs / 1000).toFixed(2)} s = ${((ids.length * 1000) / (ingestMs / 1000)).toFixed(0)} events/s (target >= 20,000 on Postgres); ${ingestGroups}`,
    );
    console.log(`  /ingest: ${describeCpu(ingestCpu, ids.length * 1000, 'event', server.info.db !== 'embedded')}`);
    const ingestBudget = describeBudget(ingestCpu, ids.length * 1000, 'event', 20_000);
    if (ingestBudget && server.info.db !== 'embedded') console.log(`  /ingest: ${ingestBudget}`);
    if (ingestCpu && server.info.db !== 'embedded') {
      const cores = (ingestCpu.postgresS / (ids.length * 1000)) * 20_000;
      console.log(
        `  /ingest: at 20,000 events/s Postgres alone would need ${cores.toFixed(1)} cores at this cost per decision, the server ${((ingestCpu.serverS / (ids.length * 1000)) * 20_000).toFixed(1)} more`,
      );
    }
  } finally {
    await server.stop();
  }
}

/**
 * Bouncer lookups with 10,000 blocks in force, spread over ten tenants' bouncers: the run must
 * measure lookups, not 429s (the default policy's bouncer class allows a tenant 20,000 lookups a
 * second and a key 2,000; the machine has served 26,000 a second).
 */
const BOUNCER_TENANTS = 10;
const BLOCKS_PER_TENANT = 10_000 / BOUNCER_TENANTS;
async function benchBouncer(env: Record<string, string>, hello: Result): Promise<void> {
  const server = await startProcess<ServerInfo>('decision-server.ts', {
    BENCH_TENANTS: String(BOUNCER_TENANTS),
    BENCH_KEYS_PER_TENANT: '8',
    BENCH_TENANT_PREFIX: 'bouncer',
    ...env,
  });
  const base = `http://127.0.0.1:${server.info.port}`;
  try {
    // 1,000 blocked sources per tenant: a hit from the denylisted 240.0.0.0/4 is an immediate
    // block_ip. The doctrine allows 200 blocks a minute, so the events are spread over 5 minutes.
    const startMs = Date.now() - 14 * 60_000;
    for (const tenant of server.info.tenants) {
      const key = server.info.keys[tenant]![0]!;
      const ids: string[] = [];
      for (let b = 0; b < BLOCKS_PER_TENANT / 500; b++) {
        const blocked = Array.from({ length: 500 }, (_, i) => {
          const n = b * 500 + i;
          return {
            source: 'fw',
            event_type: 'net.connection',
            occurred_at: new Date(startMs + n * 310).toISOString(),
            payload: { src_ip: `240.0.${n >> 8}.${n & 255}`, dst_ip: '100.64.0.1', dst_port: 22 },
          };
        });
        const res = await fetch(`${base}/ingest`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': key },
          body: JSON.stringify({ events: blocked }),
        });
        if (res.status !== 202) throw new Error(`/ingest answered ${res.status}: ${await res.text()}`);
        ids.push(((await res.json()) as { batch_id: string }).batch_id);
      }
      await waitForIngest(base, key, ids);
    }
    const probe = await (await fetch(`${base}/v1/decisions?ip=240.0.3.7`, { headers: { 'x-api-key': server.info.keys[server.info.tenants[0]!]![0]! } })).json();
    const active = Array.isArray(probe) ? probe.length : 0;
    const nextKey = rotatingKeys(server.info);
    let n = 0;
    const lookup = () => {
      n++;
      // Over the blocked addresses (240.0.0.0 upwards) and a few just past them: nearly all hits.
      return {
        method: 'GET' as const,
        path: `/v1/decisions?ip=240.0.${(n >> 8) % Math.ceil(BLOCKS_PER_TENANT / 256)}.${n & 255}`,
        headers: { 'x-api-key': nextKey() },
      };
    };
    await autocannon({ url: base, connections: 10, duration: 2, requests: [{ setupRequest: lookup }] });
    console.log(
      `\nbouncer lookups GET /v1/decisions?ip= (${server.info.db}), 10,000 blocks in force, ${DURATION_S} s each (probe found ${active} block for a blocked IP)`,
    );
    // 16 connections is where CrowdSec's figure was taken; 50 is the /defend runs' load.
    for (const connections of [16, CONNECTIONS]) {
      const stopCpu = startCpuMeter(server.pid);
      const r = await load({ url: base, connections, requests: [{ setupRequest: lookup }] });
      const cpu = stopCpu();
      console.log(
        `  ${String(connections).padStart(2)} connections: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, non-2xx ${r.non2xx}, errors ${r.errors}; ${describeCpu(cpu, r.total, 'request', false)}`,
      );
      warnIfRefused(r, 'lookups');
    }
    console.log(`  (bare Fastify POST /hello in this run: ${hello.rps.toFixed(0)} req/s at ${CONNECTIONS} connections)`);
    console.log('  target >= 5,000 req/s, p99 <= 10 ms; CrowdSec 1.4.6 LAPI: ~256 req/s at 16 connections, p99 305 ms');
  } finally {
    await server.stop();
  }
}

export async function run(): Promise<void> {
  const hello = await startProcess<{ port: number }>('hello-server.ts', {});
  let helloResult: Result;
  try {
    const url = `http://127.0.0.1:${hello.info.port}`;
    await autocannon({
      url: `${url}/hello`,
      connections: 10,
      duration: 2,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(event()),
    });
    const stopCpu = startCpuMeter(hello.pid);
    helloResult = await load({ url: `${url}/hello`, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event()) });
    helloResult.cpu = stopCpu();
  } finally {
    await hello.stop();
  }
  const only = process.env.BENCH_PART; // defend | bouncer: one part only
  if (only !== 'bouncer' && process.env.BENCH_SKIP_PGLITE !== '1') await benchServer('embedded PGlite', {}, helloResult);
  if (process.env.BENCH_SKIP_PG !== '1') {
    const pg = await createThrowawayDatabase('fg_bench');
    try {
      if (only !== 'bouncer') await benchServer('Postgres 127.0.0.1:5432', { FG_DB_URL: pg.url }, helloResult);
      if (only !== 'defend') await benchBouncer({ FG_DB_URL: pg.url }, helloResult);
    } finally {
      await pg.drop();
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
