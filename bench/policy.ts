/**
 * Cost of a Cedar decision through the policy engine.
 *
 *   npx tsx bench/policy.ts
 *
 * Prints µs per authorize call (p50/p99) with the repository policies pre-parsed and
 * cached (what the engine does), for small entity sets and a growing one (per-entity
 * cost), then the uncached cost (policy text and schema passed to Cedar on every call)
 * for comparison, and the cost of a reload (validate + pre-parse a new version).
 */
import { pathToFileURL } from 'node:url';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { compilePolicyBundle } from '../src/policy/compile.js';
import { PolicyEngine } from '../src/policy/engine.js';
import type { AuthorizationRequest, PolicyEntity } from '../src/policy/types.js';

const NOW = 1767225600;
const ref = (type: string, id: string) => ({ __entity: { type, id } });

const template: PolicyEntity = { uid: { type: 'Template', id: 'netplus-subnetting' }, attrs: { tier: 'basic' }, parents: [{ type: 'Track', id: 'netplus' }] };

const spawnRequest = (extraEntities = 0): AuthorizationRequest => ({
  principal: { type: 'Learner', id: 'alice' },
  action: { type: 'Action', id: 'spawn' },
  resource: template.uid,
  context: {
    now: NOW,
    entitlement: { track: ref('Track', 'netplus'), tier: 'pro', credits: 5, expires_at: NOW + 86400, subject: ref('Learner', 'alice') },
    active_labs_subject: 0,
    active_labs_tenant: 3,
    spawns_today: 1,
    limits: { max_concurrent_per_subject: 2, max_concurrent_per_tenant: 20, max_spawns_per_day: 10 },
  },
  // Extra entities the policies do not need, to measure what each one costs.
  entities: [
    template,
    ...Array.from({ length: extraEntities }, (_, i): PolicyEntity => ({
      uid: { type: 'Template', id: `other-${i}` },
      attrs: { tier: 'pro' },
      parents: [{ type: 'Track', id: 'ccna' }],
    })),
  ],
});

const deployRequest: AuthorizationRequest = {
  principal: { type: 'Operator', id: 'ops-1' },
  action: { type: 'Action', id: 'deploy' },
  resource: { type: 'Change', id: 'chg_1' },
  context: {},
  entities: [
    {
      uid: { type: 'Change', id: 'chg_1' },
      attrs: {
        kind: 'ruleset',
        risk: 'high',
        origin: 'analyzer',
        approvals: 2,
        required_approvals: 2,
        canary: { passed: true, events_replayed: 1000, decisions_changed: 10, newly_blocked_entities: 2 },
      },
      parents: [{ type: 'Tenant', id: 'acme' }],
    },
  ],
};

interface Stats {
  p50: number;
  p99: number;
  mean: number;
}

function measure(iterations: number, fn: () => unknown): Stats {
  for (let i = 0; i < Math.min(200, iterations); i++) fn();
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t = process.hrtime.bigint();
    fn();
    samples[i] = Number(process.hrtime.bigint() - t) / 1000;
  }
  samples.sort();
  const at = (q: number) => samples[Math.min(iterations - 1, Math.floor(q * iterations))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), mean: samples.reduce((a, b) => a + b, 0) / iterations };
}

function row(name: string, s: Stats): void {
  console.log(`${name.padEnd(52)} p50 ${s.p50.toFixed(1).padStart(7)} µs   p99 ${s.p99.toFixed(1).padStart(7)} µs   mean ${s.mean.toFixed(1).padStart(7)} µs`);
}

export async function run(): Promise<void> {
  const engine = await PolicyEngine.load();
  const n = Number(process.env['BENCH_ITERATIONS'] ?? 3000);
  console.log(`policy engine: cedar ${cedar.getCedarVersion()}, ${engine.health().policy_count} policies, version ${engine.version}, ${n} iterations`);

  const check = (r: AuthorizationRequest, want: 'allow' | 'deny') => {
    const d = engine.authorize(r);
    if (d.decision !== want || d.errors.length > 0) throw new Error(`bench request decided ${d.decision} (${d.errors.join('; ')})`);
  };
  const spawn = spawnRequest();
  check(spawn, 'allow');
  check(deployRequest, 'allow');

  console.log('\ncached (pre-parsed policy set + schema, request validated):');
  row(
    'spawn (training + quota), 1 entity',
    measure(n, () => engine.authorize(spawn)),
  );
  row(
    'deploy (governance), 1 entity',
    measure(n, () => engine.authorize(deployRequest)),
  );
  const one = measure(n, () => engine.authorize(spawn));
  let many = one;
  for (const extra of [5, 20]) {
    const r = spawnRequest(extra);
    check(r, 'allow');
    many = measure(n, () => engine.authorize(r));
    row(`spawn, ${1 + extra} entities`, many);
  }
  console.log(`  ≈ ${((many.p50 - one.p50) / 20).toFixed(1)} µs per extra entity (p50, 21 vs 1 entities)`);

  // What the engine avoids: Cedar parses the policy text and schema on every call.
  const { policies, schema } = engine.bundle();
  const staticPolicies = { ...compilePolicyBundle({ policies, schema }).policies };
  const uncached = () =>
    cedar.isAuthorized({
      principal: spawn.principal,
      action: spawn.action,
      resource: spawn.resource,
      context: spawn.context as cedar.Context,
      entities: [template as cedar.EntityJson],
      policies: { staticPolicies },
      schema: schema as cedar.Schema,
      validateRequest: true,
    });
  const answer = uncached();
  if (answer.type !== 'success' || answer.response.decision !== 'allow') throw new Error('uncached bench request did not allow');
  console.log('\nuncached (policy text + schema passed per call):');
  row('spawn, 1 entity', measure(Math.max(200, Math.floor(n / 5)), uncached));
  const uncachedNoSchema = () =>
    cedar.isAuthorized({
      principal: spawn.principal,
      action: spawn.action,
      resource: spawn.resource,
      context: spawn.context as cedar.Context,
      entities: [template as cedar.EntityJson],
      policies: { staticPolicies },
    });
  row('spawn, 1 entity, no schema (unvalidated)', measure(Math.max(200, Math.floor(n / 5)), uncachedNoSchema));

  console.log('\nreload (parse, validate, pre-parse a version):');
  const texts = [policies, { ...policies, 'extra.cedar': '@id("bench.extra")\nforbid (principal, action == Action::"deploy", resource) when { false };\n' }];
  let i = 0;
  const reload = measure(100, () => engine.reload(texts[i++ % 2] ?? policies));
  console.log(
    `${'reload of the repository policies'.padEnd(52)} p50 ${(reload.p50 / 1000).toFixed(2).padStart(7)} ms   p99 ${(reload.p99 / 1000).toFixed(2).padStart(7)} ms`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
