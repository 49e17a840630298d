import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { TSchema } from '@sinclair/typebox';
import { Value, type ValueError } from '@sinclair/typebox/value';
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import { LabRuntimeError } from '../runtime/errors.js';
import { validateLabSpec } from '../runtime/spec.js';
import { formatPath, pointerToSegments, TemplateInvalidError, type PathSegment, type TemplateProblem } from './errors.js';
import { TemplateSchema, type TemplateDocument } from './schema.js';
import { semanticProblems } from './semantic.js';
import { toLabSpec } from './to-spec.js';

/** A validated template. `version` is the stated one or, when absent, a hash of the content. */
export type LabTemplate = TemplateDocument & {
  readonly version: string;
  readonly versionSource: 'stated' | 'content';
  /** Where it was loaded from (a file path or a label), for messages. */
  readonly source: string;
};

/** Reads and validates a template file; throws TemplateInvalidError naming every problem with its path. */
export async function loadTemplate(file: string): Promise<LabTemplate> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new TemplateInvalidError(file, [
      { path: '(root)', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` },
    ]);
  }
  return parseTemplate(text, file);
}

/** Parses and validates template text (YAML, or JSON which is YAML too). */
export function parseTemplate(text: string, source = '<template>'): LabTemplate {
  const lineCounter = new LineCounter();
  const yamlDoc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (yamlDoc.errors.length > 0) {
    throw new TemplateInvalidError(
      source,
      yamlDoc.errors.map((e) => ({ path: '(root)', message: `YAML: ${e.message.split('\n')[0]}`, ...(e.linePos ? { line: e.linePos[0].line } : {}) })),
    );
  }
  const value: unknown = yamlDoc.toJS();
  const lineOf = (at: readonly PathSegment[]) => nodeLine(yamlDoc, lineCounter, at);
  const locate = (at: readonly PathSegment[], message: string): TemplateProblem => {
    const line = lineOf(at);
    return { path: formatPath(at), message, ...(line !== undefined ? { line } : {}) };
  };

  const schemaProblems = schemaErrors(value).map((e) => locate(e.at, e.message));
  if (schemaProblems.length > 0) throw new TemplateInvalidError(source, schemaProblems);
  const doc = value as TemplateDocument;

  const semantic = semanticProblems(doc).map((p) => locate(p.at, p.message));
  if (semantic.length > 0) throw new TemplateInvalidError(source, semantic);

  const template: LabTemplate = {
    ...doc,
    version: doc.version ?? contentVersion(doc),
    versionSource: doc.version !== undefined ? 'stated' : 'content',
    source,
  };
  // The runtime's own checks are the last word: a template it would refuse is invalid here.
  try {
    validateLabSpec(toLabSpec(template, 'scn_template_check'));
  } catch (err) {
    if (!(err instanceof LabRuntimeError)) throw err;
    throw new TemplateInvalidError(
      source,
      err.message.split('; ').map((m) => ({ path: 'topology', message: m })),
    );
  }
  return template;
}

/** `sha256-` and 16 hex digits of the canonical content (without `version`): formatting and comments do not count. */
export function contentVersion(doc: TemplateDocument): string {
  const { version: _ignored, ...content } = doc;
  return `sha256-${createHash('sha256').update(canonicalJson(content)).digest('hex').slice(0, 16)}`;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

interface SchemaProblem {
  readonly at: PathSegment[];
  readonly message: string;
}

/** The schema's errors, one per path (the first, most direct one), in words a template author reads. */
function schemaErrors(value: unknown): SchemaProblem[] {
  const seen = new Set<string>();
  const out: SchemaProblem[] = [];
  for (const error of Value.Errors(TemplateSchema, value)) {
    const at = pointerToSegments(error.path);
    const key = formatPath(at);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ at, message: describe(error) });
  }
  return out;
}

function describe(error: ValueError): string {
  const schema = error.schema as TSchema & { anyOf?: Array<{ const?: unknown }>; pattern?: string; description?: string };
  if (error.message === 'Expected required property') return 'is required';
  if (error.message === 'Unexpected property') return 'is not a known field';
  if (schema.anyOf && schema.anyOf.every((s) => s.const !== undefined)) {
    return `must be one of ${schema.anyOf.map((s) => String(s.const)).join(', ')} (got ${JSON.stringify(error.value)})`;
  }
  if (schema.pattern !== undefined && typeof error.value === 'string') {
    return `${JSON.stringify(error.value)} does not match ${schema.pattern}${schema.description ? ` (${schema.description})` : ''}`;
  }
  const got =
    error.value === null ? 'null' : Array.isArray(error.value) ? 'a list' : typeof error.value === 'object' ? 'a mapping' : JSON.stringify(error.value);
  return `${error.message.charAt(0).toLowerCase()}${error.message.slice(1)} (got ${got})`;
}

/** Line of the node at `at`, or of its nearest existing ancestor (for a missing field). */
function nodeLine(doc: Document, counter: LineCounter, at: readonly PathSegment[]): number | undefined {
  for (let n = at.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(at.slice(0, n), true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}
