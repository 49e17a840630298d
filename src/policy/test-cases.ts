/**
 * Policy test cases as data: `policies/tests/*.json`, each case a request, the entities it
 * needs and the expected decision (optionally the exact policy ids that decide). They run
 * through the real engine in `npm test` (test/policy/policy-cases.test.ts) and from the
 * command line while editing policies:
 *
 *   npx tsx src/policy/test-cases.ts [policies-dir] [cases-dir]
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { PolicyEngine } from './engine.js';
import { DEFAULT_POLICY_DIR } from './load.js';
import type { AuthorizationRequest, PolicyDecision, PolicyEntity } from './types.js';

const Uid = Type.Object({ type: Type.String({ minLength: 1 }), id: Type.String() }, { additionalProperties: false });

// Values are checked by Cedar against the schema when the case runs; here only the frame.
const Attrs = Type.Record(Type.String(), Type.Unknown());

const PolicyCaseSchema = Type.Object(
  {
    description: Type.String({ minLength: 1 }),
    request: Type.Object({ principal: Uid, action: Uid, resource: Uid, context: Type.Optional(Attrs) }, { additionalProperties: false }),
    entities: Type.Optional(
      Type.Array(Type.Object({ uid: Uid, attrs: Type.Optional(Attrs), parents: Type.Optional(Type.Array(Uid)) }, { additionalProperties: false })),
    ),
    expected: Type.Object(
      {
        decision: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
        /** Exact set of deciding policy ids; omitted = not checked. */
        reasons: Type.Optional(Type.Array(Type.String())),
        /** Whether the engine is expected to report errors (default false). */
        errors: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const PolicyCaseFileSchema = Type.Object(
  { description: Type.Optional(Type.String()), cases: Type.Array(PolicyCaseSchema, { minItems: 1 }) },
  { additionalProperties: false },
);

export type PolicyCase = Static<typeof PolicyCaseSchema>;

export interface PolicyCaseFile {
  readonly file: string;
  readonly description?: string;
  readonly cases: readonly PolicyCase[];
}

export interface PolicyCaseResult {
  readonly file: string;
  readonly index: number;
  readonly description: string;
  readonly passed: boolean;
  /** What differed from the expectation; empty when passed. */
  readonly problems: readonly string[];
  readonly actual: PolicyDecision;
}

/** A case file that is not valid JSON or does not have the case file shape. */
export class PolicyCaseFileError extends Error {
  readonly code = 'policy_case_file_invalid';
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file}: invalid policy case file:\n${problems.join('\n')}`);
  }
}

export const DEFAULT_CASES_DIR = join(DEFAULT_POLICY_DIR, 'tests');

/** Reads and checks every `*.json` case file in a directory (sorted by name). */
export async function loadPolicyCaseFiles(dir: string = DEFAULT_CASES_DIR): Promise<PolicyCaseFile[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  const files: PolicyCaseFile[] = [];
  for (const name of names) files.push(parsePolicyCaseFile(name, await readFile(join(dir, name), 'utf8')));
  return files;
}

export function parsePolicyCaseFile(file: string, text: string): PolicyCaseFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new PolicyCaseFileError(file, [(err as Error).message]);
  }
  if (!Value.Check(PolicyCaseFileSchema, data)) {
    const problems = [...Value.Errors(PolicyCaseFileSchema, data)].slice(0, 20).map((e) => `${e.path || '/'}: ${e.message}`);
    throw new PolicyCaseFileError(file, problems);
  }
  return { file, ...(data.description === undefined ? {} : { description: data.description }), cases: data.cases };
}

/** Runs one case through the engine and compares the decision with the expectation. */
export function runPolicyCase(engine: Pick<PolicyEngine, 'authorize'>, file: string, index: number, c: PolicyCase): PolicyCaseResult {
  const request: AuthorizationRequest = {
    principal: c.request.principal,
    action: c.request.action,
    resource: c.request.resource,
    // Attribute values were only frame-checked; Cedar checks them against the schema.
    context: (c.request.context ?? {}) as AuthorizationRequest['context'],
    entities: (c.entities ?? []) as readonly PolicyEntity[],
  };
  const actual = engine.authorize(request);
  const problems: string[] = [];
  if (actual.decision !== c.expected.decision) problems.push(`decision: expected ${c.expected.decision}, got ${actual.decision}`);
  if (c.expected.reasons) {
    const want = [...c.expected.reasons].sort();
    const got = [...actual.reasons].sort();
    if (want.join('\n') !== got.join('\n')) problems.push(`reasons: expected [${want.join(', ')}], got [${got.join(', ')}]`);
  }
  const wantErrors = c.expected.errors ?? false;
  if (wantErrors !== actual.errors.length > 0) {
    problems.push(wantErrors ? 'errors: expected some, got none' : `errors: expected none, got ${actual.errors.join('; ')}`);
  }
  return { file, index, description: c.description, passed: problems.length === 0, problems, actual };
}

export function runPolicyCaseFile(engine: Pick<PolicyEngine, 'authorize'>, f: PolicyCaseFile): PolicyCaseResult[] {
  return f.cases.map((c, i) => runPolicyCase(engine, f.file, i, c));
}

export function formatCaseResult(r: PolicyCaseResult): string {
  const head = `${r.passed ? 'PASS' : 'FAIL'} ${r.file}#${r.index} ${r.description}`;
  return r.passed ? head : `${head}\n  ${r.problems.join('\n  ')}`;
}

async function main(): Promise<void> {
  const policyDir = process.argv[2] ?? DEFAULT_POLICY_DIR;
  const casesDir = process.argv[3] ?? join(policyDir, 'tests');
  const engine = await PolicyEngine.load(policyDir);
  let failed = 0;
  let total = 0;
  for (const f of await loadPolicyCaseFiles(casesDir)) {
    for (const r of runPolicyCaseFile(engine, f)) {
      total++;
      if (!r.passed) failed++;
      console.log(formatCaseResult(r));
    }
  }
  console.log(`${total - failed}/${total} policy cases passed (policy version ${engine.version})`);
  process.exitCode = failed > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 2;
  });
}
