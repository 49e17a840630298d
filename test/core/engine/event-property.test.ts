import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { eventIssues } from '../../../src/core/engine/event.js';
import { evaluate } from '../../../src/core/engine/evaluate.js';
import { loadDefaultDoctrine, NO_ENFORCEMENT } from '../../../src/core/engine/doctrine.js';
import { loadDefaultRuleset } from '../../../src/core/engine/ruleset.js';
import { MemoryWindowStore } from '../../../src/core/engine/windows.js';
import { acceptablePayload, hostileKey, hostilePayload, hostileString, hostileValue, PROTOTYPE_NAMES } from './hostile.js';

const base = { source: 'sensor-1', event_type: 'http.request', occurred_at: '2025-03-01T12:00:00Z' };

describe('event validation with hostile keys and strings (property)', () => {
  it('a payload key named like an Object.prototype member is an ordinary field, not a crash or a bogus issue', () => {
    for (const name of PROTOTYPE_NAMES) {
      for (const value of ['x', 1, { nested: true }, null]) {
        const payload = JSON.parse(`{${JSON.stringify(name)}: ${JSON.stringify(value)}, "src_ip": "192.0.2.1"}`) as Record<string, unknown>;
        assert.deepEqual(eventIssues({ ...base, payload }), [], `payload.${name} = ${JSON.stringify(value)}`);
      }
    }
  });

  it('eventIssues never throws, whatever it is given, and every issue has a path and a message', () => {
    const candidate = fc.oneof(
      fc.anything({ key: hostileKey, maxDepth: 4 }),
      fc.record({
        source: fc.oneof(fc.constant('s'), hostileString),
        event_type: fc.oneof(fc.constant('auth.failure'), hostileString),
        occurred_at: fc.oneof(fc.constant(base.occurred_at), hostileString),
        payload: fc.oneof(hostilePayload, hostileValue),
      }),
      fc.dictionary(hostileKey, hostileValue).map((extra) => ({ ...base, payload: {}, ...extra })),
    );
    fc.assert(
      fc.property(candidate, (input) => {
        const issues = eventIssues(input, { nowMs: Date.parse(base.occurred_at) });
        for (const i of issues) assert.ok(typeof i.path === 'string' && typeof i.message === 'string' && i.message.length > 0, JSON.stringify(i));
      }),
      { numRuns: 2000 },
    );
  });

  it('a payload within the documented limits is valid whatever its keys are called, and is decided', async () => {
    const ruleset = loadDefaultRuleset();
    const doctrine = loadDefaultDoctrine();
    await fc.assert(
      fc.asyncProperty(
        hostilePayload,
        fc.constantFrom('http.request', 'auth.failure', 'net.connection', 'waf.alert', 'custom.thing'),
        async (payload, eventType) => {
          const event = { ...base, event_type: eventType, payload: { ...payload, src_ip: '198.51.100.7' } };
          const issues = eventIssues(event);
          if (!acceptablePayload(event.payload, false)) {
            assert.ok(issues.length > 0, 'a payload beyond the limits is refused');
            return;
          }
          assert.deepEqual(issues, [], JSON.stringify(event.payload));
          const decision = await evaluate(event, { tenantId: 'prop-tenant', ruleset, doctrine, windows: new MemoryWindowStore(), enforcement: NO_ENFORCEMENT });
          assert.equal(decision.entity, 'ip:198.51.100.7');
          assert.equal(typeof decision.explanation, 'string');
        },
      ),
      { numRuns: 1000 },
    );
  });
});
