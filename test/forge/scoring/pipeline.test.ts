import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { sanitizeDirectory } from '../../../src/forge/sanitizer/files.js';
import { buildEvidenceArchive, extractEvidenceArchive, readEvidenceArchive } from '../../../src/forge/scoring/evidence-archive.js';
import { loadVerdictSigningKey, signVerdict, verifyVerdict } from '../../../src/forge/scoring/verdict.js';
import { canonicalize } from '../../../src/platform/crypto/canonical-json.js';

it('scrubs raw evidence, archives it deterministically, signs and verifies the verdict', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'fg-pipeline-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const raw = join(root, 'raw');
  await mkdir(join(raw, 'checks'), { recursive: true });
  await writeFile(join(raw, 'checks', 'c1.stdout'), 'Neighbor 2.2.2.2 Full/DR 10.0.12.2 eth0 (owner bob@example.com)\n');
  await writeFile(join(raw, 'audit.jsonl'), '{"event":"graded","card":"4111 1111 1111 1111"}\n');

  const scrubbed = await sanitizeDirectory(raw);
  assert.equal(scrubbed.report.totals.email, 1);
  assert.equal(scrubbed.report.totals.payment_card, 1);
  const archive = await buildEvidenceArchive(scrubbed.files);
  assert.deepEqual(archive, await buildEvidenceArchive((await sanitizeDirectory(raw)).files), 'same evidence, same bytes');

  const key = await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true });
  const scoreBytes = Buffer.from(canonicalize({ scenario_id: 'scn_pipeline', total: 100, graded_at: '2026-01-15T10:05:00.000Z' }));
  const verdict = signVerdict({ scoreBytes, evidenceBytes: archive, privateKey: key.privateKey, signedAt: '2026-01-15T10:05:00.000Z' });
  assert.ok(verifyVerdict({ scoreBytes, evidenceBytes: archive, sigBytes: verdict.sigBytes, pubBytes: verdict.pubBytes }).ok);

  const out = join(root, 'out');
  await extractEvidenceArchive(archive, out);
  assert.equal(await readFile(join(out, 'checks', 'c1.stdout'), 'utf8'), 'Neighbor 2.2.2.2 Full/DR 10.0.12.2 eth0 (owner [REDACTED:email])\n');
  const names = (await readEvidenceArchive(archive)).map((e) => e.name);
  assert.deepEqual(names, ['audit.jsonl', 'checks/c1.stdout']);
});
