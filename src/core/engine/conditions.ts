import { Type, type Static } from '@sinclair/typebox';
import type { ValidationIssue } from './errors.js';
import type { SecurityEvent } from './event.js';
import { fieldPathProblem, getField } from './fields.js';
import { anyCidrContains, parseCidr, parseIp, type Cidr } from './ip.js';
import { compileSafeRegex, type SafeRegex } from './safe-regex.js';

/**
 * A condition is one of:
 * - `{all: [cond, ...]}`, `{any: [cond, ...]}`, `{not: cond}`;
 * - `{field: "<path>", <op>: ..., ...}` with one or more operators, all of which must hold:
 *   `eq` (string/number/boolean, strict), `in` (list), `cidr` (list of IPv4/IPv6 networks),
 *   `gt`/`gte`/`lt`/`lte` (numbers), `regex` (the safe subset, see safe-regex.ts),
 *   `exists` (true/false), `case_insensitive` (applies to eq, in and regex on strings).
 * A missing field satisfies only `exists: false`. No type coercion: "404" is not 404.
 */
export const ConditionSchema = Type.Recursive(
  (Self) =>
    Type.Object(
      {
        all: Type.Optional(Type.Array(Self, { minItems: 1, maxItems: 64 })),
        any: Type.Optional(Type.Array(Self, { minItems: 1, maxItems: 64 })),
        not: Type.Optional(Self),
        field: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
        eq: Type.Optional(Type.Union([Type.String({ maxLength: 1024 }), Type.Number(), Type.Boolean()])),
        in: Type.Optional(Type.Array(Type.Union([Type.String({ maxLength: 1024 }), Type.Number()]), { minItems: 1, maxItems: 10000 })),
        cidr: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 10000 })),
        gt: Type.Optional(Type.Number()),
        gte: Type.Optional(Type.Number()),
        lt: Type.Optional(Type.Number()),
        lte: Type.Optional(Type.Number()),
        regex: Type.Optional(Type.String({ minLength: 1 })),
        exists: Type.Optional(Type.Boolean()),
        case_insensitive: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
  { $id: 'Condition' },
);

export type Condition = Static<typeof ConditionSchema>;

export type Predicate = (event: SecurityEvent) => boolean;

const COMBINATORS = ['all', 'any', 'not'] as const;
const OPERATORS = ['eq', 'in', 'cidr', 'gt', 'gte', 'lt', 'lte', 'regex', 'exists'] as const;
const MAX_DEPTH = 12;

/** Compiles a structurally valid condition; pushes semantic problems to `issues` (then returns undefined). */
export function compileCondition(cond: Condition, path: string, issues: ValidationIssue[], depth = 0): Predicate | undefined {
  const before = issues.length;
  const fail = (p: string, message: string): void => {
    issues.push({ path: p, message });
  };
  if (depth > MAX_DEPTH) {
    fail(path, `conditions nest deeper than ${MAX_DEPTH} levels`);
    return undefined;
  }
  const kinds = [...COMBINATORS.filter((k) => cond[k] !== undefined), ...(cond.field !== undefined ? ['field'] : [])];
  if (kinds.length !== 1) {
    fail(path, kinds.length === 0 ? 'needs one of all, any, not or field' : `has ${kinds.join(' and ')}; use exactly one (nest them with all/any)`);
    return undefined;
  }
  if (cond.all || cond.any) {
    const key = cond.all ? 'all' : 'any';
    const strays = [...OPERATORS, 'case_insensitive' as const].filter((op) => cond[op] !== undefined);
    if (strays.length) fail(path, `${strays.join(', ')} need a field; put them in a {field: ...} condition`);
    const parts = (cond.all ?? cond.any)!.map((c, i) => compileCondition(c, `${path}.${key}[${i}]`, issues, depth + 1));
    if (issues.length > before) return undefined;
    const preds = parts as Predicate[];
    return key === 'all' ? (e) => preds.every((p) => p(e)) : (e) => preds.some((p) => p(e));
  }
  if (cond.not) {
    const inner = compileCondition(cond.not, `${path}.not`, issues, depth + 1);
    if (!inner || issues.length > before) return undefined;
    return (e) => !inner(e);
  }
  return compileField(cond, path, issues);
}

