import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compileRuleset, loadDefaultRuleset, type CompiledRuleset } from '../../../src/core/engine/ruleset.js';
import { decisionDiff } from '../../../src/core/engine/diff.js';
import { entityKey, evaluate, type Decision } from '../../../src/core/engine/evaluate.js';
import { loadDefaultDoctrine, NO_ENFORCEMENT } from '../../../src/core/engine/doctrine.js';
import { MemoryWindowStore, type WindowStore } from '../../../src/core/engine/windows.js';
import type { SecurityEvent } from '../../../src/core/engine/event.js';
import { event } from './helpers.js';

const defaults = loadDefaultRuleset();

async function replay(
  events: readonly SecurityEvent[],
  ruleset: CompiledRuleset = defaults,
  windows: WindowStore = new MemoryWindowStore(),
): Promise<Decision[]> {
  const out: Decision[] = [];
  for (const e of events) out.push(await evaluate(e, { tenantId: 'tenant-e', ruleset, doctrine: loadDefaultDoctrine(), windows, enforcement: NO_ENFORCEMENT }));
  return out;
}

async function last(events: readonly SecurityEvent[]): Promise<Decision> {
  return (await replay(events)).at(-1)!;
}

const ATTACKER = '172.16.66.6';
const BENIGN_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36';
const times = (n: number, f: (i: number) => SecurityEvent): SecurityEvent[] => Array.from({ length: n }, (_, i) => f(i));

