import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  buildEvidenceArchive,
  buildTar,
  detectEvidenceCompression,
  EvidenceArchiveError,
  evidenceTarBytes,
  extractEvidenceArchive,
  parseTar,
  readEvidenceArchive,
  type EvidenceFile,
} from '../../../src/forge/scoring/evidence-archive.js';

const enc = (s: string): Buffer => Buffer.from(s, 'utf8');

function sampleFiles(): EvidenceFile[] {
  return [
    { name: 'checks/c2-route.stdout', bytes: enc('10.0.2.0/24 via 10.0.1.2 dev eth1 proto ospf metric 20\n') },
    { name: 'audit.jsonl', bytes: enc('{"event":"graded"}\n') },
    { name: 'checks/c1-ping.stdout', bytes: enc('64 bytes from 10.0.2.1: icmp_seq=1 ttl=63 time=0.071 ms\n') },
    { name: 'empty.txt', bytes: new Uint8Array(0) },
    { name: 'binary/capture.bin', bytes: Buffer.from([0, 1, 2, 255, 254, 0, 10]) },
    // Exactly one block, and one byte more: padding edge cases.
    { name: 'block.txt', bytes: Buffer.alloc(512, 0x61) },
    { name: 'block-plus-one.txt', bytes: Buffer.alloc(513, 0x62) },
    { name: 'ünïcode/名前.txt', bytes: enc('utf-8 names\n') },
  ];
}

