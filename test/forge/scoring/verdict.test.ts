import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { canonicalize } from '../../../src/platform/crypto/canonical-json.js';
import { Ed25519KeyError, exportPrivateKeyPem, exportPublicKeyRaw, generateEd25519KeyPair, privateKeyFromSeed } from '../../../src/platform/crypto/ed25519.js';
import { buildEvidenceArchive } from '../../../src/forge/scoring/evidence-archive.js';
import {
  loadVerdictSigningKey,
  signVerdict,
  VerdictError,
  verdictKeyId,
  verifyVerdict,
  verifyVerdictWithKey,
  type VerifyVerdictInput,
} from '../../../src/forge/scoring/verdict.js';

const SIGNED_AT = '2026-01-15T10:00:00.000Z';

function scoreJson(total = 85): Buffer {
  return Buffer.from(
    canonicalize({
      scenario_id: 'scn_01HZX3',
      template: { id: 'netplus-ospf-basics', version: '1.2.0' },
      subject: 'learner-42',
      track: 'netplus',
      criteria: [
        { id: 'c1', status: 'passed', points: 50, awarded: 50 },
        { id: 'c2', status: 'failed', points: 50, awarded: 35 },
      ],
      total,
      graded_at: SIGNED_AT,
    }),
    'utf8',
  );
}

async function evidence(extra = ''): Promise<Buffer> {
  return buildEvidenceArchive([
    { name: 'checks/c1.stdout', bytes: Buffer.from('Neighbor ID 2.2.2.2 Full/DR\n') },
    { name: 'audit.jsonl', bytes: Buffer.from(`{"event":"graded"}\n${extra}`) },
  ]);
}

interface Artefacts {
  scoreBytes: Buffer;
  evidenceBytes: Buffer;
  sigBytes: Buffer;
  pubBytes: Buffer;
}

async function artefacts(privateKey = generateEd25519KeyPair().privateKey): Promise<Artefacts> {
  const scoreBytes = scoreJson();
  const evidenceBytes = await evidence();
  const signed = signVerdict({ scoreBytes, evidenceBytes, privateKey, signedAt: SIGNED_AT });
  return { scoreBytes, evidenceBytes, sigBytes: signed.sigBytes, pubBytes: signed.pubBytes };
}

function problemsOf(input: VerifyVerdictInput): string[] {
  const result = verifyVerdict(input);
  return result.ok ? [] : result.problems;
}

const FILES = [
  { field: 'scoreBytes', label: 'score.json' },
  { field: 'evidenceBytes', label: 'evidence archive' },
  { field: 'sigBytes', label: 'verdict.sig' },
  { field: 'pubBytes', label: 'verdict.pub' },
] as const;

/** Every position of a small file; an even spread plus both ends for a large one. */
function positions(length: number, max = 600): number[] {
  if (length <= max) return Array.from({ length }, (_, i) => i);
  const step = length / max;
  const picked = new Set<number>([0, 1, length - 2, length - 1]);
  for (let i = 0; i < max; i++) picked.add(Math.floor(i * step));
  return [...picked].sort((a, b) => a - b);
}