describe('default ruleset catches what it claims', () => {
  it('loads, and every rule has an id, description and tags', () => {
    assert.equal(defaults.version, 'default-2025.1');
    assert.ok(defaults.rules.length >= 10);
    for (const r of defaults.rules) assert.ok(r.tags.length > 0, r.id);
  });

  it('ssh-brute-force: the 5th failure in 60 s blocks the source', async () => {
    const decisions = await replay(times(5, (i) => event('auth.failure', { src_ip: ATTACKER, username: 'root', service: 'sshd' }, i * 5)));
    assert.deepEqual(
      decisions.slice(0, 4).map((d) => d.rules_triggered),
      [[], [], [], []],
    );
    const d = decisions[4]!;
    assert.deepEqual(d.rules_triggered, ['ssh-brute-force']);
    assert.equal(d.threat_level, 'high');
    const block = d.mitigations.find((m) => m.action === 'block_ip')!;
    assert.deepEqual([block.target, block.applied, block.duration_s], [ATTACKER, true, 3600]);
    assert.match(d.explanation, /ssh-brute-force \+60 \(5 events in 60 s for payload\.src_ip=172\.16\.66\.6, threshold 5\)/);
  });

  it('ssh failures spread over time do not fire', async () => {
    const d = await replay(times(10, (i) => event('auth.failure', { src_ip: ATTACKER, username: 'root', service: 'ssh' }, i * 20)));
    assert.ok(d.every((x) => x.rules_triggered.length === 0));
  });

  it('web-login-brute-force: 10 failures on one account in 5 minutes', async () => {
    const d = await last(times(10, (i) => event('auth.failure', { src_ip: ATTACKER, username: 'alice', service: 'web' }, i * 20)));
    assert.deepEqual(d.rules_triggered, ['web-login-brute-force']);
    assert.ok(d.mitigations.some((m) => m.action === 'challenge' && m.applied));
  });

  it('credential-stuffing: 10 distinct usernames from one address', async () => {
    const d = await last(times(10, (i) => event('auth.failure', { src_ip: ATTACKER, username: `user${i}`, service: 'web' }, i * 10)));
    assert.deepEqual(d.rules_triggered, ['credential-stuffing']);
    assert.equal(d.rule_hits[0]!.window!.count, 10);
  });

  it('port-scan: 20 distinct destination ports in 60 s', async () => {
    const decisions = await replay(
      times(20, (i) => event('net.connection', { src_ip: ATTACKER, dst_ip: '172.16.0.1', dst_port: 1000 + i, protocol: 'tcp' }, i)),
    );
    assert.deepEqual(decisions[18]!.rules_triggered, []);
    assert.deepEqual(decisions[19]!.rules_triggered, ['port-scan']);
  });

  it('waf-sqli and waf-xss', async () => {
    const sqli = await last([event('waf.alert', { src_ip: ATTACKER, category: 'SQLi', path: '/search' })]);
    assert.deepEqual(sqli.rules_triggered, ['waf-sqli']);
    const bySignature = await last([event('waf.alert', { src_ip: ATTACKER, signature: 'SQL Injection Attack Detected via libinjection' })]);
    assert.deepEqual(bySignature.rules_triggered, ['waf-sqli']);
    const xss = await last([event('waf.alert', { src_ip: ATTACKER, category: 'xss' })]);
    assert.deepEqual(xss.rules_triggered, ['waf-xss']);
  });

  it('http-sqli-pattern, http-xss-pattern and sensitive-path-probe', async () => {
    const req = (payload: Record<string, unknown>) =>
      event('http.request', { src_ip: ATTACKER, method: 'GET', status: 200, user_agent: BENIGN_UA, ...payload });
    assert.deepEqual((await last([req({ path: '/items', query: 'id=1 UNION ALL SELECT password FROM users' })])).rules_triggered, ['http-sqli-pattern']);
    assert.deepEqual((await last([req({ path: '/items', query: "id=1'%20OR%201=1" })])).rules_triggered, ['http-sqli-pattern']);
    assert.deepEqual((await last([req({ path: '/q', query: 'x=<script>alert(1)</script>' })])).rules_triggered, ['http-xss-pattern']);
    assert.deepEqual((await last([req({ path: '/.env' })])).rules_triggered, ['sensitive-path-probe']);
    assert.deepEqual((await last([req({ path: '/static/../../etc/passwd' })])).rules_triggered, ['sensitive-path-probe']);
  });

  it('known-bad-user-agent: scanners named in the user agent (block gated below high)', async () => {
    for (const ua of [
      'sqlmap/1.7.2#stable (https://sqlmap.org)',
      'Mozilla/5.00 (Nikto/2.5.0)',
      'masscan/1.3',
      'Nmap Scripting Engine',
      'Mozilla/5.0 zgrab/0.x',
      'Nuclei - Open-source project',
    ]) {
      const d = await last([event('http.request', { src_ip: ATTACKER, path: '/', user_agent: ua })]);
      assert.deepEqual(d.rules_triggered, ['known-bad-user-agent'], ua);
      assert.equal(d.threat_level, 'medium');
      assert.equal(d.mitigations.find((m) => m.action === 'block_ip')!.gated_by, 'min_threat_level');
    }
    // sqlmap plus a WAF SQLi hit on the same event is critical and blocked.
    const both = await last([event('waf.alert', { src_ip: ATTACKER, category: 'sqli', user_agent: 'sqlmap/1.7' })]);
    assert.equal(both.threat_level, 'critical');
    assert.equal(both.mitigations.find((m) => m.action === 'block_ip')!.applied, true);
  });

  it('denylisted-source: documentation and reserved networks', async () => {
    for (const ip of ['192.0.2.10', '2001:db8::1', '240.1.2.3']) {
      const d = await last([event('net.connection', { src_ip: ip, dst_port: 443 })]);
      assert.deepEqual(d.rules_triggered, ['denylisted-source'], ip);
      assert.equal(d.threat_level, 'critical');
    }
  });

  it('impossible-volume-per-ip and per API key', async () => {
    const perIp = await replay(times(3000, (i) => event('http.request', { src_ip: ATTACKER, path: '/', status: 200, user_agent: BENIGN_UA }, i / 60)));
    assert.deepEqual(perIp[2998]!.rules_triggered, []);
    assert.deepEqual(perIp[2999]!.rules_triggered, ['impossible-volume-per-ip']);
    assert.ok(perIp[2999]!.mitigations.some((m) => m.action === 'rate_limit' && m.applied && m.duration_s === 600));
    const perKey = await replay(times(6000, (i) => event('http.request', { src_ip: `172.17.${i % 250}.1`, key_id: 'key_abc', path: '/api' }, i / 110)));
    assert.deepEqual(perKey[5998]!.rules_triggered, []);
    assert.deepEqual(perKey[5999]!.rules_triggered, ['impossible-volume-per-api-key']);
  });
});

