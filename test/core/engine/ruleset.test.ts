import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileRuleset, loadRuleset, rulesetIssues, threatLevelFor } from '../../../src/core/engine/ruleset.js';
import { RulesetValidationError } from '../../../src/core/engine/errors.js';
import type { Condition } from '../../../src/core/engine/conditions.js';
import type { SecurityEvent } from '../../../src/core/engine/event.js';
import { event } from './helpers.js';

const THRESHOLDS = { low: 10, medium: 30, high: 60, critical: 90 };

function ruleset(rules: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { version: 't1', thresholds: THRESHOLDS, rules, ...extra };
}

function rule(when: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: 'r1', description: 'test rule', score: 10, when, ...extra };
}

/** The compiled predicate of a one-rule ruleset with this condition. */
function matcher(when: Condition): (e: SecurityEvent) => boolean {
  return compileRuleset(ruleset([rule(when)])).rules[0]!.when;
}

function issueText(input: unknown): string[] {
  return rulesetIssues(input).map((i) => `${i.path}: ${i.message}`);
}

describe('matchers', () => {
  const http = (payload: Record<string, unknown>): SecurityEvent => event('http.request', payload);

  it('eq: strict equality, optional case folding, no coercion', () => {
    const m = matcher({ field: 'event_type', eq: 'http.request' });
    assert.equal(m(http({})), true);
    assert.equal(m(event('auth.failure', {})), false);
    const status = matcher({ field: 'payload.status', eq: 404 });
    assert.equal(status(http({ status: 404 })), true);
    assert.equal(status(http({ status: '404' })), false);
    const ci = matcher({ field: 'payload.method', eq: 'post', case_insensitive: true });
    assert.equal(ci(http({ method: 'POST' })), true);
    assert.equal(matcher({ field: 'payload.method', eq: 'post' })(http({ method: 'POST' })), false);
  });

  it('in: set membership for strings and numbers', () => {
    const m = matcher({ field: 'payload.dst_port', in: [22, 2222] });
    assert.equal(m(event('net.connection', { dst_port: 2222 })), true);
    assert.equal(m(event('net.connection', { dst_port: 23 })), false);
    const svc = matcher({ field: 'payload.service', in: ['ssh'], case_insensitive: true });
    assert.equal(svc(event('auth.failure', { service: 'SSH' })), true);
    assert.equal(svc(event('auth.failure', { service: 'ftp' })), false);
  });

  it('cidr: IPv4, IPv6 and IPv4-mapped IPv6', () => {
    const m = matcher({ field: 'payload.src_ip', cidr: ['198.51.100.0/24', '2001:db8::/32'] });
    assert.equal(m(http({ src_ip: '198.51.100.77' })), true);
    assert.equal(m(http({ src_ip: '::ffff:198.51.100.77' })), true);
    assert.equal(m(http({ src_ip: '2001:db8:1::5' })), true);
    assert.equal(m(http({ src_ip: '198.51.101.1' })), false);
    assert.equal(m(http({ src_ip: '2001:db9::1' })), false);
    assert.equal(m(http({ src_ip: 'not-an-ip' })), false);
    assert.equal(m(http({})), false);
  });

  it('numeric ranges: gt, gte, lt, lte', () => {
    const m = matcher({ field: 'payload.status', gte: 500, lt: 600 });
    assert.equal(m(http({ status: 500 })), true);
    assert.equal(m(http({ status: 599 })), true);
    assert.equal(m(http({ status: 600 })), false);
    assert.equal(m(http({ status: 499 })), false);
    assert.equal(m(http({ status: '503' })), false);
    const open = matcher({ field: 'payload.bytes', gt: 1000, lte: 2000 });
    assert.equal(open(http({ bytes: 1000 })), false);
    assert.equal(open(http({ bytes: 2000 })), true);
  });

  it('regex: safe patterns, case folding, strings only', () => {
    const m = matcher({ field: 'payload.user_agent', regex: '\\bsqlmap/\\d+\\.\\d+', case_insensitive: true });
    assert.equal(m(http({ user_agent: 'SQLMap/1.7 (https://sqlmap.org)' })), true);
    assert.equal(m(http({ user_agent: 'Mozilla/5.0' })), false);
    assert.equal(m(http({ user_agent: 17 })), false);
  });

  it('exists: presence and absence (null counts as absent)', () => {
    const has = matcher({ field: 'payload.key_id', exists: true });
    const lacks = matcher({ field: 'payload.key_id', exists: false });
    assert.equal(has(http({ key_id: 'k1' })), true);
    assert.equal(has(http({ key_id: null })), false);
    assert.equal(lacks(http({})), true);
    assert.equal(lacks(http({ key_id: 'k1' })), false);
  });

  it('combinators all / any / not, and nested payload paths', () => {
    const m = matcher({
      all: [
        { field: 'event_type', eq: 'waf.alert' },
        {
          any: [
            { field: 'payload.category', eq: 'sqli' },
            { field: 'payload.meta.score', gte: 5 },
          ],
        },
        { not: { field: 'payload.src_ip', cidr: ['10.0.0.0/8'] } },
      ],
    });
    assert.equal(m(event('waf.alert', { category: 'sqli', src_ip: '192.0.2.1' })), true);
    assert.equal(m(event('waf.alert', { category: 'xss', meta: { score: 7 }, src_ip: '192.0.2.1' })), true);
    assert.equal(m(event('waf.alert', { category: 'xss', meta: { score: 2 }, src_ip: '192.0.2.1' })), false);
    assert.equal(m(event('waf.alert', { category: 'sqli', src_ip: '10.1.2.3' })), false);
    assert.equal(m(event('http.request', { category: 'sqli' })), false);
  });

  it('does not walk into prototypes', () => {
    const m = matcher({ field: 'payload.constructor', exists: true });
    assert.equal(m(http({})), false);
  });
});

