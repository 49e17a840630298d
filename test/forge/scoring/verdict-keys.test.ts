import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, test } from 'node:test';
import { newScenarioId } from '../../../src/forge/orchestrator/service.js';
import { ScenarioStore } from '../../../src/forge/orchestrator/store.js';
import { loadTemplate } from '../../../src/forge/templates/load.js';
import { signVerdict, VerdictError, verdictKeyId } from '../../../src/forge/scoring/verdict.js';
import {
  encodeVerdictKeySet,
  parseVerdictKeySet,
  publishVerdictKey,
  verdictKeyFingerprint,
  VERDICT_KEYS_OBJECT,
  verifyVerdictWithKeySet,
  withCurrentKey,
} from '../../../src/forge/scoring/verdict-keys.js';
import { canonicalize } from '../../../src/platform/crypto/canonical-json.js';
import { exportPrivateKeyPem, exportPublicKeyPem, generateEd25519KeyPair, publicKeyOf } from '../../../src/platform/crypto/ed25519.js';
import { FilesystemStorage } from '../../../src/platform/storage/filesystem.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { ROOT, runCli } from '../../helpers/cli.js';

const score = (total: number) => Buffer.from(canonicalize({ scenario_id: 'scn_keyset', total }));
const EVIDENCE = Buffer.from('evidence bytes');
const verdictBy = (privateKey: ReturnType<typeof generateEd25519KeyPair>['privateKey'], signedAt: string, total = 10) => {
  const signed = signVerdict({ scoreBytes: score(total), evidenceBytes: EVIDENCE, privateKey, signedAt });
  return { scoreBytes: score(total), evidenceBytes: EVIDENCE, sigBytes: signed.sigBytes };
};

