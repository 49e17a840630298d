import type { SecurityEvent } from '../../../src/core/engine/event.js';
import { loadDefaultRuleset } from '../../../src/core/engine/ruleset.js';

/** The tenant's recent traffic the canary replays: ordinary requests, and two WordPress probes from one address. */
export const recent: SecurityEvent[] = Array.from({ length: 100 }, (_, i) => ({
  event_id: `ev-${i}`,
  source: 'nginx',
  event_type: 'http.request',
  occurred_at: new Date(Date.UTC(2026, 10, 1, 12, 0, i)).toISOString(),
  payload: i === 40 || i === 41 ? { src_ip: '100.64.12.34', path: '/wp-login.php', status: 404 } : { src_ip: `100.64.1.${i}`, path: '/', status: 200 },
}));

/** The default ruleset plus a rule that blocks anyone requesting /wp-login.php. */
export function blockingRuleset(version: string) {
  const base = structuredClone(loadDefaultRuleset().source);
  return {
    ...base,
    version,
    rules: [
      ...base.rules,
      {
        id: 'wp-login-probe',
        description: 'Requests for /wp-login.php on a site that has no WordPress.',
        score: 90,
        when: {
          all: [
            { field: 'event_type', eq: 'http.request' },
            { field: 'payload.path', eq: '/wp-login.php' },
          ],
        },
        mitigations: [{ action: 'block_ip', target: 'payload.src_ip', duration_s: 600 }],
      },
    ],
  };
}
