import type { FastifyError, FastifyInstance, FastifyRequest, preValidationHookHandler } from 'fastify';
import { AppError } from './problem.js';
import { pointerToken } from '../json-pointer.js';

/**
 * Input every route refuses at the edge, before any handler sees it:
 * - a NUL character (U+0000): Postgres cannot hold it in text or jsonb ("unsupported Unicode
 *   escape sequence"), so it would surface as a 500 wherever it reached the database;
 * - a lone UTF-16 surrogate: no Unicode text at all (jsonb refuses it, RFC 8785 forbids it in a
 *   ledger record, and a text column would silently store U+FFFD instead);
 * - a body nested deeper than MAX_INPUT_DEPTH: no request of the API needs it, and recursive
 *   consumers (schema validators, canonical JSON, jsonb) would overflow their stack on it.
 * Strings are checked wherever they occur: body values and member names at any depth, query
 * parameters (names too), path parameters and header values.
 */
export const MAX_INPUT_DEPTH = 64;
/** Issues reported per request: enough to fix a batch, bounded so the answer stays small. */
const MAX_ISSUES = 20;

export interface InputIssue {
  readonly path: string;
  readonly message: string;
}

/** Why a string is refused, or undefined when it is acceptable. */
export function unsafeStringProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'contains a NUL character (U+0000), which is not accepted';
  if (!s.isWellFormed()) return 'contains a lone UTF-16 surrogate (not Unicode text), which is not accepted';
  return undefined;
}

/** A member name as one path segment: JSON Pointer escapes, and unprintable characters shown as \uXXXX. */
function segment(name: string): string {
  return (
    pointerToken(name)
      // eslint-disable-next-line no-control-regex -- escaping control characters is the point
      .replace(/[\u0000-\u001f\u007f\uD800-\uDFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  );
}

/**
 * JSON bodies whose text held no `\u` escape. Raw text cannot carry either refused character: a raw
 * NUL is a JSON syntax error, and UTF-8 decoding turns an encoded surrogate into U+FFFD. So only
 * their nesting is left to check, which spares a /defend request most of the guard's cost.
 */
const escapeFreeBodies = new WeakSet<object>();

/** True when nothing under `root` is refused (only its nesting, with `strings` false): the pass every request takes. */
function isClean(root: unknown, strings = true): boolean {
  const stack: unknown[] = [root];
  const depths: number[] = [0];
  while (stack.length > 0) {
    const value = stack.pop();
    const depth = depths.pop()!;
    if (typeof value === 'string') {
      if (strings && unsafeStringProblem(value) !== undefined) return false;
      continue;
    }
    if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) continue;
    if (depth >= MAX_INPUT_DEPTH) return false;
    if (Array.isArray(value)) {
      for (const item of value) {
        stack.push(item);
        depths.push(depth + 1);
      }
      continue;
    }
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      if (strings && unsafeStringProblem(key) !== undefined) return false;
      stack.push((value as Record<string, unknown>)[key]);
      depths.push(depth + 1);
    }
  }
  return true;
}

/** Every refused string or nesting under `root`, in document order, each with its path (`base/a/0/b`). */
export function unsafeInputIssues(root: unknown, base: string, limit = MAX_ISSUES): InputIssue[] {
  const strings = root === null || typeof root !== 'object' || !escapeFreeBodies.has(root);
  if (isClean(root, strings)) return [];
  const issues: InputIssue[] = [];
  // Iterative, so input nested far past the limit cannot overflow the stack here either.
  const stack: Array<{ value: unknown; path: string; depth: number }> = [{ value: root, path: base, depth: 0 }];
  while (stack.length > 0 && issues.length < limit) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === 'string') {
      const problem = unsafeStringProblem(value);
      if (problem) issues.push({ path, message: problem });
      continue;
    }
    if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) continue;
    if (depth >= MAX_INPUT_DEPTH) {
      issues.push({ path, message: `nests deeper than ${MAX_INPUT_DEPTH} levels` });
      continue;
    }
    const children: Array<{ value: unknown; path: string; depth: number }> = [];
    if (Array.isArray(value)) {
      value.forEach((item, i) => children.push({ value: item, path: `${path}/${i}`, depth: depth + 1 }));
    } else {
      for (const key of Object.keys(value)) {
        const childPath = `${path}/${segment(key)}`;
        const problem = unsafeStringProblem(key);
        if (problem) issues.push({ path: childPath, message: `is a field name that ${problem}` });
        children.push({ value: (value as Record<string, unknown>)[key], path: childPath, depth: depth + 1 });
      }
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return issues.slice(0, limit);
}