describe('default ruleset stays quiet on benign traffic', () => {
  it('a normal working day triggers nothing', async () => {
    const events: SecurityEvent[] = [];
    let t = 0;
    for (let i = 0; i < 40; i++) {
      const ip = `172.18.0.${(i % 20) + 1}`;
      events.push(event('auth.success', { src_ip: ip, username: `user${i % 20}`, service: 'ssh' }, (t += 7)));
      if (i % 5 === 0) events.push(event('auth.failure', { src_ip: ip, username: `user${i % 20}`, service: 'web' }, (t += 3)));
      events.push(
        event(
          'http.request',
          { src_ip: ip, method: 'GET', path: `/products/${i}`, query: 'sort=price&order=asc', status: 200, user_agent: BENIGN_UA, key_id: 'key_app' },
          (t += 1),
        ),
      );
      events.push(
        event(
          'http.request',
          { src_ip: ip, method: 'POST', path: '/api/orders', query: "note=Tom's order, select from menu", status: 201, user_agent: 'curl/8.5.0' },
          (t += 1),
        ),
      );
      for (const port of [443, 80, 22]) events.push(event('net.connection', { src_ip: ip, dst_ip: '172.16.0.1', dst_port: port, protocol: 'tcp' }, (t += 1)));
    }
    events.push(event('waf.alert', { src_ip: '172.18.0.1', category: 'protocol-anomaly' }, (t += 1)));
    const decisions = await replay(events);
    const fired = decisions.filter((d) => d.rules_triggered.length > 0);
    assert.deepEqual(
      fired.map((d) => d.explanation),
      [],
    );
    assert.ok(decisions.every((d) => d.threat_level === 'none' && d.mitigations.length === 0));
  });
});

describe('determinism', () => {
  const lowThresholds = compileRuleset({
    ...defaults.source,
    version: 'prop-1',
    rules: defaults.source.rules.map((r) => (r.window ? { ...r, window: { ...r.window, threshold: Math.min(r.window.threshold, 3) } } : r)),
  });

  const eventArb = fc.record({
    type: fc.constantFrom('auth.failure', 'auth.success', 'net.connection', 'http.request', 'waf.alert'),
    ip: fc.constantFrom('172.16.0.1', '172.16.0.2', '::ffff:172.16.0.1', '192.0.2.7', '127.0.0.1', '2001:db8::5', 'fd00::1'),
    user: fc.constantFrom('root', 'alice', 'bob', 'carol', undefined),
    port: fc.integer({ min: 20, max: 30 }),
    ua: fc.constantFrom(BENIGN_UA, 'sqlmap/1.0', 'curl/8', undefined),
    service: fc.constantFrom('ssh', 'web'),
    category: fc.constantFrom('sqli', 'xss', 'other'),
    gap: fc.integer({ min: 0, max: 90 }),
    id: fc.option(fc.constantFrom('e1', 'e2', 'e3'), { nil: undefined }),
  });

  it('the same stream from fresh stores gives deep-equal decisions', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(eventArb, { minLength: 1, maxLength: 40 }), async (specs) => {
        let t = 0;
        const events = specs.map((s) => {
          const payload: Record<string, unknown> = { src_ip: s.ip, dst_port: s.port, service: s.service, category: s.category };
          if (s.user !== undefined) payload.username = s.user;
          if (s.ua !== undefined) payload.user_agent = s.ua;
          return event(s.type, payload, (t += s.gap), s.id === undefined ? {} : { event_id: s.id });
        });
        const first = await replay(events, lowThresholds);
        const second = await replay(events, lowThresholds);
        assert.deepEqual(second, first);
        assert.equal(JSON.stringify(second), JSON.stringify(first));
      }),
      { numRuns: 60 },
    );
  });
});