describe('verdict signing', () => {
  it('verifies an untouched verdict and reports its key id and statement', async () => {
    const { privateKey } = generateEd25519KeyPair();
    const a = await artefacts(privateKey);
    const result = verifyVerdict(a);
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.keyId, verdictKeyId(privateKey));
    assert.equal(result.statement.score_sha256, createHash('sha256').update(a.scoreBytes).digest('hex'));
    assert.equal(result.statement.evidence_sha256, createHash('sha256').update(a.evidenceBytes).digest('hex'));
    assert.equal(result.statement.signed_at, SIGNED_AT);
  });

  it('writes the documented sig and pub formats', async () => {
    const seed = Buffer.alloc(32, 7);
    const privateKey = privateKeyFromSeed(seed);
    const a = await artefacts(privateKey);
    const keyId = createHash('sha256').update(exportPublicKeyRaw(privateKey)).digest('hex').slice(0, 16);
    const sig = JSON.parse(a.sigBytes.toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(sig).sort(), ['alg', 'key_id', 'signature', 'statement', 'v']);
    assert.equal(sig.key_id, keyId);
    assert.equal(sig.alg, 'Ed25519');
    assert.deepEqual(sig.statement, {
      v: 1,
      type: 'frostgate.forge.verdict',
      score_sha256: createHash('sha256').update(a.scoreBytes).digest('hex'),
      evidence_sha256: createHash('sha256').update(a.evidenceBytes).digest('hex'),
      key_id: keyId,
      signed_at: SIGNED_AT,
    });
    assert.equal(a.sigBytes.toString('utf8'), `${canonicalize(sig)}\n`);
    assert.match(a.pubBytes.toString('utf8'), /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=]+\n-----END PUBLIC KEY-----\n$/);
    // Ed25519 is deterministic: signing again with the same signed_at gives the same bytes.
    const again = await artefacts(privateKey);
    assert.deepEqual(again.sigBytes, a.sigBytes);
  });

  it('refuses to sign a score.json that is not canonical JSON', async () => {
    const { privateKey } = generateEd25519KeyPair();
    const evidenceBytes = await evidence();
    for (const scoreBytes of [Buffer.from('{"b":1, "a":2}'), Buffer.from('not json'), Buffer.from('{"a":1}\n')]) {
      assert.throws(
        () => signVerdict({ scoreBytes, evidenceBytes, privateKey }),
        (err: unknown) => err instanceof VerdictError && err.code === 'verdict_score_not_canonical',
      );
    }
  });

  for (const { field, label } of FILES) {
    it(`fails, naming ${label}, when any single byte of ${label} changes`, async () => {
      const a = await artefacts();
      const original = a[field];
      let checked = 0;
      for (const pos of positions(original.length)) {
        for (const mask of [0x01, 0x80]) {
          const changed = Buffer.from(original);
          changed[pos] = (changed[pos] ?? 0) ^ mask;
          const problems = problemsOf({ ...a, [field]: changed });
          assert.ok(problems.length > 0, `${label} byte ${pos} ^ ${mask} still verifies`);
          assert.ok(
            problems.some((p) => p.startsWith(`${label}:`)),
            `${label} byte ${pos} ^ ${mask}: problems do not name ${label}: ${problems.join(' | ')}`,
          );
          // A changed score or evidence file is the only thing blamed.
          if (field === 'scoreBytes' || field === 'evidenceBytes') assert.equal(problems.length, 1, problems.join(' | '));
          checked++;
        }
      }
      assert.ok(checked >= 2 * Math.min(original.length, 600));
    });
  }

  it('fails, naming the evidence archive, for sampled byte changes in a large archive', async () => {
    const { privateKey } = generateEd25519KeyPair();
    const scoreBytes = scoreJson();
    // Incompressible content so the archive stays large.
    const noise = createHash('sha512');
    const chunks: Buffer[] = [];
    for (let i = 0; i < 2000; i++) chunks.push(noise.copy().update(String(i)).digest());
    const evidenceBytes = await buildEvidenceArchive([{ name: 'recording.cast', bytes: Buffer.concat(chunks) }]);
    assert.ok(evidenceBytes.length > 100_000);
    const signed = signVerdict({ scoreBytes, evidenceBytes, privateKey, signedAt: SIGNED_AT });
    const a = { scoreBytes, evidenceBytes, sigBytes: signed.sigBytes, pubBytes: signed.pubBytes };
    assert.ok(verifyVerdict(a).ok);
    for (const pos of positions(evidenceBytes.length, 300)) {
      const changed = Buffer.from(evidenceBytes);
      changed[pos] = (changed[pos] ?? 0) ^ 0x10;
      assert.deepEqual(
        problemsOf({ ...a, evidenceBytes: changed }).map((p) => p.split(':')[0]),
        ['evidence archive'],
        `byte ${pos}`,
      );
    }
  });

  it('fails on truncated, extended or swapped files', async () => {
    const a = await artefacts();
    const b = await artefacts();
    assert.ok(problemsOf({ ...a, scoreBytes: scoreJson(86) }).some((p) => p.startsWith('score.json:')));
    assert.ok(problemsOf({ ...a, evidenceBytes: await evidence('x') }).some((p) => p.startsWith('evidence archive:')));
    assert.ok(problemsOf({ ...a, sigBytes: a.sigBytes.subarray(0, a.sigBytes.length - 1) }).some((p) => p.startsWith('verdict.sig: malformed')));
    assert.ok(problemsOf({ ...a, sigBytes: Buffer.concat([a.sigBytes, Buffer.from('\n')]) }).some((p) => p.startsWith('verdict.sig: malformed')));
    assert.ok(problemsOf({ ...a, pubBytes: Buffer.concat([a.pubBytes, Buffer.from(' ')]) }).some((p) => p.startsWith('verdict.pub: malformed')));
    assert.ok(problemsOf({ ...a, pubBytes: b.pubBytes }).some((p) => p.startsWith('verdict.pub: key id')));
    assert.ok(problemsOf({ ...a, sigBytes: Buffer.alloc(0), pubBytes: Buffer.alloc(0) }).length === 2);
  });

  it('reports a signature that does not verify even when every digest and key id match', async () => {
    const { privateKey } = generateEd25519KeyPair();
    const a = await artefacts(privateKey);
    const sig = JSON.parse(a.sigBytes.toString('utf8')) as { signature: string };
    // A valid signature by the right key, over different bytes.
    const other = signVerdict({ scoreBytes: scoreJson(1), evidenceBytes: a.evidenceBytes, privateKey, signedAt: SIGNED_AT });
    const otherSig = JSON.parse(other.sigBytes.toString('utf8')) as { signature: string };
    const forged = Buffer.from(a.sigBytes.toString('utf8').replace(sig.signature, otherSig.signature));
    assert.deepEqual(
      problemsOf({ ...a, sigBytes: forged }).map((p) => p.split(':')[0]),
      ['verdict.sig'],
    );
  });

  it('names files by the labels the caller gives', async () => {
    const a = await artefacts();
    const changed = Buffer.from(a.evidenceBytes);
    changed[20] = (changed[20] ?? 0) ^ 1;
    const problems = problemsOf({ ...a, evidenceBytes: changed, labels: { evidence: 'results/evidence.tar.gz' } });
    assert.ok(problems[0]?.startsWith('results/evidence.tar.gz: SHA-256'), problems.join());
  });

  it('verifyVerdict proves integrity only: a re-signed edit passes against its own verdict.pub, never against the pinned key', async () => {
    const scoreboard = generateEd25519KeyPair().privateKey;
    const honest = await artefacts(scoreboard);
    // The forger's path: edit score.json, re-sign with a fresh key, ship that key as verdict.pub.
    const forger = generateEd25519KeyPair().privateKey;
    const forged = signVerdict({ scoreBytes: scoreJson(100), evidenceBytes: honest.evidenceBytes, privateKey: forger, signedAt: SIGNED_AT });
    const forgedInput = { scoreBytes: scoreJson(100), evidenceBytes: honest.evidenceBytes, sigBytes: forged.sigBytes, pubBytes: forged.pubBytes };
    assert.ok(verifyVerdict(forgedInput).ok, 'integrity alone cannot tell');

    const pinned = verifyVerdictWithKey(forgedInput, scoreboard, 'the pinned key');
    assert.ok(!pinned.ok);
    assert.deepEqual(pinned.problems, [
      `verdict.pub: key ${verdictKeyId(forger)} is not the pinned key (key ${verdictKeyId(scoreboard)})`,
      `verdict.sig: signed by key ${verdictKeyId(forger)}, not by the pinned key (key ` +
        `${verdictKeyId(scoreboard)}): the verdict did not come from that scoreboard`,
    ]);
    // Without verdict.pub, and with a forged statement that claims the scoreboard's key id.
    const { pubBytes: _ignored, ...withoutPub } = forgedInput;
    assert.ok(!verifyVerdictWithKey(withoutPub, scoreboard).ok);
    const claimed = JSON.parse(forged.sigBytes.toString('utf8'));
    claimed.key_id = claimed.statement.key_id = verdictKeyId(scoreboard);
    const lying = verifyVerdictWithKey({ ...withoutPub, sigBytes: Buffer.from(`${canonicalize(claimed)}\n`) }, scoreboard);
    assert.ok(!lying.ok && lying.problems.some((p) => /signature does not verify/.test(p)), JSON.stringify(lying));

    assert.ok(verifyVerdictWithKey(honest, scoreboard).ok);
    const { pubBytes: _pub, ...honestWithoutPub } = honest;
    assert.ok(verifyVerdictWithKey(honestWithoutPub, scoreboard).ok);
  });
});

