import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse } from 'yaml';
import type { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { gradeScenario, type GradeOutput } from '../../../src/forge/scoring/grader.js';
import { labExec } from '../../../src/forge/scoring/service.js';
import { loadVerdictSigningKey } from '../../../src/forge/scoring/verdict.js';
import { loadTemplate, type LabTemplate } from '../../../src/forge/templates/load.js';
import { scenarioVariables, substituteVariables, type ScenarioVariables } from '../../../src/forge/templates/variables.js';
import { toLabSpec } from '../../../src/forge/templates/to-spec.js';
import { ROOT } from '../../helpers/cli.js';
import { makeRuntime, uniqueId } from '../runtime/helpers.js';

/**
 * Reference solutions (templates/solutions/<template-id>.yaml, format in docs/templates.md):
 * what a learner types, device by device, plus the answers they submit. The tests here spawn a
 * template's lab, grade it untouched (its documented baseline), apply the solution exactly as
 * a learner would (a shell in the device, as the learner) and grade the same lab again.
 */
export const SolutionSchema = Type.Object(
  {
    template: Type.String({ minLength: 1 }),
    baseline_percent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    steps: Type.Array(
      Type.Object(
        {
          device: Type.String({ minLength: 1 }),
          run: Type.String({ minLength: 1, description: 'shell text run with /bin/sh -e as the learner in that device' }),
        },
        { additionalProperties: false },
      ),
    ),
    answers: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type ReferenceSolution = Static<typeof SolutionSchema>;

export const TEMPLATES_DIR = join(ROOT, 'templates');
export const SOLUTIONS_DIR = join(TEMPLATES_DIR, 'solutions');

export async function loadSolution(templateId: string): Promise<ReferenceSolution> {
  const doc: unknown = parse(await readFile(join(SOLUTIONS_DIR, `${templateId}.yaml`), 'utf8'));
  const errors = [...Value.Errors(SolutionSchema, doc)].map((e) => `${e.path}: ${e.message}`);
  assert.deepEqual(errors, [], `solution ${templateId}.yaml is malformed`);
  const solution = doc as ReferenceSolution;
  assert.equal(solution.template, templateId, 'a solution names the template it solves');
  return solution;
}

/** Applies the steps in order; a failing step fails the test with its output. */
export async function applySolution(rt: NetnsLabRuntime, scenarioId: string, solution: ReferenceSolution, variables: ScenarioVariables): Promise<void> {
  for (const [i, step] of solution.steps.entries()) {
    const res = await rt.exec(scenarioId, step.device, ['/bin/sh', '-ec', substituteVariables(step.run, variables)], { asLearner: true, timeoutMs: 60_000 });
    assert.equal(res.exitCode, 0, `step ${i} on ${step.device} exited ${res.exitCode}\n${step.run}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`);
  }
}

/** Answers with `{{var}}` in string values replaced by the scenario's variables. */
function answersFor(solution: ReferenceSolution, variables: ScenarioVariables): Record<string, unknown> {
  const sub = (v: unknown): unknown =>
    typeof v === 'string'
      ? substituteVariables(v, variables)
      : Array.isArray(v)
        ? v.map(sub)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sub(x)]))
          : v;
  return sub(solution.answers ?? {}) as Record<string, unknown>;
}

const statuses = (g: GradeOutput) => g.results.map((r) => `${r.id}=${r.status}${r.status === 'passed' ? '' : ` (${r.detail})`}`).join('\n  ');

export interface Proof {
  readonly template: LabTemplate;
  readonly untouched: GradeOutput;
  readonly solved: GradeOutput;
}

/**
 * One lab per template: grade untouched (must equal the solution's baseline_percent, default
 * 0), apply the reference solution, grade again (must be 100% with every criterion passed).
 * The grader is a pure function of the lab's state, so grading twice needs no second lab.
 */
export async function proveTemplate(t: TestContext, templateId: string): Promise<Proof> {
  const template = await loadTemplate(join(TEMPLATES_DIR, `${templateId}.yaml`));
  const solution = await loadSolution(templateId);
  const rt = makeRuntime(t);
  const scenarioId = uniqueId(templateId.replace(/-/g, '').slice(0, 12));
  const variables = scenarioVariables(template.variables, scenarioId);
  await rt.create(toLabSpec(template, scenarioId, variables));
  const signingKey = await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true });
  const grade = (answers: Record<string, unknown>) =>
    gradeScenario({
      scenario: {
        scenario_id: scenarioId,
        tenant_id: 'tenant-templates',
        template_id: template.id,
        template_version: template.version,
        track: template.track,
        subject: 'reference',
      },
      template,
      exec: labExec(rt, scenarioId),
      variables,
      answers,
      reason: 'submit',
      gradedAt: new Date(),
      signingKey,
    });

  const untouched = await grade({});
  const baseline = solution.baseline_percent ?? 0;
  assert.equal(untouched.score.percent, baseline, `${templateId} untouched should grade ${baseline}%:\n  ${statuses(untouched)}`);
  // A baseline made of checks that could not run would prove nothing: they must fail or be skipped.
  assert.deepEqual(
    untouched.results.filter((r) => r.status === 'error').map((r) => `${r.id}: ${r.detail}`),
    [],
    `${templateId}: checks in error on the untouched lab`,
  );

  await applySolution(rt, scenarioId, solution, variables);
  const solved = await grade(answersFor(solution, variables));
  assert.equal(solved.score.percent, 100, `${templateId} with the reference solution should grade 100%:\n  ${statuses(solved)}`);
  assert.ok(
    solved.results.every((r) => r.status === 'passed'),
    statuses(solved),
  );
  assert.deepEqual(solved.score.template, { id: template.id, version: template.version });
  return { template, untouched, solved };
}

/**
 * A learner gaming the grader: spawns the template's lab, applies `steps` as the learner (the
 * cheat), and grades it with `answers`. The caller asserts which criteria the cheat must not pass.
 */
export async function gradeCheat(
  t: TestContext,
  templateId: string,
  steps: ReferenceSolution['steps'],
  answers: Record<string, unknown> = {},
): Promise<{ grade: GradeOutput; statuses: string }> {
  const template = await loadTemplate(join(TEMPLATES_DIR, `${templateId}.yaml`));
  const rt = makeRuntime(t);
  const scenarioId = uniqueId(`cheat${templateId.replace(/-/g, '').slice(0, 8)}`);
  const variables = scenarioVariables(template.variables, scenarioId);
  await rt.create(toLabSpec(template, scenarioId, variables));
  await applySolution(rt, scenarioId, { template: templateId, steps }, variables);
  const grade = await gradeScenario({
    scenario: {
      scenario_id: scenarioId,
      tenant_id: 'tenant-templates',
      template_id: template.id,
      template_version: template.version,
      track: template.track,
      subject: 'cheat',
    },
    template,
    exec: labExec(rt, scenarioId),
    variables,
    answers,
    reason: 'submit',
    gradedAt: new Date(),
    signingKey: await loadVerdictSigningKey({ keyPath: undefined, allowEphemeral: true }),
  });
  return { grade, statuses: statuses(grade) };
}
