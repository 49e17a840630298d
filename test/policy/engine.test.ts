import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { PolicyEngine } from '../../src/policy/engine.js';
import { PolicyLoadError, type PolicyLoadErrorCode } from '../../src/policy/errors.js';
import { DEFAULT_POLICY_DIR } from '../../src/policy/load.js';
import type { AuthorizationRequest } from '../../src/policy/types.js';

// A small self-contained schema so these tests do not depend on the product policies.
const SCHEMA = `
entity User;
entity Doc = { level: Long };
action read appliesTo { principal: User, resource: Doc, context: { n: Long } };
`;
const ALLOW_ALL = '@id("docs.allow")\npermit (principal, action == Action::"read", resource);\n';
const FORBID_LEVEL = '@id("docs.secret")\nforbid (principal, action, resource) when { resource.level > 3 };\n';

const read = (level: number, n = 0): AuthorizationRequest => ({
  principal: { type: 'User', id: 'u1' },
  action: { type: 'Action', id: 'read' },
  resource: { type: 'Doc', id: 'd1' },
  context: { n },
  entities: [{ uid: { type: 'Doc', id: 'd1' }, attrs: { level } }],
});

async function tempDir(t: TestContext, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fg-policy-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

function loadError(code: PolicyLoadErrorCode) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof PolicyLoadError, `expected PolicyLoadError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

describe('PolicyEngine loading', () => {
  it('loads the repository policies with a version, every policy id and no warnings', async () => {
    const engine = await PolicyEngine.load();
    assert.match(engine.version, /^pol_[0-9a-f]{16}$/);
    const h = engine.health();
    assert.equal(h.ready, true);
    assert.equal(h.version, engine.version);
    assert.deepEqual(h.sources, ['extend.cedar', 'governance.cedar', 'quota.cedar', 'spawn.cedar', 'training.cedar']);
    assert.equal(h.policy_count, Object.keys(engine.policies()).length);
    assert.equal(engine.policies()['training.netplus'], 'training.cedar');
    assert.equal(engine.policies()['quota.daily_spawns'], 'quota.cedar');
    assert.equal(engine.policies()['spawn.entitlement_other_tenant'], 'spawn.cedar');
    assert.equal(engine.policies()['governance.approved'], 'governance.cedar');
    assert.deepEqual(engine.warnings(), []);
    assert.deepEqual(await engine.healthCheck().check(), { version: engine.version, policies: h.policy_count });
  });

  it('rejects a policy that reads an attribute the schema does not declare, naming file, policy and line', () => {
    const bad = '// first line\n@id("docs.typo")\nforbid (principal, action, resource)\n  when { resource.levle > 3 };\n';
    assert.throws(
      () => PolicyEngine.fromBundle({ policies: { 'ok.cedar': ALLOW_ALL, 'bad.cedar': bad }, schema: SCHEMA }),
      (err: unknown) => {
        loadError('policy_validation')(err);
        const e = err as PolicyLoadError;
        assert.equal(e.issues.length, 1);
        const [issue] = e.issues;
        assert.equal(issue?.source, 'bad.cedar');
        assert.equal(issue?.policyId, 'docs.typo');
        assert.equal(issue?.line, 4);
        assert.match(issue?.message ?? '', /levle/);
        assert.match(e.message, /bad\.cedar:4:\d+: policy docs\.typo: .*levle/);
        return true;
      },
    );
  });

  it('rejects an edit of the repository training policy that reads an undeclared entitlement attribute', async () => {
    const engine = await PolicyEngine.load();
    const { policies } = engine.bundle();
    const training = policies['training.cedar'] ?? '';
    const edited = training.replace('context.entitlement.credits <= 0', 'context.entitlement.balance <= 0');
    assert.notEqual(edited, training);
    const before = engine.version;
    assert.throws(
      () => engine.reload({ ...policies, 'training.cedar': edited }),
      (err: unknown) => {
        loadError('policy_validation')(err);
        const [issue] = (err as PolicyLoadError).issues;
        assert.equal(issue?.source, 'training.cedar');
        assert.equal(issue?.policyId, 'training.no_credits');
        assert.match(issue?.message ?? '', /balance/);
        assert.equal(edited.split('\n')[(issue?.line ?? 0) - 1]?.includes('balance'), true, 'line points at the edit');
        return true;
      },
    );
    assert.equal(engine.version, before);
  });

  it('rejects a context attribute the action does not declare', () => {
    const bad = '@id("docs.ctx")\nforbid (principal, action == Action::"read", resource) when { context.m > 1 };\n';
    assert.throws(() => PolicyEngine.fromBundle({ policies: { 'ctx.cedar': bad }, schema: SCHEMA }), loadError('policy_validation'));
  });

  it('rejects a syntax error with the file and line', () => {
    const bad = `${ALLOW_ALL}\n@id("docs.broken")\nforbid (principal, action, resource) when { resource.level > };\n`;
    assert.throws(
      () => PolicyEngine.fromBundle({ policies: { 'broken.cedar': bad }, schema: SCHEMA }),
      (err: unknown) => {
        loadError('policy_syntax')(err);
        const [issue] = (err as PolicyLoadError).issues;
        assert.equal(issue?.source, 'broken.cedar');
        assert.equal(issue?.line, 5);
        return true;
      },
    );
  });

  it('requires an @id on every policy and refuses an id used twice, naming both files', () => {
    assert.throws(
      () => PolicyEngine.fromBundle({ policies: { 'a.cedar': 'permit (principal, action, resource);' }, schema: SCHEMA }),
      (err: unknown) => loadError('policy_id')(err) && /no @id/.test((err as Error).message) && /a\.cedar:1:1/.test((err as Error).message),
    );
    assert.throws(
      () => PolicyEngine.fromBundle({ policies: { 'a.cedar': ALLOW_ALL, 'b.cedar': ALLOW_ALL }, schema: SCHEMA }),
      (err: unknown) => loadError('policy_id')(err) && /b\.cedar.*docs\.allow.*already used in a\.cedar/.test((err as Error).message),
    );
  });

  it('refuses policy templates', () => {
    const tpl = '@id("docs.tpl")\npermit (principal == ?principal, action, resource);\n';
    assert.throws(() => PolicyEngine.fromBundle({ policies: { 't.cedar': tpl }, schema: SCHEMA }), loadError('policy_template_unsupported'));
  });

  it('refuses an invalid schema, naming the schema file and line', () => {
    const schema = 'entity User;\nentity Doc = { level: Lng };\n';
    assert.throws(
      () => PolicyEngine.fromBundle({ policies: { 'a.cedar': ALLOW_ALL }, schema }),
      (err: unknown) => {
        loadError('policy_schema_invalid')(err);
        const [issue] = (err as PolicyLoadError).issues;
        assert.equal(issue?.source, 'schema.cedarschema');
        assert.equal(issue?.line, 2);
        assert.match(issue?.message ?? '', /Lng/);
        return true;
      },
    );
  });

  it('a missing policies directory is a clear error naming the path', async () => {
    const dir = join(tmpdir(), `fg-policy-missing-${process.pid}-${Date.now()}`);
    await assert.rejects(
      PolicyEngine.load(dir),
      (err: unknown) => loadError('policy_dir_missing')(err) && (err as Error).message.includes(dir) && /does not exist/.test((err as Error).message),
    );
  });

  it('a directory without policy files or without a schema is refused', async (t) => {
    const noPolicies = await tempDir(t, { 'schema.cedarschema': SCHEMA });
    await assert.rejects(PolicyEngine.load(noPolicies), loadError('policy_set_empty'));
    const noSchema = await tempDir(t, { 'docs.cedar': ALLOW_ALL });
    await assert.rejects(PolicyEngine.load(noSchema), loadError('policy_schema_missing'));
    const onlyComments = await tempDir(t, { 'docs.cedar': '// nothing here yet\n', 'schema.cedarschema': SCHEMA });
    await assert.rejects(PolicyEngine.load(onlyComments), loadError('policy_set_empty'));
  });

  it('loads a schema in Cedar JSON format (schema.cedarschema.json)', async (t) => {
    const json = cedar.schemaToJson(await readFile(join(DEFAULT_POLICY_DIR, 'schema.cedarschema'), 'utf8'));
    assert.equal(json.type, 'success');
    if (json.type !== 'success') return;
    const files: Record<string, string> = { 'schema.cedarschema.json': JSON.stringify(json.json) };
    for (const f of ['training.cedar', 'quota.cedar', 'governance.cedar']) files[f] = await readFile(join(DEFAULT_POLICY_DIR, f), 'utf8');
    const engine = await PolicyEngine.load(await tempDir(t, files));
    assert.ok(engine.policies()['training.cissp']);
  });
});

describe('PolicyEngine decisions', () => {
  it('allows and denies with the deciding policy ids and the version', () => {
    const engine = PolicyEngine.fromBundle({ policies: { 'docs.cedar': ALLOW_ALL + FORBID_LEVEL }, schema: SCHEMA });
    assert.deepEqual(engine.authorize(read(1)), { decision: 'allow', reasons: ['docs.allow'], errors: [], version: engine.version });
    assert.deepEqual(engine.authorize(read(5)), { decision: 'deny', reasons: ['docs.secret'], errors: [], version: engine.version });
  });

  it('denies a request that does not match the schema and says why', () => {
    const engine = PolicyEngine.fromBundle({ policies: { 'docs.cedar': ALLOW_ALL }, schema: SCHEMA });
    const d = engine.authorize({ ...read(1), context: { n: 1, extra: true } });
    assert.equal(d.decision, 'deny');
    assert.match(d.errors.join('\n'), /extra/);
    const noEntityAttr = engine.authorize({ ...read(1), entities: [{ uid: { type: 'Doc', id: 'd1' } }] });
    assert.equal(noEntityAttr.decision, 'deny');
    assert.match(noEntityAttr.errors.join('\n'), /level/);
  });

  it('fails closed when a forbid errors at evaluation, where Cedar alone would allow', () => {
    // 2^62 * n overflows a Cedar Long for n >= 2: the forbid errors and Cedar skips it.
    const overflow = '@id("docs.overflow")\nforbid (principal, action, resource) when { context.n * 4611686018427387904 > 0 };\n';
    const engine = PolicyEngine.fromBundle({ policies: { 'docs.cedar': ALLOW_ALL + overflow }, schema: SCHEMA });
    assert.equal(engine.authorize(read(1, 0)).decision, 'allow');
    const d = engine.authorize(read(1, 2));
    assert.equal(d.decision, 'deny');
    assert.deepEqual(d.reasons, ['docs.allow']);
    assert.match(d.errors[0] ?? '', /^docs\.overflow: .*overflow/);
  });

  it('reload changes decisions and the version; the same texts give the same version', () => {
    const engine = PolicyEngine.fromBundle({ policies: { 'docs.cedar': ALLOW_ALL }, schema: SCHEMA });
    const v1 = engine.version;
    assert.equal(engine.authorize(read(5)).decision, 'allow');

    const v2 = engine.reload({ 'docs.cedar': ALLOW_ALL + FORBID_LEVEL });
    assert.notEqual(v2, v1);
    assert.equal(engine.version, v2);
    assert.deepEqual(engine.authorize(read(5)), { decision: 'deny', reasons: ['docs.secret'], errors: [], version: v2 });
    assert.equal(engine.health().reloads, 1);
    assert.deepEqual(engine.bundle().policies, { 'docs.cedar': ALLOW_ALL + FORBID_LEVEL });

    // Rolling back to the first texts restores the first version id and its decisions.
    assert.equal(engine.reload({ 'docs.cedar': ALLOW_ALL }), v1);
    assert.equal(engine.authorize(read(5)).decision, 'allow');
    // Many reloads reuse the engine's two cache slots and keep deciding correctly.
    for (let i = 0; i < 5; i++) engine.reload({ 'docs.cedar': i % 2 === 0 ? ALLOW_ALL + FORBID_LEVEL : ALLOW_ALL });
    assert.equal(engine.authorize(read(5)).decision, 'deny');
  });

  it('a failed reload throws and leaves the previous version deciding', () => {
    const engine = PolicyEngine.fromBundle({ policies: { 'docs.cedar': ALLOW_ALL + FORBID_LEVEL }, schema: SCHEMA });
    const v1 = engine.version;
    const bad = '@id("docs.bad")\nforbid (principal, action, resource) when { resource.nope };\n';
    assert.throws(() => engine.reload({ 'docs.cedar': ALLOW_ALL, 'bad.cedar': bad }), loadError('policy_validation'));
    assert.equal(engine.version, v1);
    assert.deepEqual(engine.authorize(read(5)).reasons, ['docs.secret']);
    assert.equal(engine.health().reloads, 0);
  });

  it('reload can change the schema together with the policies', () => {
    const engine = PolicyEngine.fromBundle({ policies: { 'docs.cedar': ALLOW_ALL }, schema: SCHEMA });
    const schema2 = SCHEMA.replace('{ level: Long }', '{ level: Long, owner: User }');
    const own = '@id("docs.owner")\nforbid (principal, action, resource) unless { resource.owner == principal };\n';
    engine.reload({ 'docs.cedar': ALLOW_ALL + own }, schema2);
    const req = (owner: string): AuthorizationRequest => ({
      ...read(1),
      entities: [{ uid: { type: 'Doc', id: 'd1' }, attrs: { level: 1, owner: { __entity: { type: 'User', id: owner } } } }],
    });
    assert.equal(engine.authorize(req('u1')).decision, 'allow');
    assert.deepEqual(engine.authorize(req('u2')).reasons, ['docs.owner']);
  });

  it('reloadFromDirectory picks up edited files', async (t) => {
    const dir = await tempDir(t, { 'docs.cedar': ALLOW_ALL, 'schema.cedarschema': SCHEMA });
    const engine = await PolicyEngine.load(dir);
    assert.equal(engine.authorize(read(9)).decision, 'allow');
    await writeFile(join(dir, 'docs.cedar'), ALLOW_ALL + FORBID_LEVEL);
    const v = await engine.reloadFromDirectory(dir);
    assert.equal(engine.authorize(read(9)).decision, 'deny');
    assert.equal(engine.authorize(read(9)).version, v);
  });

  it('two engines in one process keep their own policies', () => {
    const open = PolicyEngine.fromBundle({ policies: { 'docs.cedar': ALLOW_ALL }, schema: SCHEMA });
    const strict = PolicyEngine.fromBundle({ policies: { 'docs.cedar': ALLOW_ALL + FORBID_LEVEL }, schema: SCHEMA });
    assert.equal(open.authorize(read(5)).decision, 'allow');
    assert.equal(strict.authorize(read(5)).decision, 'deny');
    open.reload({ 'docs.cedar': ALLOW_ALL });
    assert.equal(strict.authorize(read(5)).decision, 'deny');
  });
});