describe('entityKey and decisionDiff', () => {
  it('keys a decision by normalised source IP, else username, key id or source', () => {
    assert.equal(entityKey(event('x.y', { src_ip: '::FFFF:172.16.0.1' })), 'ip:172.16.0.1');
    assert.equal(entityKey(event('x.y', { src_ip: '2001:DB8:0:0::1' })), 'ip:2001:db8::1');
    assert.equal(entityKey(event('x.y', { username: 'alice' })), 'user:alice');
    assert.equal(entityKey(event('x.y', { key_id: 'k1' })), 'key:k1');
    assert.equal(entityKey(event('x.y', {})), 'source:test-sensor');
  });

  it('describes threat level, rule and mitigation changes', async () => {
    const decisions = await replay(times(5, (i) => event('auth.failure', { src_ip: ATTACKER, username: 'root', service: 'ssh' }, i)));
    const first = decisionDiff(null, decisions[0]!);
    assert.equal(first.first, true);
    assert.equal(first.changed, true);
    assert.deepEqual(first.threat_level, { from: null, to: 'none' });
    const same = decisionDiff(decisions[0], decisions[1]!);
    assert.equal(same.changed, false);
    assert.equal(same.summary, 'no change');
    const up = decisionDiff(decisions[3], decisions[4]!);
    assert.deepEqual(up.threat_level, { from: 'none', to: 'high' });
    assert.deepEqual(up.rules_added, ['ssh-brute-force']);
    assert.deepEqual(up.mitigations_added, [
      { action: 'block_ip', target: ATTACKER },
      { action: 'alert', target: ATTACKER },
    ]);
    assert.match(up.summary, /threat level none -> high; rules added: ssh-brute-force; mitigations added: block_ip 172\.16\.66\.6, alert 172\.16\.66\.6/);
    const down = decisionDiff(decisions[4], decisions[0]!);
    assert.deepEqual(down.rules_removed, ['ssh-brute-force']);
    assert.equal(down.mitigations_removed.length, 2);
    const gated = { ...decisions[4]!, mitigations: decisions[4]!.mitigations.map((m) => ({ ...m, applied: false, gated_by: 'mode_observe' as const })) };
    const changed = decisionDiff(decisions[4], gated);
    assert.equal(changed.mitigations_changed.length, 2);
    assert.deepEqual(changed.mitigations_changed[0]!.to, { duration_s: 3600, applied: false, gated_by: 'mode_observe' });
  });
});

describe('evaluate() when a part fails', () => {
  it('rejects with a failing rule, and a window counter asked for before it never rejects unhandled', async () => {
    // The window store stands in for Redis going away mid-evaluation: its answer is a rejection.
    const windows: WindowStore = { record: () => new Promise((_, reject) => setImmediate(() => reject(new Error('redis went away')))) };
    const windowed = defaults.rules.findIndex((r) => r.id === 'ssh-brute-force');
    assert.ok(defaults.rules[windowed]!.window, 'ssh-brute-force counts in a window');
    const broken = {
      ...defaults.rules[windowed + 1]!,
      when: () => {
        throw new Error('matcher bug');
      },
    };
    const ruleset: CompiledRuleset = { ...defaults, rules: [...defaults.rules.slice(0, windowed + 1), broken, ...defaults.rules.slice(windowed + 2)] };
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const e = event('auth.failure', { service: 'ssh', src_ip: '172.16.9.9', username: 'root' });
      assert.ok(defaults.rules[windowed]!.when(e), 'the windowed rule matches, so its counter is asked for');
      await assert.rejects(
        evaluate(e, { tenantId: 'tenant-e', ruleset, doctrine: loadDefaultDoctrine(), windows, enforcement: NO_ENFORCEMENT }),
        /matcher bug|redis went away/,
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