describe('ruleset validation', () => {
  it('names the exact path of an invalid CIDR', () => {
    const input = ruleset([
      rule({
        all: [
          { field: 'event_type', eq: 'x.y' },
          { field: 'payload.src_ip', cidr: ['10.0.0.0/8', '10.0.0.0/33'] },
        ],
      }),
    ]);
    assert.deepEqual(issueText(input), ['rules[0].when.all[1].cidr[1]: invalid CIDR "10.0.0.0/33": prefix /33 is longer than 32 bits']);
    assert.throws(
      () => compileRuleset(input),
      (err: unknown) => err instanceof RulesetValidationError && err.code === 'invalid_ruleset' && err.issues.length === 1,
    );
  });

  it('refuses host bits and bad IPv6 in CIDRs', () => {
    const texts = issueText(ruleset([rule({ field: 'payload.src_ip', cidr: ['10.0.0.1/8', '2001:db8::g/32'] })]));
    assert.equal(texts.length, 2);
    assert.match(texts[0]!, /^rules\[0\]\.when\.cidr\[0\]: invalid CIDR "10\.0\.0\.1\/8": host bits are set \(the network is 10\.0\.0\.0\/8\)/);
    assert.match(texts[1]!, /^rules\[0\]\.when\.cidr\[1\]: invalid CIDR/);
  });

  it('names unsafe regexes, bad field paths, empty ranges and misplaced operators', () => {
    const input = ruleset([
      rule({ field: 'payload.user_agent', regex: '(a+)+$' }),
      rule({ field: 'payload', eq: 'x' }, { id: 'r2' }),
      rule({ field: 'payload.status', gt: 10, lt: 5 }, { id: 'r3' }),
      rule({ all: [{ field: 'source', eq: 's' }], eq: 'x' }, { id: 'r4' }),
      rule({ field: 'source' }, { id: 'r5' }),
      rule({ field: 'source', eq: 's', any: [{ field: 'source', eq: 't' }] }, { id: 'r6' }),
    ]);
    const texts = issueText(input);
    assert.match(texts[0]!, /^rules\[0\]\.when\.regex: nested quantifiers/);
    assert.match(texts[1]!, /^rules\[1\]\.when\.field: "payload" is not an event field/);
    assert.match(texts[2]!, /^rules\[2\]\.when: the numeric range is empty/);
    assert.match(texts[3]!, /^rules\[3\]\.when: eq need a field/);
    assert.match(texts[4]!, /^rules\[4\]\.when: field "source" needs an operator/);
    assert.match(texts[5]!, /^rules\[5\]\.when: has any and field; use exactly one/);
    assert.equal(texts.length, 6);
  });

  it('reports structural errors with JSON paths', () => {
    const input = ruleset([
      rule({ field: 'source', eq: 'x' }, { score: -1 }),
      { id: 'Bad Id', description: 'x', score: 1, when: { field: 'source', eq: 'x' }, colour: 'red' },
      rule({ field: 'source', eq: 'x' }, { id: 'r3', mitigations: [{ action: 'nuke', target: 'payload.src_ip' }] }),
    ]);
    const texts = issueText(input);
    assert.ok(texts.includes('rules[0].score: must be >= 0, got number -1'), texts.join('\n'));
    assert.ok(
      texts.some((t) => t.startsWith('rules[1].id: "Bad Id" must match')),
      texts.join('\n'),
    );
    assert.ok(texts.includes('rules[1].colour: is not a known field'), texts.join('\n'));
    assert.ok(
      texts.some((t) => t.startsWith('rules[2].mitigations[0].action: must be one of "block_ip"')),
      texts.join('\n'),
    );
    assert.deepEqual(issueText({ thresholds: THRESHOLDS, rules: [] }), ['version: is required']);
  });

  it('checks ids, thresholds, windows and mitigation targets', () => {
    const input = ruleset(
      [
        rule({ field: 'source', eq: 'x' }),
        rule({ field: 'source', eq: 'x' }, { window: { key: ['payload.src_ip'], window_s: 60, threshold: 3, distinct: 'payload.src_ip' } }),
        rule({ field: 'source', eq: 'x' }, { id: 'r3', mitigations: [{ action: 'block_ip' }] }),
      ],
      { thresholds: { low: 10, medium: 10, high: 60, critical: 90 } },
    );
    assert.deepEqual(issueText(input), [
      'thresholds.medium: must be greater than thresholds.low (10), got 10',
      'rules[1].id: duplicate rule id "r1" (first at rules[0])',
      'rules[1].window.distinct: is also a key field, so it would always count 1',
      'rules[2].mitigations[0].target: is required for block_ip',
      'rules[2].mitigations[0].duration_s: is required for block_ip',
    ]);
  });

  it('reports YAML syntax errors with their line', () => {
    assert.throws(
      () => loadRuleset('version: "1"\nrules: [\n  - x: : :\n'),
      (err: unknown) => err instanceof RulesetValidationError && /^line \d+, column \d+/.test(err.issues[0]!.message),
    );
  });

  it('skips disabled rules and maps scores to threat levels', () => {
    const compiled = compileRuleset(ruleset([rule({ field: 'source', eq: 'x' }), rule({ field: 'source', eq: 'y' }, { id: 'off', enabled: false })]));
    assert.deepEqual(
      compiled.rules.map((r) => r.id),
      ['r1'],
    );
    assert.equal(threatLevelFor(0, THRESHOLDS), 'none');
    assert.equal(threatLevelFor(9, THRESHOLDS), 'none');
    assert.equal(threatLevelFor(10, THRESHOLDS), 'low');
    assert.equal(threatLevelFor(30, THRESHOLDS), 'medium');
    assert.equal(threatLevelFor(89, THRESHOLDS), 'high');
    assert.equal(threatLevelFor(500, THRESHOLDS), 'critical');
  });
});
