import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildEvidenceArchive } from '../../../src/forge/scoring/evidence-archive.js';
import { loadVerdictSigningKey, signVerdict } from '../../../src/forge/scoring/verdict.js';
import { canonicalize } from '../../../src/platform/crypto/canonical-json.js';
import { runCli } from '../../helpers/cli.js';

test('frostgate verify-verdict: PASS, --json, a foreign key, a missing file, wrong arguments', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-vv-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const key = await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true });
  const other = await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true });
  const score = Buffer.from(canonicalize({ scenario_id: 'scn_cli_verify', total: 7, graded_at: '2026-01-01T00:00:00.000Z' }));
  const evidence = await buildEvidenceArchive([{ name: 'checks/a.json', bytes: Buffer.from('{}\n') }], { compression: 'gzip' });
  const verdict = signVerdict({ scoreBytes: score, evidenceBytes: evidence, privateKey: key.privateKey, signedAt: '2026-01-01T00:00:00.000Z' });
  const files = { score: join(dir, 'score.json'), evidence: join(dir, 'evidence.tar.gz'), sig: join(dir, 'verdict.sig'), pub: join(dir, 'verdict.pub'), otherPub: join(dir, 'other.pub') };
  await writeFile(files.score, score);
  await writeFile(files.evidence, evidence);
  await writeFile(files.sig, verdict.sigBytes);
  await writeFile(files.pub, verdict.pubBytes);
  await writeFile(files.otherPub, other.publicPem);

  const pass = await runCli(['verify-verdict', files.score, files.evidence, files.sig, files.pub]);
  assert.equal(pass.code, 0, pass.stderr);
  assert.equal(pass.stdout.split('\n')[0], 'PASS: verdict verification succeeded');
  assert.match(pass.stdout, new RegExp(`key ${key.keyId}, signed at 2026-01-01T00:00:00.000Z`));

  const json = await runCli(['verify-verdict', files.score, files.evidence, files.sig, files.pub, '--json']);
  assert.equal(json.code, 0);
  assert.deepEqual(JSON.parse(json.stdout), { ok: true, key_id: key.keyId, signed_at: '2026-01-01T00:00:00.000Z', score_sha256: verdict.statement.score_sha256, evidence_sha256: verdict.statement.evidence_sha256 });

  const foreign = await runCli(['verify-verdict', files.score, files.evidence, files.sig, files.otherPub]);
  assert.equal(foreign.code, 1);
  assert.match(foreign.stdout, new RegExp(`^FAIL: ${files.otherPub.replace(/\./g, '\\.')}: key id ${other.keyId} does not match key id ${key.keyId}`, 'm'));

  const swapped = await runCli(['verify-verdict', files.evidence, files.score, files.sig, files.pub]);
  assert.equal(swapped.code, 1);
  assert.match(swapped.stdout, /^FAIL: .*evidence\.tar\.gz: SHA-256 .* does not match/m);

  const missing = await runCli(['verify-verdict', files.score, join(dir, 'nope.tar.zst'), files.sig, files.pub]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read .*nope\.tar\.zst: ENOENT/);

  const usage = await runCli(['verify-verdict', files.score, files.evidence, files.sig]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /expected 4 files/);
});
