import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadTemplate, type LabTemplate } from '../../../src/forge/templates/load.js';
import { TRACKS } from '../../../src/forge/templates/schema.js';
import { ROOT, runCli } from '../../helpers/cli.js';
import { loadSolution, SOLUTIONS_DIR, TEMPLATES_DIR } from './reference-solution.js';

/**
 * The shipped catalogue as a whole: every template validates through `frostgate template
 * validate`, each has a reference solution that fits it and a test proving that solution on a
 * real lab, and each track has at least two labs. (The per-template *.test.ts files in this
 * directory spawn the labs.)
 */
const templateFiles = async () => (await readdir(TEMPLATES_DIR)).filter((f) => /\.ya?ml$/.test(f)).sort();

test('frostgate template validate accepts every shipped template', async () => {
  const files = await templateFiles();
  assert.ok(files.length >= 6, `only ${files.length} templates`);
  const results = await Promise.all(files.map((f) => runCli(['template', 'validate', join(TEMPLATES_DIR, f), '--json'])));
  for (const [i, res] of results.entries()) {
    assert.equal(res.code, 0, `${files[i]}: ${res.stdout}${res.stderr}`);
    const out = JSON.parse(res.stdout) as { ok: boolean; template: { id: string; version: string; points: number } };
    assert.equal(out.ok, true);
    assert.equal(`${out.template.id}.yaml`, files[i], 'a template file is named after its id');
    assert.match(out.template.version, /^sha256-[0-9a-f]{16}$/);
    assert.equal(out.template.points, 100, `${files[i]}: criteria points add up to 100 so percent and points read alike`);
  }
});

test('every shipped template has the parts a learner needs and a reference solution that fits it', async () => {
  const templates: LabTemplate[] = [];
  for (const f of await templateFiles()) templates.push(await loadTemplate(join(TEMPLATES_DIR, f)));

  for (const track of TRACKS) {
    const ids = templates.filter((t) => t.track === track).map((t) => t.id);
    assert.ok(ids.length >= 2, `track ${track} has ${ids.length} labs: ${ids.join(', ')}`);
  }
  for (const t of templates) {
    assert.ok(t.tasks.length >= 2, `${t.id}: tasks`);
    assert.ok((t.hints ?? []).length >= 1, `${t.id}: hints`);
    assert.ok(t.egress?.profile, `${t.id}: egress profile stated`);
    assert.ok(t.description, `${t.id}: description`);
    if (t.track === 'cissp') {
      const last = t.successCriteria.at(-1)!;
      assert.equal(last.check.type, 'quiz', `${t.id}: a cissp lab ends with a knowledge quiz`);
      assert.ok(last.points > 0, `${t.id}: the quiz counts towards the score`);
    }

    const solution = await loadSolution(t.id);
    const devices = new Set(t.topology.devices.map((d) => d.name));
    for (const step of solution.steps) assert.ok(devices.has(step.device), `${t.id}: solution step on unknown device ${step.device}`);
    const knowledge = new Set(t.successCriteria.filter((c) => c.check.type === 'answer' || c.check.type === 'quiz').map((c) => c.id));
    assert.deepEqual(Object.keys(solution.answers ?? {}).sort(), [...knowledge].sort(), `${t.id}: the solution answers exactly the knowledge criteria`);
    assert.ok(existsSync(join(ROOT, 'test/forge/templates', `${t.id}.test.ts`)), `${t.id}: a test proves its reference solution`);
  }

  const orphans = (await readdir(SOLUTIONS_DIR)).filter((f) => !templates.some((t) => `${t.id}.yaml` === f));
  assert.deepEqual(orphans, [], 'every solution belongs to a shipped template');
});
