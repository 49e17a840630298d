// The edge input guard (src/platform/http/input-guard.ts) runs on every request. Measured here:
// CPU per request of a bare Fastify route against the same route behind the guard and its JSON
// parser, in the same run and process (app.inject, no sockets), for a typical /defend body and a
// full /ingest batch; and the guard alone on a body whose text has \u escapes (its slow path).
// Run: npm run bench -- input-guard
import Fastify from 'fastify';
import { generateKey } from '../src/core/auth/key-format.js';
import { refuseUnsafeInput, requestInputIssues, useExplainedJsonParser } from '../src/platform/http/input-guard.js';

const event = (i: number) => ({
  event_id: `sensor-7f3a9c-${i}`,
  source: 'sshd@bastion-1',
  event_type: 'http.request',
  occurred_at: '2025-03-01T12:00:00.250Z',
  payload: {
    src_ip: `192.0.2.${i % 250}`,
    method: 'GET',
    host: 'shop.example',
    path: '/cart/checkout',
    query: 'step=2',
    status: 403,
    user_agent: 'Mozilla/5.0 (X11; Linux x86_64)',
    tls: { ja3: 'e7d705a3286e19ea42f587b344ee6865', sni: ['shop.example'] },
  },
});
const headers = { 'content-type': 'application/json', 'x-api-key': generateKey().key, 'x-request-id': 'req-1', 'user-agent': 'sensor/1.0' };

async function app(guarded: boolean) {
  const a = Fastify({ bodyLimit: 16 * 1024 * 1024 });
  if (guarded) {
    useExplainedJsonParser(a);
    a.addHook('preValidation', refuseUnsafeInput);
  }
  a.post('/echo', async () => ({ ok: true }));
  await a.ready();
  return a;
}

/** CPU microseconds per request (user + system) over `n` requests, after a warm-up. */
async function cpuPerRequest(a: Awaited<ReturnType<typeof app>>, payload: string, n: number): Promise<number> {
  for (let i = 0; i < Math.min(200, n); i++) await a.inject({ method: 'POST', url: '/echo?view=full', headers, payload });
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const res = await a.inject({ method: 'POST', url: '/echo?view=full', headers, payload });
    if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`);
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

function perCall(fn: () => unknown, minMs = 500): number {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  while (elapsed < BigInt(minMs) * 1_000_000n) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    elapsed = process.hrtime.bigint() - start;
  }
  return Number(elapsed) / n / 1000;
}

export async function run(): Promise<void> {
  const bare = await app(false);
  const guarded = await app(true);
  try {
    for (const [name, payload, n] of [
      ['/defend body (one event)', JSON.stringify(event(1)), 5000],
      ['/ingest body (1000 events)', JSON.stringify({ events: Array.from({ length: 1000 }, (_, i) => event(i)) }), 40],
    ] as const) {
      // Interleaved rounds, so drift on a shared machine hits both alike; the median round counts.
      const ratios: number[] = [];
      const bares: number[] = [];
      const guards: number[] = [];
      for (let round = 0; round < 5; round++) {
        const b = await cpuPerRequest(bare, payload, n);
        const g = await cpuPerRequest(guarded, payload, n);
        bares.push(b);
        guards.push(g);
        ratios.push(g / b);
      }
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
      console.log(
        `${name.padEnd(28)} ${String(payload.length).padStart(7)} B   bare route ${median(bares).toFixed(1).padStart(8)} us CPU/request   guarded ${median(guards).toFixed(1).padStart(8)} us   ratio ${median(ratios).toFixed(3)}`,
      );
    }
    // The slow path: a body whose text has \u escapes is checked string by string.
    const escaped = JSON.parse(JSON.stringify(event(2)).replace('shop.example', 'sh\\u00f6p.example')) as unknown;
    const us = perCall(() => requestInputIssues({ headers, params: {}, query: { view: 'full' }, body: escaped }));
    console.log(`guard alone, body with \\u escapes (every string checked): ${us.toFixed(2)} us per request`);
  } finally {
    await bare.close();
    await guarded.close();
  }
}
