import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileRuleset } from '../../../src/core/engine/ruleset.js';
import { DoctrineValidationError } from '../../../src/core/engine/errors.js';
import { doctrineIssues, loadDefaultDoctrine, NO_ENFORCEMENT, type Doctrine, type EnforcementState } from '../../../src/core/engine/doctrine.js';
import { evaluate, type Decision, type MitigationDecision } from '../../../src/core/engine/evaluate.js';
import { MemoryWindowStore } from '../../../src/core/engine/windows.js';
import { doctrine, event } from './helpers.js';

/** One rule that fires on any http.request with the given score and proposes every action. */
function rulesetScoring(score: number) {
  return compileRuleset({
    version: 'd1',
    thresholds: { low: 10, medium: 30, high: 60, critical: 90 },
    rules: [
      {
        id: 'hit',
        description: 'fires on every request',
        score,
        when: { field: 'event_type', eq: 'http.request' },
        mitigations: [
          { action: 'block_ip', target: 'payload.src_ip', duration_s: 86_400 },
          { action: 'rate_limit', target: 'payload.src_ip', duration_s: 300 },
          { action: 'challenge', target: 'payload.src_ip', duration_s: 300 },
          { action: 'alert' },
        ],
      },
      {
        id: 'block-user',
        description: 'proposes a block on a field that is not an address',
        score: 0,
        when: { field: 'payload.username', exists: true },
        mitigations: [{ action: 'block_ip', target: 'payload.username', duration_s: 60 }],
      },
    ],
  });
}

async function decide(opts: {
  score?: number;
  src_ip?: string;
  doctrine?: Partial<Doctrine>;
  enforcement?: EnforcementState;
  payload?: Record<string, unknown>;
}): Promise<Decision> {
  return evaluate(event('http.request', { src_ip: opts.src_ip ?? '172.16.0.5', ...opts.payload }), {
    tenantId: 'tenant-d',
    ruleset: rulesetScoring(opts.score ?? 70),
    doctrine: doctrine(opts.doctrine),
    windows: new MemoryWindowStore(),
    enforcement: opts.enforcement ?? NO_ENFORCEMENT,
  });
}

function byAction(d: Decision): Record<string, Pick<MitigationDecision, 'applied' | 'gated_by' | 'duration_s'>> {
  return Object.fromEntries(d.mitigations.map((m) => [m.action, { applied: m.applied, gated_by: m.gated_by, duration_s: m.duration_s }]));
}

