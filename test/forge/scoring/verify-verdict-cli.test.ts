import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildEvidenceArchive } from '../../../src/forge/scoring/evidence-archive.js';
import { loadVerdictSigningKey, signVerdict } from '../../../src/forge/scoring/verdict.js';
import { publishVerdictKey, verdictKeyFingerprint, VERDICT_KEYS_OBJECT } from '../../../src/forge/scoring/verdict-keys.js';
import { canonicalize } from '../../../src/platform/crypto/canonical-json.js';
import { FilesystemStorage } from '../../../src/platform/storage/filesystem.js';
import { runCli } from '../../helpers/cli.js';

const SIGNED_AT = '2026-01-01T00:00:00.000Z';
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test("frostgate verify-verdict: a forged verdict re-signed with the forger's own key fails with a pinned key and without --allow-unpinned", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-vv-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const scoreboard = await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true });
  const score = Buffer.from(canonicalize({ scenario_id: 'scn_cli_verify', total: 7, graded_at: SIGNED_AT }));
  const evidence = await buildEvidenceArchive([{ name: 'checks/a.json', bytes: Buffer.from('{}\n') }], { compression: 'gzip' });
  const honest = signVerdict({ scoreBytes: score, evidenceBytes: evidence, privateKey: scoreboard.privateKey, signedAt: SIGNED_AT });
  // The scoreboard's published key set and public key, as a verifier saved them earlier.
  const storage = new FilesystemStorage(join(dir, 'published'));
  await publishVerdictKey(storage, { publicKey: scoreboard.publicKey, ephemeral: false }, new Date('2025-12-01T00:00:00.000Z'));
  const files = {
    score: join(dir, 'score.json'),
    evidence: join(dir, 'evidence.tar.gz'),
    sig: join(dir, 'verdict.sig'),
    pub: join(dir, 'verdict.pub'),
    pinned: join(dir, 'scoreboard.pub'),
    keys: storage.locate(VERDICT_KEYS_OBJECT),
  };
  await writeFile(files.evidence, evidence);
  await writeFile(files.pinned, scoreboard.publicPem);

  // The forger's exact path: edit score.json, re-sign with a fresh key, ship that key as verdict.pub.
  const forger = await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true });
  const edited = Buffer.from(canonicalize({ scenario_id: 'scn_cli_verify', total: 100, graded_at: SIGNED_AT }));
  const forged = signVerdict({ scoreBytes: edited, evidenceBytes: evidence, privateKey: forger.privateKey, signedAt: SIGNED_AT });
  await writeFile(files.score, edited);
  await writeFile(files.sig, forged.sigBytes);
  await writeFile(files.pub, forged.pubBytes);
  const four = [files.score, files.evidence, files.sig, files.pub];

  const unpinned = await runCli(['verify-verdict', ...four]);
  assert.equal(unpinned.code, 3, unpinned.stdout + unpinned.stderr);
  assert.doesNotMatch(unpinned.stdout, /PASS/);
  assert.match(unpinned.stdout, /^UNPINNED: only integrity was checked, not origin/);
  assert.match(unpinned.stdout, /--allow-unpinned accepts an integrity-only check/);
  const unpinnedJson = JSON.parse((await runCli(['verify-verdict', ...four, '--json'])).stdout);
  assert.equal(unpinnedJson.ok, false);
  assert.equal(unpinnedJson.origin_checked, false);

  for (const pin of [
    ['--pubkey', files.pinned],
    ['--keys', files.keys],
    ['--key-id', scoreboard.keyId],
    ['--key-id', verdictKeyFingerprint(scoreboard.publicKey)],
  ]) {
    const res = await runCli(['verify-verdict', ...four, ...pin]);
    assert.equal(res.code, 1, `${pin.join(' ')}: ${res.stdout}${res.stderr}`);
    assert.doesNotMatch(res.stdout, /PASS/);
    assert.match(res.stdout, new RegExp(`^FAIL: .*${forger.keyId}.*(not by|not in|is not the pinned key)`, 'm'), pin.join(' '));
  }
  // Leaving verdict.pub out changes nothing for the pinned checks.
  const threeFiles = await runCli(['verify-verdict', files.score, files.evidence, files.sig, '--keys', files.keys]);
  assert.equal(threeFiles.code, 1);
  assert.match(threeFiles.stdout, new RegExp(`^FAIL: ${esc(files.sig)}: signed by key ${forger.keyId}, which is not in the key set`, 'm'));

  // --allow-unpinned is the documented way to accept integrity alone: it passes, and says so.
  const allowed = await runCli(['verify-verdict', ...four, '--allow-unpinned']);
  assert.equal(allowed.code, 0);
  assert.match(allowed.stdout, /^PASS \(integrity only, --allow-unpinned\): only integrity was checked, not origin/);
  assert.match(allowed.stdout, /NOT pinned/);

  await t.test('the honest verdict passes with the pinned key, the key set and the key id, and --json says how', async () => {
    await writeFile(files.score, score);
    await writeFile(files.sig, honest.sigBytes);
    await writeFile(files.pub, honest.pubBytes);
    const byKey = await runCli(['verify-verdict', ...four, '--pubkey', files.pinned]);
    assert.equal(byKey.code, 0, byKey.stdout + byKey.stderr);
    assert.equal(byKey.stdout.split('\n')[0], 'PASS: verdict verification succeeded');
    assert.match(byKey.stdout, new RegExp(`key ${scoreboard.keyId} \\(pinned by --pubkey ${esc(files.pinned)}\\), signed at ${esc(SIGNED_AT)}`));

    const bySet = await runCli(['verify-verdict', files.score, files.evidence, files.sig, '--keys', files.keys]);
    assert.equal(bySet.code, 0, bySet.stdout + bySet.stderr);
    assert.match(
      bySet.stdout,
      new RegExp(`^PASS: verdict verification succeeded\\n  key ${scoreboard.keyId} \\(in the key set ${esc(files.keys)}, current\\)`),
    );

    const byId = await runCli(['verify-verdict', ...four, '--key-id', verdictKeyFingerprint(scoreboard.publicKey)]);
    assert.equal(byId.code, 0, byId.stdout);

    const json = await runCli(['verify-verdict', ...four, '--keys', files.keys, '--json']);
    assert.equal(json.code, 0);
    assert.deepEqual(JSON.parse(json.stdout), {
      ok: true,
      origin_checked: true,
      pinned_by: 'key_set',
      key_id: scoreboard.keyId,
      signed_at: SIGNED_AT,
      score_sha256: honest.statement.score_sha256,
      evidence_sha256: honest.statement.evidence_sha256,
    });

    // Even an honest verdict is not vouched for without a pin.
    const honestUnpinned = await runCli(['verify-verdict', ...four]);
    assert.equal(honestUnpinned.code, 3);
    assert.match(honestUnpinned.stdout, /^UNPINNED: /);
  });

  await t.test('a foreign verdict.pub, swapped files, a missing file, wrong arguments', async () => {
    const other = await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true });
    const otherPub = join(dir, 'other.pub');
    await writeFile(otherPub, other.publicPem);
    const foreign = await runCli(['verify-verdict', files.score, files.evidence, files.sig, otherPub, '--pubkey', files.pinned]);
    assert.equal(foreign.code, 1);
    assert.match(foreign.stdout, new RegExp(`^FAIL: ${esc(otherPub)}: key ${other.keyId} is not the pinned key`, 'm'));
    const foreignUnpinned = await runCli(['verify-verdict', files.score, files.evidence, files.sig, otherPub]);
    assert.equal(foreignUnpinned.code, 1);
    assert.match(foreignUnpinned.stdout, new RegExp(`^FAIL: ${esc(otherPub)}: key id ${other.keyId} does not match key id ${scoreboard.keyId}`, 'm'));

    const swapped = await runCli(['verify-verdict', files.evidence, files.score, files.sig, '--keys', files.keys]);
    assert.equal(swapped.code, 1);
    assert.match(swapped.stdout, /^FAIL: .*evidence\.tar\.gz: SHA-256 .* does not match/m);

    const missing = await runCli(['verify-verdict', files.score, join(dir, 'nope.tar.zst'), files.sig, '--keys', files.keys]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read .*nope\.tar\.zst: ENOENT/);

    const noKey = await runCli(['verify-verdict', files.score, files.evidence, files.sig]);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /pass a key to verify with: --keys FILE or --pubkey FILE/);
    assert.equal((await runCli(['verify-verdict', files.score, files.evidence])).code, 2);
    const both = await runCli(['verify-verdict', ...four, '--keys', files.keys, '--pubkey', files.pinned]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /one of --pubkey and --keys/);
    const badId = await runCli(['verify-verdict', ...four, '--key-id', 'XYZ']);
    assert.equal(badId.code, 2);
    const notJson = join(dir, 'not-keys.json');
    await writeFile(notJson, '{"v":1}');
    const badSet = await runCli(['verify-verdict', ...four, '--keys', notJson]);
    assert.equal(badSet.code, 1);
    assert.match(badSet.stderr, /--keys .*not-keys\.json: not a verdict key set/);
  });
});