/** The refused input of a whole request: headers, path parameters, query and body. */
export function requestInputIssues(request: Pick<FastifyRequest, 'headers' | 'params' | 'query' | 'body'>): InputIssue[] {
  const issues: InputIssue[] = [];
  const headers = request.headers;
  for (const name in headers) {
    const value = headers[name];
    for (const v of typeof value === 'string' ? [value] : Array.isArray(value) ? value : []) {
      const problem = unsafeStringProblem(v);
      if (problem) issues.push({ path: `headers/${segment(name)}`, message: problem });
    }
  }
  issues.push(...unsafeInputIssues(request.params, 'params'), ...unsafeInputIssues(request.query, 'querystring'), ...unsafeInputIssues(request.body, 'body'));
  return issues.slice(0, MAX_ISSUES);
}

/** The problem for refused input: validation_failed naming each field, like a schema error. */
export function unsafeInputError(issues: readonly InputIssue[]): AppError {
  const first = issues[0]!;
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return new AppError('validation_failed', `${first.path} ${first.message}${more}`, { errors: issues });
}

/** preValidation: runs after the auth gate (an unauthenticated request still gets 401) and before any handler. */
export const refuseUnsafeInput: preValidationHookHandler = (request, _reply, done) => {
  const issues = requestInputIssues(request);
  done(issues.length > 0 ? unsafeInputError(issues) : undefined);
};

/** Paths of members JSON.parse keeps but the body parser refuses (they would reach an object's prototype). */
function prototypeMembers(root: unknown): string[] {
  const found: string[] = [];
  const stack: Array<{ value: unknown; path: string }> = [{ value: root, path: 'body' }];
  while (stack.length > 0 && found.length < MAX_ISSUES) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    for (const [key, child] of entries) {
      const childPath = `${path}/${segment(key)}`;
      if (
        !Array.isArray(value) &&
        (key === '__proto__' || (key === 'constructor' && child !== null && typeof child === 'object' && Object.hasOwn(child, 'prototype')))
      )
        found.push(childPath);
      stack.push({ value: child, path: childPath });
    }
  }
  return found;
}

/**
 * The JSON body parser: Fastify's own (which refuses `__proto__` and `constructor.prototype`
 * members), with errors that say what is wrong. Its own error says only "not valid JSON", also for
 * valid JSON that it refuses on purpose; this one gives the parser's position, or the member's path.
 */
export function useExplainedJsonParser(app: Pick<FastifyInstance, 'getDefaultJsonParser' | 'removeContentTypeParser' | 'addContentTypeParser'>): void {
  const strict = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    void strict(request, body as string, (err: Error | null, value?: unknown) => {
      if (err && (err as FastifyError).code === 'FST_ERR_CTP_INVALID_JSON_BODY') return done(explainJsonError(body as string), undefined);
      if (err) return done(err, undefined);
      if (value !== null && typeof value === 'object' && !(body as string).includes('\\u')) escapeFreeBodies.add(value);
      return done(null, value);
    });
  });
}

function explainJsonError(body: string): AppError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    return new AppError('malformed_json', `body is not valid JSON: ${(err as Error).message}`);
  }
  const paths = prototypeMembers(parsed);
  const errors = paths.map((path) => ({
    path,
    message: 'is a member name that is not accepted (__proto__, or constructor with a prototype member, would reach an object prototype)',
  }));
  if (errors.length === 0) return new AppError('malformed_json', 'body is not valid JSON');
  return new AppError('validation_failed', `${errors[0]!.path} ${errors[0]!.message}`, { errors });
}
