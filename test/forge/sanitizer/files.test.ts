import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sanitizeDirectory, sanitizeFiles } from '../../../src/forge/sanitizer/files.js';
import { sanitizeJsonLines } from '../../../src/forge/sanitizer/json-lines.js';

const enc = (s: string): Buffer => Buffer.from(s, 'utf8');
const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

describe('sanitizeJsonLines', () => {
  it('scrubs inside strings, keeps every other byte and the JSON valid', () => {
    const input = [
      '{"n": 1.50e3, "big": 12345678901234567890, "who": "bob@example.com", "ip": "10.0.0.1"}',
      '{"note":"caf\\u00e9 \\u002b44 20 7946 0958 \\"quoted\\""}',
      '{"stdout":"-----BEGIN PRIVATE KEY-----\\nMC4CAQAwBQYDK2VwBCIEILSoLDeC9Ib5F6ZXojhtP/9oy7O0NK9z1vNENpSj9mhi\\n-----END PRIVATE KEY-----\\n"}',
      '',
      'plain text with eve@example.org',
      '{"bob@example.com": true}',
    ].join('\n');
    const result = sanitizeJsonLines(input);
    const out = result.text.split('\n');
    assert.equal(out[0], '{"n": 1.50e3, "big": 12345678901234567890, "who": "[REDACTED:email]", "ip": "10.0.0.1"}');
    assert.equal(out[1], '{"note":"caf\\u00e9 [REDACTED:phone] \\"quoted\\""}');
    assert.equal(out[2], '{"stdout":"[REDACTED:private_key]\\n"}');
    assert.equal(out[3], '');
    assert.equal(out[4], 'plain text with [REDACTED:email]');
    assert.equal(out[5], '{"[REDACTED:email]": true}');
    for (const i of [0, 1, 2, 5]) assert.doesNotThrow(() => JSON.parse(out[i] ?? ''));
    assert.deepEqual(result.report.nonJsonLines, [5]);
    // Offsets point at the raw (escaped) text of the input.
    const phone = result.report.redactions.find((r) => r.kind === 'phone');
    assert.ok(phone);
    assert.equal(input.slice(phone.offset, phone.offset + phone.length), '\\u002b44 20 7946 0958');
    assert.equal(result.report.counts.email, 3);
  });

  it('leaves lines without findings byte for byte', () => {
    const input = '{ "a" : [1, 2.0, 3e0] , "b":"\\u0041"}\r\n{"c":null}\n';
    assert.equal(sanitizeJsonLines(input).text, input);
  });
});

describe('sanitizeFiles', () => {
  it('reports byte offsets, keeps clean files identical and leaves binary files alone', () => {
    const jpegish = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46]);
    const notUtf8 = Buffer.concat([enc('latin-1 caf'), Buffer.from([0xe9]), enc(' bob@example.com')]);
    const clean = enc('\ufeffinet 10.0.0.1/24\n');
    const files = [
      { name: 'notes/unicode.txt', bytes: enc('héllo wörld — mail bob@example.com ✓ 078-05-1120\n') },
      { name: 'capture.bin', bytes: jpegish },
      { name: 'latin1.txt', bytes: notUtf8 },
      { name: 'clean.txt', bytes: clean },
    ];
    const { files: out, report } = sanitizeFiles(files);
    assert.deepEqual(
      out.map((f) => f.name),
      files.map((f) => f.name),
    );

    const [unicode, capture, latin1, cleanReport] = report.files;
    assert.equal(unicode?.status, 'redacted');
    const original = files[0]!.bytes;
    assert.deepEqual(
      unicode?.redactions.map((r) => [r.kind, original.subarray(r.offset, r.offset + r.length).toString('utf8')]),
      [
        ['email', 'bob@example.com'],
        ['ssn', '078-05-1120'],
      ],
    );
    assert.equal(text(out[0]!.bytes), 'héllo wörld — mail [REDACTED:email] ✓ [REDACTED:ssn]\n');

    assert.equal(capture?.status, 'binary');
    assert.equal(latin1?.status, 'binary');
    assert.deepEqual(out[1]!.bytes, jpegish);
    assert.deepEqual(out[2]!.bytes, notUtf8);
    assert.deepEqual(report.binaryFiles, ['capture.bin', 'latin1.txt']);

    assert.equal(cleanReport?.status, 'clean');
    assert.deepEqual(Buffer.from(out[3]!.bytes), clean, 'BOM and bytes kept');
    assert.equal(report.totals.email, 1);
    assert.equal(report.totals.ssn, 1);
  });

  it('treats .jsonl and .ndjson as JSON Lines', () => {
    const line = '{"s":"bob\\u0040example.com at 10.0.0.1"}\n';
    const { files, report } = sanitizeFiles([
      { name: 'audit.jsonl', bytes: enc(line) },
      { name: 'events.ndjson', bytes: enc(line) },
      { name: 'raw.txt', bytes: enc(line) },
    ]);
    assert.equal(text(files[0]!.bytes), '{"s":"[REDACTED:email] at 10.0.0.1"}\n');
    assert.equal(text(files[1]!.bytes), text(files[0]!.bytes));
    // As plain text the escaped form is not an address.
    assert.equal(report.files[2]?.status, 'clean');
  });
});

describe('sanitizeDirectory', () => {
  it('scrubs every regular file, skips links, and writes scrubbed copies', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'fg-sanitize-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    const src = join(root, 'src');
    await mkdir(join(src, 'checks', 'deep'), { recursive: true });
    await writeFile(join(src, 'checks', 'c1.stdout'), 'owner jane.doe@example.org on 10.0.0.1\n');
    await writeFile(join(src, 'checks', 'deep', 'c2.stdout'), 'nothing here 52:54:00:12:34:01\n');
    await writeFile(join(src, 'audit.jsonl'), '{"phone":"+1 202-555-0143"}\n');
    await writeFile(join(src, 'rec.bin'), Buffer.from([0, 1, 2, 3]));
    await symlink('/etc/passwd', join(src, 'passwd-link'));

    const result = await sanitizeDirectory(src, { outDir: join(root, 'out') });
    assert.deepEqual(
      result.files.map((f) => f.name),
      ['audit.jsonl', 'checks/c1.stdout', 'checks/deep/c2.stdout', 'rec.bin'],
    );
    assert.deepEqual(result.report.skipped, ['passwd-link']);
    assert.deepEqual(result.report.binaryFiles, ['rec.bin']);
    assert.equal(await readFile(join(root, 'out', 'checks', 'c1.stdout'), 'utf8'), 'owner [REDACTED:email] on 10.0.0.1\n');
    assert.equal(await readFile(join(root, 'out', 'audit.jsonl'), 'utf8'), '{"phone":"[REDACTED:phone]"}\n');
    assert.equal(await readFile(join(root, 'out', 'checks', 'deep', 'c2.stdout'), 'utf8'), 'nothing here 52:54:00:12:34:01\n');
    assert.deepEqual(await readFile(join(root, 'out', 'rec.bin')), Buffer.from([0, 1, 2, 3]));
    // The source is never modified.
    assert.equal(await readFile(join(src, 'checks', 'c1.stdout'), 'utf8'), 'owner jane.doe@example.org on 10.0.0.1\n');
  });
});
