import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { parseTemplate } from '../../../src/forge/templates/load.js';
import { TemplateCatalog } from '../../../src/forge/templates/catalog.js';
import { runCli } from '../../helpers/cli.js';

// A small lab whose one device check and one quiz need nothing but a host.
const V1 = `# version test
id: version-probe
title: Version probe
track: cissp
tier: basic
ttl_minutes: 30
topology:
  networks: [{ name: lan, cidr: 10.91.1.0/24 }]
  devices:
    - name: h1
      kind: host
      interfaces: [{ network: lan, address: 10.91.1.10/24 }]
      files: [{ path: /root/notes.txt, content: "case open\\n" }]
tasks: [Read the notes.]
successCriteria:
  - id: notes
    description: the notes are still there
    points: 50
    check: { type: file, device: h1, path: /root/notes.txt, regex: "case open" }
  - id: quiz
    description: quiz
    points: 50
    check: { type: quiz, questions: [{ id: q1, kind: choice, prompt: "Which port is https?", choices: ["80", "443"], correct: [1] }] }
`;
const V1_REFORMATTED = V1.replace('# version test\n', '# only comments and layout differ\n\n').replace(
  'tasks: [Read the notes.]',
  'tasks:\n  - Read the notes.',
);
const V2 = V1.replace('Read the notes.', 'Read the notes and answer.');

test('a content change makes a new version; layout and comments do not; both versions coexist in a catalog', () => {
  const v1 = parseTemplate(V1, 'v1.yaml');
  const same = parseTemplate(V1_REFORMATTED, 'v1-reformatted.yaml');
  const v2 = parseTemplate(V2, 'v2.yaml');
  assert.equal(v1.versionSource, 'content');
  assert.match(v1.version, /^sha256-[0-9a-f]{16}$/);
  assert.equal(same.version, v1.version);
  assert.notEqual(v2.version, v1.version);
  const stated = parseTemplate(`version: 2.1.0\n${V2}`, 'stated.yaml');
  assert.deepEqual([stated.version, stated.versionSource], ['2.1.0', 'stated']);

  const catalog = new TemplateCatalog();
  for (const t of [v1, v2]) catalog.add(t);
  assert.equal(catalog.get('version-probe', v1.version)?.tasks[0], 'Read the notes.');
  assert.equal(catalog.get('version-probe', v2.version)?.tasks[0], 'Read the notes and answer.');
});

test('a score names the template version its lab was started from, and only that version grades it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-tplver-'));
  const env = { FG_DATA_DIR: join(dir, 'data'), FG_STORAGE_DIR: join(dir, 'storage') };
  t.after(async () => {
    await new NetnsLabRuntime({ stateDir: join(dir, 'data', 'labs') }).reconcile(new Set());
    await rm(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'probe.yaml');
  const v1File = join(dir, 'probe-v1.yaml');
  await writeFile(v1File, V1);
  const versionOf = async (path: string) => {
    const res = await runCli(['template', 'validate', path, '--json']);
    assert.equal(res.code, 0, res.stderr);
    return (JSON.parse(res.stdout) as { template: { version: string } }).template.version;
  };
  const up = async () => {
    const res = await runCli(['lab', 'up', file, '--json', '--subject', 'carol'], env);
    assert.equal(res.code, 0, res.stderr);
    return (JSON.parse(res.stdout) as { scenario_id: string }).scenario_id;
  };

  await writeFile(file, V1);
  const v1 = await versionOf(file);
  const first = await up();
  await writeFile(file, V2); // the author edits the template while a lab of v1 runs
  const v2 = await versionOf(file);
  assert.notEqual(v2, v1);
  const second = await up();

  const answers = join(dir, 'answers.json');
  await writeFile(answers, JSON.stringify({ answers: { quiz: { q1: [1] } } }));
  // The edited file is a different version: it cannot grade the lab started from v1.
  const wrong = await runCli(['lab', 'grade', first, '--template', file, '--answers', answers, '--json'], env);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr + wrong.stdout, new RegExp(`version-probe@${v1}`));

  const scoreOf = async (id: string, template: string) => {
    const res = await runCli(['lab', 'grade', id, '--template', template, '--answers', answers, '--json'], env);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { percent: number; artefacts: Record<string, string> };
    assert.equal(out.percent, 100);
    return JSON.parse(await readFile(out.artefacts['score.json']!, 'utf8')) as { template: { id: string; version: string } };
  };
  assert.deepEqual((await scoreOf(first, v1File)).template, { id: 'version-probe', version: v1 });
  assert.deepEqual((await scoreOf(second, file)).template, { id: 'version-probe', version: v2 });
  for (const id of [first, second]) assert.equal((await runCli(['lab', 'down', id], env)).code, 0);
});
