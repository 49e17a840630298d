import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventValidationError } from '../../../src/core/engine/errors.js';
import { eventIssues, parseEvent, parseOccurredAt } from '../../../src/core/engine/event.js';
import { normalizeIp, parseCidr } from '../../../src/core/engine/ip.js';

const valid = { source: 's', event_type: 'auth.failure', occurred_at: '2025-03-01T12:00:00Z', payload: { src_ip: '192.0.2.1' } };

describe('event validation', () => {
  it('accepts a conventional event', () => {
    assert.deepEqual(eventIssues(valid), []);
    assert.equal(parseEvent(valid), valid);
  });

  it('names each bad field', () => {
    const issues = eventIssues({ ...valid, event_type: 'Login', extra: 1 });
    assert.deepEqual(issues.map((i) => i.path).sort(), ['event_type', 'extra']);
    const payload = eventIssues({ ...valid, payload: { src_ip: '192.0.2.300', dst_port: 70000, status: '200', username: 5 } });
    assert.deepEqual(
      payload.map((i) => `${i.path}: ${i.message}`),
      [
        'payload.src_ip: must be an IPv4 or IPv6 address',
        'payload.dst_port: must be an integer port 0-65535',
        'payload.status: must be an integer HTTP status 100-599',
        'payload.username: must be a string of at most 256 characters',
      ],
    );
    assert.throws(
      () => parseEvent({ ...valid, payload: [] }),
      (e: unknown) => e instanceof EventValidationError && e.issues[0]!.path === 'payload',
    );
  });

  it('bounds payload size and depth', () => {
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`f${i}`, i]));
    assert.match(eventIssues({ ...valid, payload: many })[0]!.message, /65 fields/);
    assert.match(eventIssues({ ...valid, payload: { a: { b: { c: { d: { e: 1 } } } } } })[0]!.message, /deeper than 4/);
    assert.equal(eventIssues({ ...valid, payload: { path: 'x'.repeat(8193) } })[0]!.path, 'payload.path');
  });

  it('parses RFC 3339 strictly, and refuses the far future when given a clock', () => {
    assert.equal(parseOccurredAt('2025-03-01T12:00:00Z'), Date.UTC(2025, 2, 1, 12));
    assert.equal(parseOccurredAt('2025-03-01T13:00:00.5+01:00'), Date.UTC(2025, 2, 1, 12) + 500);
    for (const bad of ['2025-02-30T00:00:00Z', '2025-03-01 12:00:00', '2025-03-01T12:00:00', '2025-13-01T00:00:00Z', '2025-03-01T24:00:00Z']) {
      assert.equal(parseOccurredAt(bad), undefined, bad);
    }
    const now = Date.UTC(2025, 2, 1, 11);
    assert.deepEqual(
      eventIssues(valid, { nowMs: now }).map((i) => i.path),
      ['occurred_at'],
    );
    assert.deepEqual(eventIssues(valid, { nowMs: now, maxFutureSkewS: 7200 }), []);
  });
});

describe('addresses', () => {
  it('normalises IPv4, IPv6 and IPv4-mapped forms', () => {
    assert.equal(normalizeIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
    assert.equal(normalizeIp('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(normalizeIp('2001:db8:0:1:0:0:0:0'), '2001:db8:0:1::');
    assert.equal(normalizeIp('fe80::1%eth0'), undefined);
    assert.equal(normalizeIp('1.2.3'), undefined);
  });

  it('parses CIDRs and bare addresses', () => {
    const v6 = parseCidr('2001:db8::/32');
    assert.ok(v6.ok && v6.cidr.text === '2001:db8::/32');
    const bare = parseCidr('192.0.2.9');
    assert.ok(bare.ok && bare.cidr.prefix === 32);
    const bad = parseCidr('192.0.2.0/x');
    assert.ok(!bad.ok && /not a number/.test(bad.reason));
  });
});
