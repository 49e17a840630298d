// The auth gate's added latency per request, key lookup warm: the same probe route on a server
// with the gate (valid key, cached) and on one without it; /health/live (public) for reference.
// Run: npm run bench -- auth   or   npx tsx bench/auth.ts
import { pathToFileURL } from 'node:url';
import { probePath, startAuthNode, type AuthNode } from '../test/core/auth/helpers.js';

const WARMUP = 2_000;
const ROUNDS = 10_000;
const BLOCK = 500;

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

type Shape = { readonly node: AuthNode; readonly url: string; readonly headers: Record<string, string> };
interface Figures { p50: number; p99: number; mean: number }

/**
 * Per-request latency in microseconds of app.inject for each request shape, measured in
 * alternating blocks so noise from a shared machine falls on every shape alike.
 */
async function measure(shapes: readonly Shape[]): Promise<Figures[]> {
  const samples = shapes.map(() => new Float64Array(ROUNDS));
  for (const s of shapes) for (let i = 0; i < WARMUP; i++) await s.node.app.inject({ url: s.url, headers: s.headers });
  for (let block = 0; block < ROUNDS / BLOCK; block++) {
    for (const [n, s] of shapes.entries()) {
      for (let i = block * BLOCK; i < (block + 1) * BLOCK; i++) {
        const t0 = process.hrtime.bigint();
        const res = await s.node.app.inject({ url: s.url, headers: s.headers });
        samples[n]![i] = Number(process.hrtime.bigint() - t0) / 1000;
        if (res.statusCode !== 200) throw new Error(`${s.url} answered ${res.statusCode}: ${res.body}`);
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
    const [best, without, publicRoute] = await measure([
      { node: gated, url, headers: { 'x-api-key': key } },
      { node: open, url, headers: {} },
      { node: gated, url: '/health/live', headers: {} },
    ]) as [Figures, Figures, Figures];
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
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run();
