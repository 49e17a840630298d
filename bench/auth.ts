// The auth gate's added latency per request, key lookup warm: the same probe route on a server
// with the gate (valid key, cached) and on one without it; /health/live (public) for reference.
// Then the two refusals an attacker can compare: an unknown key id and a wrong secret for a real
// one (they must cost the same, so timing does not reveal which key ids exist), on PGlite.
// Run: npm run bench -- auth   or   npx tsx bench/auth.ts
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { KeyIndex } from '../src/core/auth/key-index.js';
import { generateKey } from '../src/core/auth/key-format.js';
import { createThrowawayDatabase } from '../test/helpers/postgres.js';
import { probePath, startAuthNode, type AuthNode } from '../test/core/auth/helpers.js';

const WARMUP = 2_000;
const ROUNDS = 10_000;
const BLOCK = 500;
const REFUSALS = 2_000;

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

type Shape = {
  readonly node: AuthNode;
  readonly url: string;
  readonly headers: Record<string, string> | (() => Record<string, string>);
  readonly status?: number;
};
interface Figures {
  p50: number;
  p99: number;
  mean: number;
}

/**
 * Per-request latency in microseconds of app.inject for each request shape, measured in
 * alternating blocks so noise from a shared machine falls on every shape alike.
 */
async function measure(shapes: readonly Shape[], rounds = ROUNDS, warmup = WARMUP, block_ = BLOCK): Promise<Figures[]> {
  const samples = shapes.map(() => new Float64Array(rounds));
  const headersOf = (s: Shape) => (typeof s.headers === 'function' ? s.headers() : s.headers);
  for (const s of shapes) for (let i = 0; i < warmup; i++) await s.node.app.inject({ url: s.url, headers: headersOf(s) });
  for (let block = 0; block < rounds / block_; block++) {
    for (const [n, s] of shapes.entries()) {
      for (let i = block * block_; i < (block + 1) * block_; i++) {
        const headers = headersOf(s);
        const t0 = process.hrtime.bigint();
        const res = await s.node.app.inject({ url: s.url, headers });
        samples[n]![i] = Number(process.hrtime.bigint() - t0) / 1000;
        if (res.statusCode !== (s.status ?? 200)) throw new Error(`${s.url} answered ${res.statusCode}: ${res.body}`);
      }
    }
  }
  return samples.map((us) => {
    const mean = us.reduce((a, b) => a + b, 0) / us.length;
    us.sort();
    return { p50: percentile(us, 50), p99: percentile(us, 99), mean };
  });
}

export async function run(): Promise<void> {
  // A long cache TTL keeps the key lookup warm for the whole run (the default 5 s would expire mid-run).
  const gated = await startAuthNode({ env: { FG_LOG_LEVEL: 'silent' }, keyCacheTtlMs: 3_600_000 });
  const open = await startAuthNode({ env: { FG_LOG_LEVEL: 'silent' }, noGate: true });
  try {
    const key = (await gated.auth.store.createKey({ tenantId: gated.tenantId, scopes: ['decisions:read'] })).key;
    const url = probePath('decisions:read');
    const [best, without, publicRoute] = (await measure([
      { node: gated, url, headers: { 'x-api-key': key } },
      { node: open, url, headers: {} },
      { node: gated, url: '/health/live', headers: {} },
    ])) as [Figures, Figures, Figures];
    const fmt = (n: number) => n.toFixed(1).padStart(8);
    console.log(`auth gate, ${ROUNDS} requests each via app.inject (key lookup warm: cached for the whole run)`);
    console.log('                                   p50 µs   p99 µs  mean µs');
    console.log(`  probe route, gate + valid key  ${fmt(best.p50)} ${fmt(best.p99)} ${fmt(best.mean)}`);
    console.log(`  probe route, no gate           ${fmt(without.p50)} ${fmt(without.p99)} ${fmt(without.mean)}`);
    console.log(`  /health/live (public, gated)   ${fmt(publicRoute.p50)} ${fmt(publicRoute.p99)} ${fmt(publicRoute.mean)}`);
    console.log(`  gate's added latency           ${fmt(best.p50 - without.p50)} ${fmt(best.p99 - without.p99)} ${fmt(best.mean - without.mean)}`);
  } finally {
    await gated.close();
    await open.close();
  }
  await refusals();
}

/**
 * The two refusals an attacker can time against each other, on PGlite and on Postgres: each request
 * presents a fresh key, so no cache answers for the unknown ids. Also the index's memory per key.
 */
async function refusals(): Promise<void> {
  const fmt = (n: number) => n.toFixed(1).padStart(8);
  console.log(`refusals, ${REFUSALS} requests each, alternating blocks of 100     p50 µs   p99 µs  mean µs`);
  for (const kind of ['embedded', 'postgres'] as const) {
    const pg = kind === 'postgres' ? await createThrowawayDatabase('fg_bench') : undefined;
    const node = await startAuthNode({ env: { FG_LOG_LEVEL: 'silent', ...(pg ? { FG_DB_URL: pg.url } : {}) }, keyCacheTtlMs: 3_600_000 });
    try {
      const key = (await node.auth.store.createKey({ tenantId: node.tenantId, scopes: ['decisions:read'] })).key;
      const url = probePath('decisions:read');
      const [unknownId, wrongSecret] = (await measure(
        [
          { node, url, headers: () => ({ 'x-api-key': generateKey().key }), status: 401 },
          { node, url, headers: () => ({ 'x-api-key': `${key.slice(0, 16)}${generateKey().key.slice(16)}` }), status: 401 },
        ],
        REFUSALS,
        100,
        100,
      )) as [Figures, Figures];
      console.log(`  ${kind.padEnd(9)} unknown key id                     ${fmt(unknownId.p50)} ${fmt(unknownId.p99)} ${fmt(unknownId.mean)}`);
      console.log(`  ${kind.padEnd(9)} wrong secret for a real id         ${fmt(wrongSecret.p50)} ${fmt(wrongSecret.p99)} ${fmt(wrongSecret.mean)}`);
      console.log(
        `  ${kind.padEnd(9)} ratio unknown / wrong secret       ${(unknownId.p50 / wrongSecret.p50).toFixed(2).padStart(8)} ${(unknownId.p99 / wrongSecret.p99).toFixed(2).padStart(8)} ${(unknownId.mean / wrongSecret.mean).toFixed(2).padStart(8)}`,
      );
    } finally {
      await node.close();
      await pg?.drop();
    }
  }
  // What holding every key id costs: the index filled with 100,000 entries, heap measured around it.
  global.gc?.();
  const before = process.memoryUsage().heapUsed;
  const rows = Array.from({ length: 100_000 }, (_, i) => ({ id: `key_${String(i).padStart(12, 'a')}`, digestPrefix: randomBytes(6), createdAt: new Date() }));
  const index = new KeyIndex({ keyIndexSince: async () => rows }, { max: 1_000_000 });
  await index.screen('key_none', randomBytes(32));
  rows.length = 0;
  global.gc?.();
  const bytes = (process.memoryUsage().heapUsed - before) / index.size;
  console.log(
    `key index: ${index.size} keys, about ${bytes.toFixed(0)} bytes of heap each${global.gc ? '' : ' (run node with --expose-gc for a steadier figure)'}`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