describe('verdict key set', () => {
  const a = generateEd25519KeyPair().privateKey;
  const b = generateEd25519KeyPair().privateKey;
  const t0 = new Date('2026-01-01T00:00:00.000Z');
  const t1 = new Date('2026-03-01T00:00:00.000Z');

  it('records the first key as current, then a rotation: the old key retired at the instant the new one became current', () => {
    const first = withCurrentKey(undefined, publicKeyOf(a), t0);
    assert.equal(first.changed, true);
    assert.deepEqual(
      first.set.keys.map((k) => [k.key_id, k.status, k.valid_from, k.valid_until]),
      [[verdictKeyId(a), 'current', null, null]],
    );
    assert.equal(first.set.keys[0]!.fingerprint_sha256, verdictKeyFingerprint(a));
    assert.equal(withCurrentKey(first.set, publicKeyOf(a), t1).changed, false, 'the current key again changes nothing');

    const rotated = withCurrentKey(first.set, publicKeyOf(b), t1);
    assert.equal(rotated.retired, verdictKeyId(a));
    assert.deepEqual(
      rotated.set.keys.map((k) => [k.key_id, k.status, k.valid_from, k.valid_until]),
      [
        [verdictKeyId(a), 'retired', null, t1.toISOString()],
        [verdictKeyId(b), 'current', t1.toISOString(), null],
      ],
    );
    assert.deepEqual(rotated.set.rotations, [
      { at: t0.toISOString(), retired: null, activated: verdictKeyId(a) },
      { at: t1.toISOString(), retired: verdictKeyId(a), activated: verdictKeyId(b) },
    ]);
    // The file round-trips; a retired key is never made current again.
    assert.deepEqual(parseVerdictKeySet(encodeVerdictKeySet(rotated.set)), rotated.set);
    assert.throws(
      () => withCurrentKey(rotated.set, publicKeyOf(a), new Date()),
      (err: unknown) => err instanceof VerdictError && err.code === 'verdict_key_retired',
    );
  });

  it("verifies each verdict with the key it names, inside that key's period only", () => {
    const set = withCurrentKey(withCurrentKey(undefined, publicKeyOf(a), t0).set, publicKeyOf(b), t1).set;
    assert.ok(verifyVerdictWithKeySet(verdictBy(a, '2025-06-01T00:00:00.000Z'), set).ok, 'the first key covers verdicts from before the set existed');
    assert.ok(verifyVerdictWithKeySet(verdictBy(a, '2026-02-28T23:59:59.999Z'), set).ok, 'a retired key verifies what it signed while current');
    const late = verifyVerdictWithKeySet(verdictBy(a, t1.toISOString()), set, { setLabel: 'verdict-keys.json' });
    assert.ok(!late.ok);
    assert.match(
      late.problems[0]!,
      new RegExp(
        `^verdict\\.sig: signed at 2026-03-01T00:00:00\\.000Z, outside the period key ${verdictKeyId(a)} ` +
          `was current in verdict-keys\\.json \\(from the start until 2026-03-01T00:00:00\\.000Z\\)`,
      ),
    );
    assert.ok(verifyVerdictWithKeySet(verdictBy(b, t1.toISOString()), set).ok);
    assert.ok(!verifyVerdictWithKeySet(verdictBy(b, '2026-02-01T00:00:00.000Z'), set).ok, 'the new key did not sign before it was current');
    // Narrowed to one key, by id or fingerprint.
    assert.ok(verifyVerdictWithKeySet(verdictBy(b, t1.toISOString()), set, { keyId: verdictKeyFingerprint(b) }).ok);
    assert.ok(!verifyVerdictWithKeySet(verdictBy(a, t0.toISOString()), set, { keyId: verdictKeyId(b) }).ok);
    // A tampered score fails through the set too.
    const honest = verdictBy(b, t1.toISOString());
    const tampered = verifyVerdictWithKeySet({ ...honest, scoreBytes: score(99) }, set);
    assert.ok(!tampered.ok && tampered.problems.some((p) => p.startsWith('score.json: SHA-256')));
  });

  it('refuses a key set that lies about its keys or periods', () => {
    const good = JSON.parse(encodeVerdictKeySet(withCurrentKey(withCurrentKey(undefined, publicKeyOf(a), t0).set, publicKeyOf(b), t1).set).toString('utf8'));
    const broken: Array<[string, (s: typeof good) => void, RegExp]> = [
      ['a key id that is not its key', (s) => (s.keys[0].key_id = verdictKeyId(b)), /keys\[0\]\.key_id .* is not the key id of its public_key/],
      ['a fingerprint that is not its key', (s) => (s.keys[1].fingerprint_sha256 = verdictKeyFingerprint(a)), /keys\[1\]\.fingerprint_sha256/],
      [
        'two current keys',
        (s) => {
          s.keys[0].valid_until = null;
          s.keys[0].status = 'current';
        },
        /more than one key is current/,
      ],
      ['a status that contradicts valid_until', (s) => (s.keys[0].status = 'current'), /status must be "current" exactly when valid_until is null/],
      [
        'a period ending before it starts',
        (s) => {
          s.keys[1].valid_until = '2025-01-01T00:00:00.000Z';
          s.keys[1].status = 'retired';
        },
        /valid until before it is valid from/,
      ],
      ['a public key that is not Ed25519', (s) => (s.keys[0].public_key = 'nope'), /keys\[0\]\.public_key/],
      ['a rotation naming an unknown key', (s) => (s.rotations[1].activated = 'ffffffffffffffff'), /rotations\[1\]/],
      ['another document', (s) => (s.type = 'frostgate.forge.verdict'), /not a verdict key set/],
    ];
    for (const [what, edit, message] of broken) {
      const copy = structuredClone(good);
      edit(copy);
      assert.throws(
        () => parseVerdictKeySet(JSON.stringify(copy)),
        (err: unknown) => err instanceof VerdictError && err.code === 'verdict_key_set_invalid' && message.test(err.message),
        what,
      );
    }
    assert.throws(() => parseVerdictKeySet('not json'), /not JSON/);
  });

  it('publishes into the object store only for a lasting key', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'fg-keyset-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const storage = new FilesystemStorage(dir);
    const ephemeral = await publishVerdictKey(storage, { publicKey: publicKeyOf(a), ephemeral: true }, t0);
    assert.equal(ephemeral.set.keys[0]!.key_id, verdictKeyId(a));
    assert.equal(await storage.get(VERDICT_KEYS_OBJECT), undefined, 'an ephemeral key is never published');
    await publishVerdictKey(storage, { publicKey: publicKeyOf(a), ephemeral: false }, t0);
    const stored = parseVerdictKeySet((await storage.get(VERDICT_KEYS_OBJECT))!);
    assert.deepEqual(
      stored.keys.map((k) => k.key_id),
      [verdictKeyId(a)],
    );
    await writeFile(join(dir, VERDICT_KEYS_OBJECT), '{"v":2}');
    await assert.rejects(
      publishVerdictKey(storage, { publicKey: publicKeyOf(a), ephemeral: false }),
      (err: unknown) => err instanceof VerdictError && err.code === 'verdict_key_set_invalid',
    );
  });
});

