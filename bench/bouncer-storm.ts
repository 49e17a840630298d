// Issue 20 point 9: 50 CrowdSec bouncers starting at once (full-stream startups,
// GET /v1/decisions/stream?startup=true) against 10,000 blocks in force on Postgres with the default
// pool of 10, while sensors keep posting to /defend. Prints /defend's throughput, latency and errors
// during the storm next to a quiet baseline of the same run, the startups' latency and errors, and
// the CPU each party spent (the bouncers run in a process of their own, so reading their startups
// does not stall the /defend load generator). Run: npm run bench -- bouncer-storm
// (BENCH_DURATION_S=10 by default; BENCH_STORM_BOUNCERS=50, BENCH_STORM_BLOCKS=10000)
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createThrowawayDatabase } from '../test/helpers/postgres.js';
import { event, startProcess, type ServerInfo } from './defend.js';
import { startCpuMeter, type CpuSplit } from './support/cpu.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const BOUNCERS = Number(process.env.BENCH_STORM_BOUNCERS ?? 50);
const BLOCKS = Number(process.env.BENCH_STORM_BLOCKS ?? 10_000);
/** Sensors: a steady /defend load, well below saturation, so the storm's effect on it shows. */
const DEFEND_CONNECTIONS = 10;

interface DefendFigures {
  rps: number;
  p50: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
  total: number;
  cpu: CpuSplit | undefined;
}

async function defendLoad(base: string, keys: readonly string[], durationS: number): Promise<Omit<DefendFigures, 'cpu'>> {
  let i = 0;
  const r = await autocannon({
    url: base,
    connections: DEFEND_CONNECTIONS,
    duration: durationS,
    requests: [
      {
        setupRequest: () => ({
          method: 'POST',
          path: '/defend',
          headers: { 'content-type': 'application/json', 'x-api-key': keys[i++ % keys.length]! },
          body: JSON.stringify(event()),
        }),
      },
    ],
  });
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    total: r.requests.total,
  };
}

/**
 * 10,000 blocks in one tenant: denylisted sources (240.0.0.0/4, a 24 h block_ip each), 30 a minute
 * of event time (the doctrine allows 200), posted one at a time to /defend: the doctrine allows
 * exactly 10,000 blocks in force, and /ingest's pipelined groups count some pending blocks twice
 * against that cap (8,500 of 10,000 stood), which one event at a time does not.
 */