function compileField(cond: Condition, path: string, issues: ValidationIssue[]): Predicate | undefined {
  const before = issues.length;
  const fail = (p: string, message: string): void => {
    issues.push({ path: p, message });
  };
  const field = cond.field!;
  const fieldProblem = fieldPathProblem(field);
  if (fieldProblem) fail(`${path}.field`, fieldProblem);
  const ops = OPERATORS.filter((op) => cond[op] !== undefined);
  if (ops.length === 0) fail(path, `field "${field}" needs an operator: one of ${OPERATORS.join(', ')}`);
  const ci = cond.case_insensitive === true;
  if (cond.case_insensitive !== undefined && cond.eq === undefined && cond.in === undefined && cond.regex === undefined) {
    fail(`${path}.case_insensitive`, 'applies only with eq, in or regex');
  }
  const checks: Array<(v: unknown) => boolean> = [];
  if (cond.eq !== undefined) {
    const want = cond.eq;
    if (ci && typeof want === 'string') {
      const lower = want.toLowerCase();
      checks.push((v) => typeof v === 'string' && v.toLowerCase() === lower);
    } else checks.push((v) => v === want);
  }
  if (cond.in !== undefined) {
    const set = new Set<string | number>(cond.in.map((x) => (ci && typeof x === 'string' ? x.toLowerCase() : x)));
    checks.push((v) => (typeof v === 'string' ? set.has(ci ? v.toLowerCase() : v) : typeof v === 'number' && set.has(v)));
  }
  if (cond.cidr !== undefined) {
    const cidrs: Cidr[] = [];
    cond.cidr.forEach((text, i) => {
      const parsed = parseCidr(text);
      if (parsed.ok) cidrs.push(parsed.cidr);
      else fail(`${path}.cidr[${i}]`, `invalid CIDR "${text}": ${parsed.reason}`);
    });
    checks.push((v) => {
      if (typeof v !== 'string') return false;
      const ip = parseIp(v);
      return ip !== undefined && anyCidrContains(cidrs, ip);
    });
  }
  const bounds = { gt: cond.gt, gte: cond.gte, lt: cond.lt, lte: cond.lte };
  const lower = Math.max(bounds.gt ?? -Infinity, bounds.gte ?? -Infinity);
  const upper = Math.min(bounds.lt ?? Infinity, bounds.lte ?? Infinity);
  if (lower > upper || (lower === upper && (bounds.gt === lower || bounds.lt === upper))) fail(path, `the numeric range is empty (${lower} to ${upper})`);
  if (bounds.gt !== undefined) checks.push((v) => typeof v === 'number' && v > bounds.gt!);
  if (bounds.gte !== undefined) checks.push((v) => typeof v === 'number' && v >= bounds.gte!);
  if (bounds.lt !== undefined) checks.push((v) => typeof v === 'number' && v < bounds.lt!);
  if (bounds.lte !== undefined) checks.push((v) => typeof v === 'number' && v <= bounds.lte!);
  if (cond.regex !== undefined) {
    let re: SafeRegex | undefined;
    try {
      re = compileSafeRegex(cond.regex, ci);
    } catch (err) {
      fail(`${path}.regex`, (err as Error).message);
    }
    if (re) {
      const compiled = re;
      checks.push((v) => typeof v === 'string' && compiled.test(v));
    }
  }
  if (issues.length > before) return undefined;
  const present = (v: unknown): boolean => v !== undefined && v !== null;
  const exists = cond.exists;
  return (event) => {
    const value = getField(event, field);
    if (exists !== undefined && present(value) !== exists) return false;
    if (!present(value)) return checks.length === 0;
    for (const check of checks) if (!check(value)) return false;
    return true;
  };
}
