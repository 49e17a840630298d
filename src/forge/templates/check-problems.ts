import { Value } from '@sinclair/typebox/value';
import { COMBINATOR_TYPES, LEAF_CHECKS, type LeafCheckType } from './checks.js';
import { pointerToSegments, type PathSegment } from './errors.js';

interface Problem {
  readonly at: readonly PathSegment[];
  readonly message: string;
}

interface Context {
  readonly devices: ReadonlySet<string>;
  readonly variables: ReadonlySet<string>;
}

const REGEX_FIELDS = ['stdout_regex', 'stdout_not_regex', 'regex', 'not_regex', 'cmdline_regex', 'expect_regex', 'body_regex', 'body_not_regex'];
const DEVICE_FIELDS = ['device', 'from'];
const MAX_DEPTH = 4;

function isLeafType(type: unknown): type is LeafCheckType {
  return typeof type === 'string' && Object.hasOwn(LEAF_CHECKS, type);
}

/**
 * Problems of one check (the schema of its own type, then what that schema cannot say: devices
 * and variables it names, regular expressions that do not compile, quiz answers out of range).
 */
export function checkProblems(check: unknown, at: readonly PathSegment[], ctx: Context, depth = 0): Problem[] {
  const out: Problem[] = [];
  const record = check as Record<string, unknown>;
  const type = record.type;
  if ((COMBINATOR_TYPES as readonly unknown[]).includes(type)) {
    const allowed = type === 'at_least' ? ['type', 'checks', 'k'] : ['type', 'checks'];
    for (const key of Object.keys(record)) if (!allowed.includes(key)) out.push({ at: [...at, key], message: `is not a field of ${String(type)}` });
    const checks = record.checks;
    if (!Array.isArray(checks) || checks.length === 0) return [...out, { at: [...at, 'checks'], message: 'must list at least one check' }];
    if (depth >= MAX_DEPTH) return [...out, { at, message: `combinators nest at most ${MAX_DEPTH} deep` }];
    if (type === 'at_least') {
      const k = record.k;
      if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > checks.length)
        out.push({ at: [...at, 'k'], message: `must be an integer 1..${checks.length}` });
    }
    checks.forEach((c, i) => {
      if (typeof c !== 'object' || c === null || Array.isArray(c)) out.push({ at: [...at, 'checks', i], message: 'must be a check (a mapping with a type)' });
      else out.push(...checkProblems(c, [...at, 'checks', i], ctx, depth + 1));
    });
    return out;
  }
  if (!isLeafType(type)) return [{ at: [...at, 'type'], message: `unknown check type ${JSON.stringify(type)}` }];

  const seen = new Set<string>();
  for (const error of Value.Errors(LEAF_CHECKS[type], check)) {
    const path = [...at, ...pointerToSegments(error.path)];
    const key = path.join('.');
    if (seen.has(key)) continue;
    seen.add(key);
    const message =
      error.message === 'Expected required property'
        ? 'is required'
        : error.message === 'Unexpected property'
          ? `is not a field of ${type} checks`
          : `${error.message.charAt(0).toLowerCase()}${error.message.slice(1)}`;
    out.push({ at: path, message });
  }
  if (out.length > 0) return out;

  for (const field of DEVICE_FIELDS) {
    const v = record[field];
    if (typeof v === 'string' && !ctx.devices.has(v)) out.push({ at: [...at, field], message: `unknown device ${v}` });
  }
  for (const field of REGEX_FIELDS) {
    const v = record[field];
    if (typeof v !== 'string') continue;
    try {
      new RegExp(v, 'm');
    } catch (err) {
      out.push({ at: [...at, field], message: `not a regular expression: ${(err as Error).message}` });
    }
  }
  if (type === 'command' && (record.json_path === undefined) !== (record.json_equals === undefined)) {
    out.push({ at: [...at, 'json_path'], message: 'json_path and json_equals go together' });
  }
  if (type === 'process' && record.name === undefined && record.cmdline_regex === undefined) out.push({ at, message: 'needs name or cmdline_regex' });
  if (type === 'answer') {
    const ways = ['exact', 'regex', 'variable'].filter((k) => record[k] !== undefined);
    if (ways.length !== 1) out.push({ at, message: 'needs exactly one of exact, regex, variable' });
    const variable = record.variable;
    if (typeof variable === 'string' && !ctx.variables.has(variable)) out.push({ at: [...at, 'variable'], message: `unknown variable ${variable}` });
  }
  if (type === 'quiz') {
    const questions = record.questions as Array<{ id: string; kind: string; choices?: string[]; correct?: number[] }>;
    const ids = new Set<string>();
    questions.forEach((q, i) => {
      if (ids.has(q.id)) out.push({ at: [...at, 'questions', i, 'id'], message: `question ${q.id} appears twice` });
      ids.add(q.id);
      if (q.kind === 'choice') {
        for (const c of q.correct ?? []) {
          if (c >= (q.choices?.length ?? 0)) out.push({ at: [...at, 'questions', i, 'correct'], message: `choice ${c} does not exist` });
        }
      }
    });
    const min = record.min_correct;
    if (typeof min === 'number' && min > questions.length) out.push({ at: [...at, 'min_correct'], message: `is more than the ${questions.length} questions` });
  }
  return out;
}
