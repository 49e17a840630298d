import { pathToFileURL } from 'node:url';
import { evaluate } from '../src/core/engine/evaluate.js';
import { loadDefaultDoctrine, NO_ENFORCEMENT } from '../src/core/engine/doctrine.js';
import { loadDefaultRuleset } from '../src/core/engine/ruleset.js';
import { MemoryWindowStore } from '../src/core/engine/windows.js';
import type { SecurityEvent } from '../src/core/engine/event.js';

/** A mixed stream: mostly benign requests, with brute force, scans and scanner user agents. */
function makeEvents(n: number): SecurityEvent[] {
  const start = Date.parse('2025-03-01T00:00:00Z');
  const events: SecurityEvent[] = [];
  for (let i = 0; i < n; i++) {
    const ip = `172.16.${(i >> 8) & 255}.${i & 255}`;
    const occurred_at = new Date(start + i * 5).toISOString();
    const kind = i % 10;
    if (kind < 6) {
      events.push({
        source: 'bench',
        event_type: 'http.request',
        occurred_at,
        payload: {
          src_ip: ip,
          method: 'GET',
          path: `/products/${i % 500}`,
          query: 'sort=price',
          status: 200,
          user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0',
          key_id: `key_${i % 7}`,
        },
      });
    } else if (kind < 8) {
      events.push({
        source: 'bench',
        event_type: 'auth.failure',
        occurred_at,
        payload: { src_ip: `172.20.0.${i % 13}`, username: `user${i % 31}`, service: i % 2 ? 'ssh' : 'web' },
      });
    } else if (kind === 8) {
      events.push({
        source: 'bench',
        event_type: 'net.connection',
        occurred_at,
        payload: { src_ip: `172.21.0.${i % 5}`, dst_ip: '172.16.0.1', dst_port: i % 1024, protocol: 'tcp' },
      });
    } else {
      events.push({
        source: 'bench',
        event_type: 'http.request',
        occurred_at,
        payload: { src_ip: ip, path: '/search', query: 'q=1 union select 1', user_agent: 'sqlmap/1.7' },
      });
    }
  }
  return events;
}

export async function run(): Promise<void> {
  const ruleset = loadDefaultRuleset();
  const doctrine = loadDefaultDoctrine();
  const events = makeEvents(100_000);
  const ctx = { tenantId: 'bench', ruleset, doctrine, windows: new MemoryWindowStore(), enforcement: NO_ENFORCEMENT };
  for (let i = 0; i < 5_000; i++) await evaluate(events[i]!, ctx); // warm-up (JIT)
  const measured = events.slice(5_000);
  const latencies = new Float64Array(measured.length);
  let triggered = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < measured.length; i++) {
    const s = process.hrtime.bigint();
    const d = await evaluate(measured[i]!, ctx);
    latencies[i] = Number(process.hrtime.bigint() - s) / 1000;
    if (d.rules_triggered.length > 0) triggered++;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  latencies.sort();
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!.toFixed(1);
  console.log(`engine: default ruleset (${ruleset.rules.length} rules), memory window store, ${measured.length} events`);
  console.log(
    `  ${(measured.length / seconds).toFixed(0)} evaluations/s  p50 ${pct(0.5)} us  p99 ${pct(0.99)} us  max ${pct(1)} us  (${triggered} decisions with rules triggered)`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