async function loadBlocks(base: string, key: string): Promise<void> {
  const spacingMs = 2000;
  const startMs = Date.now() - BLOCKS * spacingMs - 4 * 60_000;
  for (let n = 0; n < BLOCKS; n++) {
    const event = {
      source: 'fw',
      event_type: 'net.connection',
      occurred_at: new Date(startMs + n * spacingMs).toISOString(),
      payload: { src_ip: `240.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, dst_ip: '100.64.0.1', dst_port: 22 },
    };
    const res = await fetch(`${base}/defend`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify(event),
    });
    if (res.status !== 200) throw new Error(`/defend answered ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
    if ((n + 1) % 2000 === 0) console.log(`  ${n + 1} blocks decided`);
  }
}

function countOf(text: string, needle: string): number {
  let n = 0;
  for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) n++;
  return n;
}

interface StormFigures {
  rounds: number;
  startups: number;
  failures: Record<string, number>;
  latenciesMs: number[];
  bytes: number;
  /** CPU the bouncer process spent. */
  cpuS: number;
}

/** The storm, from its own process (bench/support/bouncer-storm-client.ts). */
async function storm(base: string, keys: readonly string[], expected: number, untilMs: number): Promise<StormFigures> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'support', 'bouncer-storm-client.ts')], {
    env: { ...process.env, STORM_BASE: base, STORM_KEYS: JSON.stringify(keys), STORM_EXPECTED: String(expected), STORM_UNTIL_MS: String(untilMs) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`the bouncer storm client exited with ${code}`);
  return JSON.parse(out) as StormFigures;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

function cpuLine(split: CpuSplit | undefined): string {
  if (!split) return 'CPU split unavailable (no /proc)';
  const share = (s: number) => `${((s / split.wallS) * 100).toFixed(0)}%`;
  return `server ${split.serverS.toFixed(2)} s (${share(split.serverS)}), Postgres ${split.postgresS.toFixed(2)} s (${share(split.postgresS)}), load generator ${split.loadS.toFixed(2)} s (${share(split.loadS)}) of CPU in ${split.wallS.toFixed(1)} s wall (${cpus().length} cores)`;
}

export async function run(): Promise<void> {
  const pg = await createThrowawayDatabase('fg_bench');
  try {
    const server = await startProcess<ServerInfo>('decision-server.ts', {
      FG_DB_URL: pg.url,
      FG_DB_POOL_SIZE: '10',
      BENCH_TENANTS: '2',
      BENCH_KEYS_PER_TENANT: String(BOUNCERS),
      BENCH_TENANT_PREFIX: 'storm',
    });
    const base = `http://127.0.0.1:${server.info.port}`;
    try {
      const [blocked, sensors] = server.info.tenants as [string, string];
      const bouncerKeys = server.info.keys[blocked]!;
      const defendKeys = server.info.keys[sensors]!;
      const t0 = performance.now();
      await loadBlocks(base, bouncerKeys[0]!);
      const probe = await (await fetch(`${base}/v1/decisions/stream?startup=true`, { headers: { 'x-api-key': bouncerKeys[0]! } })).text();
      const inForce = countOf(probe, '"scope":"Ip"');
      console.log(
        `\n${inForce.toLocaleString('en-US')} blocks in force in tenant ${blocked} (loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s); a full startup is ${(probe.length / 1e6).toFixed(1)} MB`,
      );
      if (inForce < BLOCKS) console.log(`  WARNING: ${BLOCKS} blocks were asked for; the doctrine's caps let ${inForce} stand`);

      // Warm-up (JIT, pools, caches), then the quiet baseline.
      await defendLoad(base, defendKeys, 2);
      let stop = startCpuMeter(server.pid);
      const quiet: DefendFigures = { ...(await defendLoad(base, defendKeys, DURATION_S)), cpu: stop() };

      stop = startCpuMeter(server.pid);
      const defendDuring = defendLoad(base, defendKeys, DURATION_S);
      const stormed = await storm(base, bouncerKeys, inForce, Date.now() + DURATION_S * 1000);
      const during: DefendFigures = { ...(await defendDuring), cpu: stop() };

      console.log(`/defend at ${DEFEND_CONNECTIONS} connections, ${DURATION_S} s each, Postgres pool of 10 (tenant ${sensors}):`);
      console.log('                                  req/s   p50 ms   p99 ms   max ms  non-2xx  errors');
      const row = (name: string, r: DefendFigures) =>
        console.log(
          `  ${name.padEnd(30)} ${r.rps.toFixed(0).padStart(6)} ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)} ${r.max.toFixed(0).padStart(8)} ${String(r.non2xx).padStart(8)} ${String(r.errors).padStart(7)}`,
        );
      row('quiet', quiet);
      row(`during the startup storm`, during);
      console.log(`  /defend during / quiet: ${((during.rps / quiet.rps) * 100).toFixed(0)}% of the req/s, p99 x${(during.p99 / quiet.p99).toFixed(1)}`);
      const sorted = [...stormed.latenciesMs].sort((a, b) => a - b);
      const failed = Object.values(stormed.failures).reduce((a, b) => a + b, 0);
      console.log(
        `startup storm: ${stormed.rounds} rounds (at most one a second) of ${BOUNCERS} concurrent startups = ${stormed.startups} startups, ${failed} errors; latency p50 ${pct(sorted, 50).toFixed(0)} ms, p99 ${pct(sorted, 99).toFixed(0)} ms, max ${pct(sorted, 100).toFixed(0)} ms; ${(stormed.bytes / 1e6).toFixed(0)} MB served`,
      );
      for (const [why, n] of Object.entries(stormed.failures)) console.log(`  ${n} x ${why}`);
      console.log(`CPU, quiet:  ${cpuLine(quiet.cpu)}`);
      console.log(`CPU, storm:  ${cpuLine(during.cpu)}; the ${BOUNCERS} bouncers' own process ${stormed.cpuS.toFixed(2)} s`);
      if (quiet.cpu && during.cpu) {
        const perDefend = (c: CpuSplit, n: number) => ((c.serverS / n) * 1e6).toFixed(0);
        const stormServerS = during.cpu.serverS - (quiet.cpu.serverS / quiet.total) * during.total;
        console.log(
          `  server CPU per /defend request, quiet: ${perDefend(quiet.cpu, quiet.total)} µs; the storm's share of the server's CPU, by difference: ${stormServerS.toFixed(2)} s = ${stormed.startups > 0 ? ((stormServerS / stormed.startups) * 1000).toFixed(1) : '-'} ms per startup`,
        );
      }
    } finally {
      await server.stop();
    }
  } finally {
    await pg.drop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
