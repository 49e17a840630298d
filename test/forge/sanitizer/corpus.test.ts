import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PII_KINDS, redactionMark, type PiiKind } from '../../../src/forge/sanitizer/types.js';
import { sanitizeFiles } from '../../../src/forge/sanitizer/files.js';

/**
 * The fixture corpus (test/fixtures/pii): realistic lab output with planted PII listed in
 * manifest.json. One check proves recall and precision together: the redactions are exactly the
 * planted items, in order, byte for byte — so putting the planted texts back in place of the
 * marks must rebuild the original file.
 */

const FIXTURES = fileURLToPath(new URL('../../fixtures/pii/', import.meta.url));

interface Manifest {
  files: Record<string, { planted: Array<{ kind: PiiKind; text: string }>; survives: string[] }>;
}

const manifest = JSON.parse(await readFile(join(FIXTURES, 'manifest.json'), 'utf8')) as Manifest;

function occurrences(haystack: string, needle: string): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}

describe('sanitizer fixture corpus', () => {
  it('covers every fixture file and every PII kind', async () => {
    const onDisk = (await readdir(FIXTURES)).filter((n) => n !== 'manifest.json').sort();
    assert.deepEqual(Object.keys(manifest.files).sort(), onDisk);
    const kinds = new Set(Object.values(manifest.files).flatMap((f) => f.planted.map((p) => p.kind)));
    assert.deepEqual([...kinds].sort(), [...PII_KINDS].sort());
  });

  for (const [name, expected] of Object.entries(manifest.files)) {
    it(`${name}: redacts exactly the ${expected.planted.length} planted item(s)`, async () => {
      const original = await readFile(join(FIXTURES, name));
      const { files, report } = sanitizeFiles([{ name, bytes: original }]);
      const fileReport = report.files[0];
      assert.ok(fileReport && fileReport.status !== 'binary');

      // Each redaction is one planted item, same kind, same bytes, same order.
      const found = fileReport.redactions.map((r) => ({
        kind: r.kind,
        text: original.subarray(r.offset, r.offset + r.length).toString('utf8'),
      }));
      assert.deepEqual(found, expected.planted);

      // Recall: no planted text is left in the output.
      const output = Buffer.from(files[0]!.bytes).toString('utf8');
      for (const p of expected.planted) assert.ok(!output.includes(p.text), `${p.kind} ${p.text} survived`);

      // Precision: every other byte is untouched.
      let rebuilt = output;
      for (const p of expected.planted) {
        const mark = redactionMark(p.kind);
        const at = rebuilt.indexOf(mark);
        assert.notEqual(at, -1, `mark for ${p.text} missing`);
        rebuilt = rebuilt.slice(0, at) + p.text + rebuilt.slice(at + mark.length);
      }
      assert.equal(rebuilt, original.toString('utf8'));

      // Ordinary lab tokens come through byte for byte, as often as they were there.
      const source = original.toString('utf8');
      for (const token of expected.survives) {
        assert.equal(occurrences(output, token), occurrences(source, token), `${token} did not survive`);
      }

      // Counts agree with the findings.
      for (const kind of PII_KINDS) {
        assert.equal(fileReport.counts[kind], expected.planted.filter((p) => p.kind === kind).length, kind);
      }
    });
  }

  it('keeps scrubbed JSON Lines valid JSON, line for line', async () => {
    const original = await readFile(join(FIXTURES, 'audit.jsonl'));
    const { files, report } = sanitizeFiles([{ name: 'audit.jsonl', bytes: original }]);
    const before = original.toString('utf8').split('\n');
    const after = Buffer.from(files[0]!.bytes).toString('utf8').split('\n');
    assert.equal(after.length, before.length);
    const nonJson = report.files[0]?.nonJsonLines ?? [];
    assert.deepEqual(nonJson, [7]);
    after.forEach((line, i) => {
      if (line.length === 0 || nonJson.includes(i + 1)) return;
      assert.doesNotThrow(() => JSON.parse(line), `line ${i + 1}`);
    });
  });
});