/**
 * A rolling rotation across two scoreboards sharing one object store: the set the second one
 * publishes retires the first one's key, the first one stops grading, a restart with the retired
 * key is refused, and verdicts of both keys verify against the set for their periods.
 */
test('scoreboard key rotation: published set, GET /v1/verdicts/keys, grading refused with a retired key, verify-verdict --keys', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-keyrot-'));
  const apps: TestApp[] = [];
  t.after(async () => {
    for (const app of apps) await app.close();
    await rm(dir, { recursive: true, force: true });
  });
  const keyA = generateEd25519KeyPair().privateKey;
  const keyB = generateEd25519KeyPair().privateKey;
  await writeFile(join(dir, 'a.pem'), exportPrivateKeyPem(keyA), { mode: 0o600 });
  await writeFile(join(dir, 'b.pem'), exportPrivateKeyPem(keyB), { mode: 0o600 });
  const storageDir = join(dir, 'storage');
  const start = async (key: 'a' | 'b') => {
    const app = await startTestApp({ env: { SIGNING_KEY_PATH: join(dir, `${key}.pem`), FG_STORAGE_DIR: storageDir, FG_DATA_DIR: join(dir, `data-${key}`) } });
    apps.push(app);
    return app;
  };
  const template = await loadTemplate(join(ROOT, 'templates/netplus-two-subnets.yaml'));
  const runningScenario = async (app: TestApp) => {
    const store = new ScenarioStore(app.platform.db);
    const id = newScenarioId();
    await store.insert(app.tenantId, {
      scenario_id: id,
      template_id: template.id,
      template_version: template.version,
      track: template.track,
      subject: 'carol',
      expires_at: new Date(Date.now() + 3_600_000),
    });
    await store.transition(app.tenantId, id, 'provisioning');
    await store.transition(app.tenantId, id, 'running', { devices: [] });
    return id;
  };
  const complete = (app: TestApp, id: string) =>
    app.app.inject({ method: 'POST', url: `/internal/scenario/${id}/complete`, headers: { 'x-api-key': app.adminKey }, payload: { reason: 'ttl' } });
  const keysOf = (app: TestApp, key = app.adminKey) => app.app.inject({ url: '/v1/verdicts/keys', headers: key ? { 'x-api-key': key } : {} });
  const resultsOf = (id: string) => join(storageDir, 'scenarios', id, 'results');

  const appA = await start('a');
  const published = parseVerdictKeySet(await readFile(join(storageDir, VERDICT_KEYS_OBJECT)));
  assert.deepEqual(
    published.keys.map((k) => [k.key_id, k.status, k.valid_from]),
    [[verdictKeyId(keyA), 'current', null]],
  );
  assert.equal(published.keys[0]!.public_key, exportPublicKeyPem(keyA));
  const served = await keysOf(appA);
  assert.equal(served.statusCode, 200, served.body);
  assert.deepEqual(served.json(), published);
  assert.equal((await keysOf(appA, '')).statusCode, 401);
  // Any valid key reads it: the keys are public and the same for every tenant.
  await appA.auth.store.createTenant('learners-inc');
  const otherTenant = (await appA.auth.store.createKey({ tenantId: 'learners-inc', scopes: ['decisions:read'] })).key;
  assert.equal((await keysOf(appA, otherTenant)).statusCode, 200);

  const gradedByA = await complete(appA, await runningScenario(appA));
  assert.equal(gradedByA.statusCode, 200, gradedByA.body);
  assert.equal(gradedByA.json().key_id, verdictKeyId(keyA));
  const verdictA = join(dir, 'verdict-a');
  await cp(resultsOf(gradedByA.json().scenario_id), verdictA, { recursive: true });

  // The second scoreboard starts with the new key while the first still runs.
  const appB = await start('b');
  const rotated = (await keysOf(appA)).json();
  assert.deepEqual(rotated, (await keysOf(appB)).json(), 'every scoreboard serves the stored set');
  assert.deepEqual(
    rotated.keys.map((k: { key_id: string; status: string }) => [k.key_id, k.status]),
    [
      [verdictKeyId(keyA), 'retired'],
      [verdictKeyId(keyB), 'current'],
    ],
  );
  assert.equal(rotated.keys[0].valid_until, rotated.keys[1].valid_from);
  assert.deepEqual(
    rotated.rotations.map((r: { retired: string | null; activated: string }) => [r.retired, r.activated]),
    [
      [null, verdictKeyId(keyA)],
      [verdictKeyId(keyA), verdictKeyId(keyB)],
    ],
  );

  // The old scoreboard signs nothing more; its scenario stays running for another to grade.
  const stillRunning = await runningScenario(appA);
  const refused = await complete(appA, stillRunning);
  assert.equal(refused.statusCode, 503, refused.body);
  assert.equal(refused.json().reason, 'verdict_key_retired');
  assert.equal((await new ScenarioStore(appA.platform.db).get(appA.tenantId, stillRunning)).state, 'running');
  const gradedByB = await complete(appB, await runningScenario(appB));
  assert.equal(gradedByB.statusCode, 200, gradedByB.body);
  assert.equal(gradedByB.json().key_id, verdictKeyId(keyB));

  // A restart with the retired key is refused.
  await assert.rejects(start('a'), (err: unknown) => err instanceof VerdictError && err.code === 'verdict_key_retired');

  // Verifiers pin the served set: both verdicts pass, each for its own key's period.
  const setFile = join(dir, 'verdict-keys.json');
  await writeFile(setFile, JSON.stringify(rotated));
  const verify = (results: string, ...extra: string[]) =>
    runCli([
      'verify-verdict',
      join(results, 'score.json'),
      join(results, 'evidence.tar.zst'),
      join(results, 'verdict.sig'),
      join(results, 'verdict.pub'),
      '--keys',
      setFile,
      ...extra,
    ]);
  const passA = await verify(verdictA);
  assert.equal(passA.code, 0, passA.stdout + passA.stderr);
  assert.match(passA.stdout, new RegExp(`key ${verdictKeyId(keyA)} \\(in the key set .*, retired, valid until ${rotated.keys[0].valid_until}\\)`));
  const passB = await verify(resultsOf(gradedByB.json().scenario_id));
  assert.equal(passB.code, 0, passB.stdout + passB.stderr);
  assert.match(passB.stdout, new RegExp(`key ${verdictKeyId(keyB)} \\(in the key set .*, current since ${rotated.keys[1].valid_from}\\)`));

  // The retired key signing after its retirement (a leaked key, or an old scoreboard) fails.
  const late = join(dir, 'late');
  await cp(verdictA, late, { recursive: true });
  const lateSig = signVerdict({
    scoreBytes: await readFile(join(late, 'score.json')),
    evidenceBytes: await readFile(join(late, 'evidence.tar.zst')),
    privateKey: keyA,
    signedAt: new Date().toISOString(),
  });
  await writeFile(join(late, 'verdict.sig'), lateSig.sigBytes);
  const failLate = await verify(late);
  assert.equal(failLate.code, 1, failLate.stdout);
  assert.match(failLate.stdout, new RegExp(`^FAIL: .*verdict\\.sig: signed at .*, outside the period key ${verdictKeyId(keyA)} was current`, 'm'));
});
