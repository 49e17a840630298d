// Decision cost with 10,000 blocks in force in one tenant against an empty tenant of the same
// server, in the same run: /defend and /ingest with block-proposing events (denylisted sources),
// whose doctrine caps count the blocks in force. Target: the full tenant within 25% of the empty one.
// Run: npm run bench -- blocks   (Postgres; BENCH_DURATION_S=10 by default)
// BENCH_COMPARE_DIR=<another checkout with node_modules> runs that checkout's server too, each
// measurement interleaved with this one's (before/after on the same machine at the same time).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createThrowawayDatabase } from '../test/helpers/postgres.js';
import { load, startProcess, waitForIngest, type ServerInfo, type Started } from './defend.js';
import { startCpuMeter, type CpuSplit } from './support/cpu.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** BENCH_BLOCKS and BENCH_INGEST_BATCHES shorten a comparison with a slow checkout. */
const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 10_000);
const INGEST_BATCHES = Number(process.env.BENCH_INGEST_BATCHES ?? 10);

interface Server {
  readonly name: string;
  readonly started: Started<ServerInfo>;
  readonly base: string;
  readonly full: string;
  readonly empty: string;
}

/** Denylisted hits (240.0.0.0/4 and 241.0.0.0/8 are in the shipped denylist): each proposes a 24 h block. */
const hit = (n: number, occurredMs: number, net = 240) => ({
  source: 'fw',
  event_type: 'net.connection',
  occurred_at: new Date(occurredMs).toISOString(),
  payload: { src_ip: `${net}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, dst_ip: '100.64.0.1', dst_port: 22 },
});

async function ingest(base: string, key: string, events: object[]): Promise<string> {
  const res = await fetch(`${base}/ingest`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ events }),
  });
  if (res.status !== 202) throw new Error(`/ingest answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { batch_id: string }).batch_id;
}

/** Fills the first tenant with BLOCKS blocks in force: hits 310 ms apart (the doctrine allows 200 a minute), ending a minute ago. */
async function fill(server: Server): Promise<number> {
  const key = server.started.info.keys[server.full]![0]!;
  const startMs = Date.now() - BLOCKS * 310 - 60_000;
  const t0 = performance.now();
  const ids: string[] = [];
  for (let b = 0; b < Math.ceil(BLOCKS / 1000); b++)
    ids.push(
      await ingest(
        server.base,
        key,
        Array.from({ length: Math.min(1000, BLOCKS - b * 1000) }, (_, i) => hit(b * 1000 + i, startMs + (b * 1000 + i) * 310)),
      ),
    );
  await waitForIngest(server.base, key, ids);
  const s = (performance.now() - t0) / 1000;
  console.log(
    `  ${server.name}: ${BLOCKS.toLocaleString('en-US')} blocks ingested, decided and committed in ${s.toFixed(1)} s (${(BLOCKS / s).toFixed(0)} events/s)`,
  );
  return performance.now() - t0;
}

interface Figures {
  defendRps: number;
  defendP99: number;
  defendNon2xx: number;
  defendCpu: CpuSplit | undefined;
  defendTotal: number;
  ingestEps: number;
  ingestCpu: CpuSplit | undefined;
  ingestEvents: number;
}

let fresh = 0;
/** /defend with block-proposing events for one tenant, then INGEST_BATCHES batches of 1000 of them. */
async function measure(server: Server, tenant: string): Promise<Figures> {
  const keys = server.started.info.keys[tenant]!;
  let k = 0;
  const request = () => ({
    method: 'POST' as const,
    path: '/defend',
    headers: { 'content-type': 'application/json', 'x-api-key': keys[k++ % keys.length]! },
    body: JSON.stringify(hit(++fresh, Date.now() - 1000, 241)),
  });
  const stopDefend = startCpuMeter(server.started.pid);
  const defend = await load({ url: server.base, requests: [{ setupRequest: request }] });
  const defendCpu = stopDefend();

  const stopIngest = startCpuMeter(server.started.pid);
  const t0 = performance.now();
  const ids: string[] = [];
  for (let b = 0; b < INGEST_BATCHES; b++)
    ids.push(
      await ingest(
        server.base,
        keys[0]!,
        Array.from({ length: 1000 }, () => hit(++fresh, Date.now() - 1000, 241)),
      ),
    );
  await waitForIngest(server.base, keys[0]!, ids);
  const seconds = (performance.now() - t0) / 1000;
  return {
    defendRps: defend.rps,
    defendP99: defend.p99,
    defendNon2xx: defend.non2xx + defend.errors,
    defendCpu,
    defendTotal: defend.total,
    ingestEps: (INGEST_BATCHES * 1000) / seconds,
    ingestCpu: stopIngest(),
    ingestEvents: INGEST_BATCHES * 1000,
  };
}

const us = (s: number | undefined, n: number) => (s === undefined ? '   n/a' : `${((s / n) * 1e6).toFixed(0).padStart(6)}`);

function row(label: string, f: Figures): void {
  console.log(
    `  ${label.padEnd(30)} ${f.defendRps.toFixed(0).padStart(7)} ${f.defendP99.toFixed(0).padStart(6)} ${String(f.defendNon2xx).padStart(7)} ${us(f.defendCpu?.serverS, f.defendTotal)} ${us(f.defendCpu?.postgresS, f.defendTotal)} ${f.ingestEps.toFixed(0).padStart(9)} ${us(f.ingestCpu && f.ingestCpu.serverS + f.ingestCpu.postgresS, f.ingestEvents)}`,
  );
}

export async function run(): Promise<void> {
  const roots: Array<[string, string]> = [['this checkout', path.join(here, '..')]];
  if (process.env.BENCH_COMPARE_DIR) roots.unshift([`compare (${process.env.BENCH_COMPARE_DIR})`, path.resolve(process.env.BENCH_COMPARE_DIR)]);
  const servers: Server[] = [];
  const dbs: Array<{ drop(): Promise<void> }> = [];
  try {
    for (const [name, root] of roots) {
      const pg = await createThrowawayDatabase('fg_bench_blocks');
      dbs.push(pg);
      const started = await startProcess<ServerInfo>(
        'decision-server.ts',
        { FG_DB_URL: pg.url, BENCH_TENANTS: '2', BENCH_KEYS_PER_TENANT: '8', BENCH_TENANT_PREFIX: 'blocks' },
        root,
      );
      servers.push({ name, started, base: `http://127.0.0.1:${started.info.port}`, full: started.info.tenants[0]!, empty: started.info.tenants[1]! });
    }
    console.log(
      `\nblock-proposing events, ${BLOCKS.toLocaleString('en-US')} blocks in force in one tenant vs an empty tenant (Postgres; servers in their own processes)`,
    );
    for (const s of servers) await fill(s);
    // Interleaved: every server's full tenant, then every server's empty one, twice.
    const results = new Map<string, Figures[]>();
    for (let round = 0; round < 2; round++)
      for (const which of ['full', 'empty'] as const)
        for (const s of servers) {
          const key = `${s.name}|${which}`;
          results.set(key, [...(results.get(key) ?? []), await measure(s, s[which])]);
        }
    console.log('  server, tenant                  /defend  p99ms  non2xx  srvµs   pgµs  ingest/s  srv+pgµs');
    for (const s of servers) {
      for (const which of ['full', 'empty'] as const)
        results.get(`${s.name}|${which}`)!.forEach((f, i) => row(`${s.name.slice(0, 18)}, ${which} #${i + 1}`, f));
      const mean = (which: 'full' | 'empty', pick: (f: Figures) => number) => {
        const all = results.get(`${s.name}|${which}`)!;
        return all.reduce((a, f) => a + pick(f), 0) / all.length;
      };
      const ratio = (pick: (f: Figures) => number) => (mean('full', pick) / mean('empty', pick)).toFixed(2);
      console.log(
        `  ${s.name}: full / empty tenant = ${ratio((f) => f.defendRps)} of /defend req/s, ${ratio((f) => f.ingestEps)} of /ingest events/s (target: within 25%, i.e. >= 0.75)`,
      );
    }
    console.log(
      "  (CPU per request or event: server process, and every Postgres process on the machine: on a shared machine the latter includes others' work)",
    );
  } finally {
    for (const s of servers) await s.started.stop();
    for (const d of dbs) await d.drop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
