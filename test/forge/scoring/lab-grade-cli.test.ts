import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { readEvidenceArchive } from '../../../src/forge/scoring/evidence-archive.js';
import { exportPrivateKeyPem, generateEd25519KeyPair } from '../../../src/platform/crypto/ed25519.js';
import { runCli } from '../../helpers/cli.js';

// A flag generated per scenario is placed in the lab ({{flag}}) and must be given back as the
// answer; a failing check quotes device output with an e-mail address, which must not leave
// the lab store unscrubbed.
const TEMPLATE = `
id: cissp-flag-check
title: Flag and contact
track: cissp
tier: basic
ttl_minutes: 30
variables:
  flag: { kind: token, length: 16, prefix: "FLAG{", suffix: "}" }
topology:
  networks: [{ name: lan, cidr: 10.77.1.0/24 }]
  devices:
    - name: h1
      kind: host
      interfaces: [{ network: lan, address: 10.77.1.10/24 }]
      files:
        - { path: /root/flag.txt, content: "{{flag}}\\n" }
        - { path: /root/contact.txt, content: "owner bob.smith@example.com\\n" }
tasks: [Find the flag.]
successCriteria:
  - id: flag-file
    description: the flag file is still there
    points: 20
    check: { type: file, device: h1, path: /root/flag.txt, regex: "^FLAG\\\\{[0-9a-f]{16}\\\\}$" }
  - id: flag-answer
    description: the learner found this lab's flag
    points: 50
    check: { type: answer, question: "What is the flag?", variable: flag, case_sensitive: true }
  - id: contact
    description: the contact was changed to nobody
    points: 30
    check: { type: command, device: h1, context: mount, run: "cat /root/contact.txt", expect_stdout: nobody }
`;

test('frostgate lab grade: per-scenario flag answered, PII scrubbed from score and evidence, artefacts verify', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-labgrade-'));
  // A lasting verdict key: lab grade publishes it into the storage's verdict-keys.json.
  const env = { FG_DATA_DIR: join(dir, 'data'), FG_STORAGE_DIR: join(dir, 'storage'), SIGNING_KEY_PATH: join(dir, 'verdict.pem') };
  t.after(async () => {
    await new NetnsLabRuntime({ stateDir: join(dir, 'data', 'labs') }).reconcile(new Set());
    await rm(dir, { recursive: true, force: true });
  });
  const template = join(dir, 'flag.yaml');
  await writeFile(template, TEMPLATE);
  await writeFile(env.SIGNING_KEY_PATH, exportPrivateKeyPem(generateEd25519KeyPair().privateKey), { mode: 0o600 });

  const up = async () => {
    const res = await runCli(['lab', 'up', template, '--json', '--subject', 'alice'], env);
    assert.equal(res.code, 0, res.stderr);
    return (JSON.parse(res.stdout) as { scenario_id: string }).scenario_id;
  };
  const flagOf = async (id: string) => {
    const res = await runCli(['lab', 'exec', id, 'h1', '--', 'cat', '/root/flag.txt'], env);
    assert.equal(res.code, 0, res.stderr);
    return res.stdout.trim();
  };
  const first = await up();
  const second = await up();
  const flag = await flagOf(first);
  assert.match(flag, /^FLAG\{[0-9a-f]{16}\}$/);
  assert.notEqual(await flagOf(second), flag, 'each scenario has its own flag');

  const answers = join(dir, 'answers.json');
  await writeFile(answers, JSON.stringify({ answers: { 'flag-answer': flag } }));
  const graded = await runCli(['lab', 'grade', first, '--template', template, '--answers', answers, '--json'], env);
  assert.equal(graded.code, 0, graded.stderr);
  const out = JSON.parse(graded.stdout) as {
    graded: boolean;
    total: number;
    max: number;
    artefacts: Record<string, string>;
    criteria: Array<{ id: string; status: string; detail: string }>;
  };
  assert.equal(out.graded, true);
  assert.deepEqual(
    out.criteria.map((c) => [c.id, c.status]),
    [
      ['flag-file', 'passed'],
      ['flag-answer', 'passed'],
      ['contact', 'failed'],
    ],
  );
  assert.equal(out.total, 70);

  // The flag of one scenario is wrong for the other.
  await writeFile(answers, JSON.stringify({ answers: { 'flag-answer': flag } }));
  const other = JSON.parse((await runCli(['lab', 'grade', second, '--template', template, '--answers', answers, '--json'], env)).stdout) as typeof out;
  assert.equal(other.criteria.find((c) => c.id === 'flag-answer')?.status, 'failed');

  const score = await readFile(out.artefacts['score.json']!, 'utf8');
  assert.doesNotMatch(score, /bob\.smith@example\.com/);
  assert.match(score, /\[REDACTED:email\]/);
  const evidence = await readEvidenceArchive(await readFile(out.artefacts['evidence.tar.zst']!));
  const contact = evidence.find((e) => e.name === 'checks/contact.json')!;
  assert.doesNotMatch(Buffer.from(contact.bytes).toString('utf8'), /bob\.smith@example\.com/);
  const report = JSON.parse(Buffer.from(evidence.find((e) => e.name === 'sanitizer-report.json')!.bytes).toString('utf8')) as { totals: { email: number } };
  assert.ok(report.totals.email >= 1);

  const verify = await runCli([
    'verify-verdict',
    out.artefacts['score.json']!,
    out.artefacts['evidence.tar.zst']!,
    out.artefacts['verdict.sig']!,
    '--keys',
    join(dir, 'storage', 'verdict-keys.json'),
  ]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /^PASS: verdict verification succeeded$/m);

  const again = await runCli(['lab', 'grade', first, '--template', template], env);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /was already graded: 70\/100/);
  assert.equal(await readFile(out.artefacts['score.json']!, 'utf8'), score);

  for (const id of [first, second]) assert.equal((await runCli(['lab', 'down', id], env)).code, 0);
});