describe('doctrine gating', () => {
  it('applies everything in active mode at high threat, clamping durations', async () => {
    const d = await decide({});
    assert.equal(d.threat_level, 'high');
    assert.deepEqual(byAction(d), {
      block_ip: { applied: true, gated_by: null, duration_s: 7200 },
      rate_limit: { applied: true, gated_by: null, duration_s: 300 },
      challenge: { applied: true, gated_by: null, duration_s: 300 },
      alert: { applied: true, gated_by: null, duration_s: 0 },
    });
  });

  it('allowlist: never disrupts an allowlisted address (IPv4 and IPv6), still alerts', async () => {
    for (const ip of ['10.10.3.4', '2001:db8:ffff::9', '::ffff:127.0.0.1']) {
      const d = await decide({ src_ip: ip });
      const gates = byAction(d);
      assert.equal(gates.block_ip!.gated_by, 'allowlist', ip);
      assert.equal(gates.rate_limit!.gated_by, 'allowlist', ip);
      assert.equal(gates.challenge!.gated_by, 'allowlist', ip);
      assert.equal(gates.alert!.applied, true, ip);
    }
  });

  it('min_threat_level: blocks only at or above the configured level', async () => {
    const medium = await decide({ score: 40 });
    assert.equal(medium.threat_level, 'medium');
    assert.deepEqual(byAction(medium).block_ip, { applied: false, gated_by: 'min_threat_level', duration_s: 7200 });
    assert.equal(byAction(medium).rate_limit!.applied, true);
    const lowered = await decide({ score: 40, doctrine: { block_min_threat_level: 'medium' } });
    assert.equal(byAction(lowered).block_ip!.applied, true);
  });

  it('max_active_blocks: counts active blocks from the caller, and blocks applied in the same decision', async () => {
    const full = await decide({ enforcement: { activeBlocks: () => 100, blocksApplied: () => 0 } });
    assert.equal(byAction(full).block_ip!.gated_by, 'max_active_blocks');
    const oneLeft = await decide({ enforcement: { activeBlocks: async () => 99, blocksApplied: () => 0 }, payload: { username: '172.16.9.9' } });
    const blocks = oneLeft.mitigations.filter((m) => m.action === 'block_ip');
    assert.deepEqual(
      blocks.map((m) => [m.target, m.applied, m.gated_by]),
      [
        ['172.16.0.5', true, null],
        ['172.16.9.9', false, 'max_active_blocks'],
      ],
    );
  });

  it('blocks_per_window: asks for blocks in the doctrine window ending at the event time', async () => {
    const asked: Array<[number, number]> = [];
    const d = await decide({
      enforcement: {
        activeBlocks: () => 0,
        blocksApplied: (_tenant, since, at) => {
          asked.push([since, at]);
          return 10;
        },
      },
    });
    assert.equal(byAction(d).block_ip!.gated_by, 'blocks_per_window');
    const at = Date.parse('2025-03-01T12:00:00Z');
    assert.deepEqual(asked, [[at - 60_000, at]]);
  });

  it('mode_observe: nothing applied, but other clauses still named', async () => {
    const d = await decide({ doctrine: { mode: 'observe' } });
    assert.ok(d.mitigations.every((m) => !m.applied && m.gated_by === 'mode_observe'));
    const allowlisted = await decide({ doctrine: { mode: 'observe' }, src_ip: '10.10.0.1' });
    assert.equal(byAction(allowlisted).block_ip!.gated_by, 'allowlist');
    assert.equal(byAction(allowlisted).alert!.gated_by, 'mode_observe');
  });

  it('mode_guarded: only non-disruptive actions applied', async () => {
    const d = await decide({ doctrine: { mode: 'guarded' } });
    assert.deepEqual(
      d.mitigations.map((m) => [m.action, m.applied, m.gated_by]),
      [
        ['block_ip', false, 'mode_guarded'],
        ['rate_limit', false, 'mode_guarded'],
        ['challenge', false, 'mode_guarded'],
        ['alert', true, null],
      ],
    );
    const relaxed = await decide({ doctrine: { mode: 'guarded', non_disruptive_actions: ['alert', 'rate_limit'] } });
    assert.equal(byAction(relaxed).rate_limit!.applied, true);
  });

  it('invalid_target: block_ip on something that is not an address', async () => {
    const d = await decide({ payload: { username: 'alice' } });
    const bad = d.mitigations.find((m) => m.target === 'alice')!;
    assert.deepEqual([bad.action, bad.applied, bad.gated_by], ['block_ip', false, 'invalid_target']);
  });

  it('not_a_host: unspecified, broadcast and multicast addresses are never blocked, whatever the doctrine says', async () => {
    const open = { allowlist_cidrs: [], max_active_blocks: 1000, blocks_per_window: { window_s: 60, max: 1000 } };
    for (const ip of [
      '0.0.0.0',
      '::',
      '::ffff:0.0.0.0',
      '255.255.255.255',
      '0.12.34.56',
      '224.0.0.1',
      '239.255.255.250',
      'ff02::1',
      '::ffff:255.255.255.255',
    ]) {
      const d = await decide({ src_ip: ip, doctrine: open });
      const m = byAction(d);
      for (const action of ['block_ip', 'rate_limit', 'challenge'])
        assert.deepEqual([m[action]!.applied, m[action]!.gated_by], [false, 'not_a_host'], `${action} ${ip}`);
      assert.equal(m.alert!.applied, true, `alert ${ip}: the event is still reported`);
      assert.match(d.explanation, /block_ip \S+ for \d+ s: not applied \(not_a_host\)/, ip);
    }
    // Their neighbours are ordinary hosts, and loopback stays the doctrine's choice (its allowlist).
    for (const ip of ['1.0.0.0', '255.255.255.254', '223.255.255.255', '240.0.0.1', '::2', 'fe80::1', '127.0.0.1']) {
      assert.equal(byAction(await decide({ src_ip: ip, doctrine: open })).block_ip!.applied, true, ip);
    }
    assert.equal(byAction(await decide({ src_ip: '127.0.0.1' })).block_ip!.gated_by, 'allowlist');
  });

  it('validates doctrine with paths, and ships a valid default', () => {
    const issues = doctrineIssues({
      version: 'x',
      mode: 'yolo',
      allowlist_cidrs: ['10.0.0.0/8', '300.1.1.1/32'],
      block_min_threat_level: 'high',
      max_active_blocks: 1,
      blocks_per_window: { window_s: 60, max: 1 },
      max_duration_s: {},
    });
    assert.deepEqual(
      issues.map((i) => i.path),
      ['mode'],
    );
    const semantic = doctrineIssues({
      version: 'x',
      mode: 'active',
      allowlist_cidrs: ['10.0.0.0/8', '300.1.1.1/32'],
      block_min_threat_level: 'high',
      max_active_blocks: 1,
      blocks_per_window: { window_s: 60, max: 1 },
      max_duration_s: {},
      non_disruptive_actions: ['alert', 'block_ip'],
    });
    assert.deepEqual(
      semantic.map((i) => `${i.path}: ${i.message}`),
      [
        'allowlist_cidrs[1]: invalid CIDR "300.1.1.1/32": "300.1.1.1" is not an IPv4 or IPv6 address',
        'non_disruptive_actions[1]: block_ip is always disruptive',
      ],
    );
    assert.throws(() => doctrine({ allowlist_cidrs: ['nope'] }), DoctrineValidationError);
    const shipped = loadDefaultDoctrine();
    assert.equal(shipped.mode, 'active');
    assert.equal(shipped.blockMinThreatLevel, 'high');
  });
});
