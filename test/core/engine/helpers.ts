import { compileDoctrine, type CompiledDoctrine, type Doctrine } from '../../../src/core/engine/doctrine.js';
import type { SecurityEvent } from '../../../src/core/engine/event.js';

const BASE_MS = Date.parse('2025-03-01T12:00:00Z');

/** An event at BASE + offsetS seconds (event time drives windows). */
export function event(event_type: string, payload: Record<string, unknown>, offsetS = 0, extra: Partial<SecurityEvent> = {}): SecurityEvent {
  return {
    source: 'test-sensor',
    event_type,
    occurred_at: new Date(BASE_MS + offsetS * 1000).toISOString(),
    payload,
    ...extra,
  };
}

export function doctrine(overrides: Partial<Doctrine> = {}): CompiledDoctrine {
  return compileDoctrine({
    version: 'test-1',
    mode: 'active',
    allowlist_cidrs: ['127.0.0.0/8', '10.10.0.0/16', '2001:db8:ffff::/48'],
    block_min_threat_level: 'high',
    max_active_blocks: 100,
    blocks_per_window: { window_s: 60, max: 10 },
    max_duration_s: { block_ip: 7200, rate_limit: 600 },
    ...overrides,
  });
}