function isArchiveError(code: string) {
  return (err: unknown) => err instanceof EvidenceArchiveError && err.code === code;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function withTempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fg-evidence-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('evidence archive', () => {
  it('gives the same bytes for the same files whatever their input order', async () => {
    const files = sampleFiles();
    const a = await buildEvidenceArchive(files);
    const b = await buildEvidenceArchive([...files].reverse());
    const c = await buildEvidenceArchive(files.map((f) => ({ name: f.name, bytes: Buffer.from(f.bytes) })));
    assert.equal(sha(a), sha(b));
    assert.equal(sha(a), sha(c));
    assert.equal(detectEvidenceCompression(a), 'gzip');
  });

  it('changes when any content or name changes', async () => {
    const files = sampleFiles();
    const base = sha(await buildEvidenceArchive(files));
    const renamed = files.map((f, i) => (i === 0 ? { ...f, name: `${f.name}x` } : f));
    const edited = files.map((f, i) => (i === 1 ? { ...f, bytes: enc('{"event":"graded!"}\n') } : f));
    assert.notEqual(sha(await buildEvidenceArchive(renamed)), base);
    assert.notEqual(sha(await buildEvidenceArchive(edited)), base);
  });

  it('writes fixed header fields and sorted names', () => {
    const tar = buildTar(sampleFiles());
    assert.equal(tar.length % 10240, 0);
    const entries = parseTar(tar);
    const names = entries.map((e) => e.name);
    const sorted = [...names].sort((x, y) => Buffer.compare(enc(x), enc(y)));
    assert.deepEqual(names, sorted);
    for (const e of entries) {
      assert.equal(e.mode, 0o644);
      assert.equal(e.mtime, 0);
      assert.equal(e.type, 'file');
    }
  });

  it('round-trips through its own reader, gzip and plain', async () => {
    const files = sampleFiles();
    for (const compression of ['gzip', 'none'] as const) {
      const archive = await buildEvidenceArchive(files, { compression });
      const read = await readEvidenceArchive(archive);
      const want = new Map(files.map((f) => [f.name, Buffer.from(f.bytes).toString('hex')]));
      assert.equal(read.length, files.length);
      for (const e of read) assert.equal(Buffer.from(e.bytes).toString('hex'), want.get(e.name), e.name);
    }
  });

  it('is read by GNU tar with identical contents', async (t) => {
    const dir = await withTempDir(t);
    const archivePath = join(dir, 'evidence.tar.gz');
    await writeFile(archivePath, await buildEvidenceArchive(sampleFiles()));
    const listing = execFileSync('tar', ['-tzf', archivePath], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(
      listing,
      parseTar(buildTar(sampleFiles())).map((e) => e.name),
    );
    const out = join(dir, 'out');
    execFileSync('mkdir', [out]);
    execFileSync('tar', ['-xzf', archivePath, '-C', out]);
    for (const f of sampleFiles()) assert.deepEqual(await readFile(join(out, f.name)), Buffer.from(f.bytes), f.name);
  });

  it('stores long names through the ustar prefix field', async (t) => {
    const longName = `${'d'.repeat(120)}/${'n'.repeat(90)}.txt`;
    const archive = await buildEvidenceArchive([{ name: longName, bytes: enc('deep\n') }]);
    const [entry] = await readEvidenceArchive(archive);
    assert.equal(entry?.name, longName);
    const dir = await withTempDir(t);
    await writeFile(join(dir, 'a.tar.gz'), archive);
    assert.equal(execFileSync('tar', ['-tzf', join(dir, 'a.tar.gz')], { encoding: 'utf8' }).trim(), longName);
    assert.throws(() => buildTar([{ name: 'x'.repeat(101), bytes: enc('') }]), isArchiveError('evidence_name_invalid'));
  });

  it('refuses unsafe and duplicate names', () => {
    for (const name of ['', '/etc/passwd', '../escape', 'a/../b', 'a//b', './a', 'a\\b', 'nul\0byte']) {
      assert.throws(() => buildTar([{ name, bytes: enc('x') }]), isArchiveError('evidence_name_invalid'), JSON.stringify(name));
    }
    assert.throws(
      () =>
        buildTar([
          { name: 'same', bytes: enc('1') },
          { name: 'same', bytes: enc('2') },
        ]),
      isArchiveError('evidence_name_duplicate'),
    );
  });

  it('detects a corrupted header and a truncated stream', () => {
    const tar = buildTar(sampleFiles());
    const corrupted = Buffer.from(tar);
    corrupted[3] = (corrupted[3] ?? 0) ^ 0x01;
    assert.throws(() => parseTar(corrupted), isArchiveError('evidence_archive_malformed'));
    assert.throws(() => parseTar(tar.subarray(0, 700)), isArchiveError('evidence_archive_malformed'));
  });

  it('caps the decompressed size', async () => {
    const archive = await buildEvidenceArchive([{ name: 'big', bytes: Buffer.alloc(200_000) }]);
    await assert.rejects(evidenceTarBytes(archive, { maxTarBytes: 100_000 }), isArchiveError('evidence_archive_too_large'));
  });

  it('builds deterministic .tar.zst archives readable by zstd and its own reader', async (t) => {
    const files = sampleFiles();
    const a = await buildEvidenceArchive(files, { compression: 'zstd' });
    const b = await buildEvidenceArchive([...files].reverse(), { compression: 'zstd' });
    assert.equal(detectEvidenceCompression(a), 'zstd');
    assert.equal(sha(a), sha(b));
    const read = await readEvidenceArchive(a);
    assert.deepEqual(
      read.map((e) => e.name),
      parseTar(buildTar(files)).map((e) => e.name),
    );
    const dir = await withTempDir(t);
    await writeFile(join(dir, 'e.tar.zst'), a);
    const listing = execFileSync('tar', ['--zstd', '-tf', join(dir, 'e.tar.zst')], { encoding: 'utf8' })
      .trim()
      .split('\n');
    assert.equal(listing.length, files.length);
  });

  it('extracts inside the destination only, never overwriting', async (t) => {
    const dir = await withTempDir(t);
    const archive = await buildEvidenceArchive(sampleFiles());
    const written = await extractEvidenceArchive(archive, join(dir, 'x'));
    assert.equal(written.length, sampleFiles().length);
    assert.deepEqual(await readFile(join(dir, 'x', 'checks', 'c1-ping.stdout')), Buffer.from(sampleFiles()[2]!.bytes));
    await assert.rejects(extractEvidenceArchive(archive, join(dir, 'x')), (err: NodeJS.ErrnoException) => err.code === 'EEXIST');

    // A hand-made tar whose entry climbs out of the destination is refused by the reader.
    const evil = buildTar([{ name: 'aa/evil', bytes: enc('x') }]);
    evil.write('../evil', 0, 'ascii');
    evil.fill(0, 7, 100);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : evil[i]!;
    evil.write(sum.toString(8).padStart(6, '0'), 148, 'ascii');
    await assert.rejects(extractEvidenceArchive(evil, join(dir, 'y')), isArchiveError('evidence_name_invalid'));
  });
});
