import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { PolicyEngine } from '../../src/policy/engine.js';
import {
  formatCaseResult,
  loadPolicyCaseFiles,
  parsePolicyCaseFile,
  PolicyCaseFileError,
  runPolicyCase,
  runPolicyCaseFile,
  type PolicyCaseFile,
} from '../../src/policy/test-cases.js';

// Loaded at module level so each case becomes its own named test.
const caseFiles: PolicyCaseFile[] = await loadPolicyCaseFiles();

describe('policy test cases (policies/tests/*.json) through the real engine', () => {
  let engine: PolicyEngine;
  before(async () => {
    engine = await PolicyEngine.load();
  });

  it('there is a case file for each policy file', () => {
    assert.deepEqual(caseFiles.map((f) => f.file).sort(), ['extend.json', 'governance.json', 'quota.json', 'spawn.json', 'training.json']);
  });

  for (const file of caseFiles) {
    describe(file.file, () => {
      file.cases.forEach((c, index) => {
        it(`#${index} ${c.description}`, () => {
          const r = runPolicyCase(engine, file.file, index, c);
          assert.ok(r.passed, formatCaseResult(r));
        });
      });
    });
  }
});

describe('policy case runner', () => {
  it('reports a case whose expectation does not hold, naming decision and reasons', async () => {
    const engine = await PolicyEngine.load();
    const [training] = caseFiles.filter((f) => f.file === 'training.json');
    assert.ok(training);
    const allowCase = training.cases.find((c) => c.expected.decision === 'allow');
    assert.ok(allowCase);
    const wrong = { ...allowCase, expected: { decision: 'deny' as const, reasons: ['training.no_credits'] } };
    const [r] = runPolicyCaseFile(engine, { file: 'x.json', cases: [wrong] });
    assert.ok(r);
    assert.equal(r.passed, false);
    assert.match(r.problems.join('\n'), /decision: expected deny, got allow/);
    assert.match(r.problems.join('\n'), /reasons: expected \[training\.no_credits\], got \[training\.netplus\]/);
  });

  it('reports unexpected errors', async () => {
    const engine = await PolicyEngine.load();
    const c = {
      description: 'no context at all',
      request: { principal: { type: 'Learner', id: 'a' }, action: { type: 'Action', id: 'spawn' }, resource: { type: 'Template', id: 't' } },
      expected: { decision: 'deny' as const },
    };
    const r = runPolicyCase(engine, 'x.json', 0, c);
    assert.equal(r.passed, false);
    assert.match(r.problems.join('\n'), /errors: expected none, got/);
  });

  it('refuses a malformed case file with the path of the problem', () => {
    const text = JSON.stringify({ cases: [{ description: 'x', request: { principal: { type: 'Learner', id: 'a' } }, expected: { decision: 'maybe' } }] });
    assert.throws(
      () => parsePolicyCaseFile('bad.json', text),
      (err: unknown) => err instanceof PolicyCaseFileError && err.file === 'bad.json' && err.problems.some((p) => p.startsWith('/cases/0/')),
    );
    assert.throws(() => parsePolicyCaseFile('bad.json', '{'), PolicyCaseFileError);
  });
});