describe('verdict signing key loader', () => {
  it('loads SIGNING_KEY_PATH and signs verifiable verdicts with it', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'fg-verdict-key-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const { privateKey } = generateEd25519KeyPair();
    const keyPath = join(dir, 'verdict.pem');
    await writeFile(keyPath, exportPrivateKeyPem(privateKey), { mode: 0o600 });
    const key = await loadVerdictSigningKey({ keyPath, allowEphemeral: false });
    assert.equal(key.keyId, verdictKeyId(privateKey));
    assert.equal(key.source, keyPath);
    assert.equal(key.ephemeral, false);
    const a = await artefacts(key.privateKey);
    assert.equal(a.pubBytes.toString('utf8'), key.publicPem);
    assert.ok(verifyVerdict(a).ok);
  });

  it('generates an ephemeral key only when allowed', async () => {
    await assert.rejects(
      loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: false }),
      (err: unknown) => err instanceof VerdictError && err.code === 'verdict_key_missing',
    );
    const a = await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true });
    const b = await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true });
    assert.equal(a.ephemeral, true);
    assert.notEqual(a.keyId, b.keyId);
  });

  it('reports a missing or invalid key file', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'fg-verdict-key-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await assert.rejects(
      loadVerdictSigningKey({ keyPath: join(dir, 'absent.pem'), allowEphemeral: true }),
      (err: unknown) => err instanceof Ed25519KeyError && err.code === 'ed25519_key_unreadable',
    );
    await writeFile(join(dir, 'bad.pem'), 'not a key');
    await assert.rejects(
      loadVerdictSigningKey({ keyPath: join(dir, 'bad.pem'), allowEphemeral: true }),
      (err: unknown) => err instanceof Ed25519KeyError && err.code === 'ed25519_key_invalid',
    );
  });
});
