import { createHash } from 'node:crypto';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { PolicyLoadError, type PolicyIssue } from './errors.js';
import type { PolicyBundle, PolicySources } from './types.js';

/** Name used for the schema in issues when the bundle came from texts, not files. */
export const SCHEMA_SOURCE = 'schema.cedarschema';

/**
 * A policy set that parsed, carries an `@id` on every policy and validated against the
 * schema in strict mode: ready to be pre-parsed into Cedar's cache.
 */
export interface CompiledPolicySet {
  /** Content hash of the policy texts and schema: the same bundle gives the same version on every node. */
  readonly version: string;
  /** Policy id -> policy text, as Cedar's static policy set. */
  readonly policies: Readonly<Record<string, string>>;
  /** Policy id -> source it came from. */
  readonly sourceOf: Readonly<Record<string, string>>;
  readonly schema: cedar.Schema;
  /** Validator warnings (not fatal), e.g. a policy that can never apply. */
  readonly warnings: readonly PolicyIssue[];
  readonly bundle: PolicyBundle;
}

interface SplitPolicy {
  readonly id: string;
  readonly text: string;
  readonly source: string;
  /** Byte offset of the policy text in its source, to turn Cedar's offsets into file lines. */
  readonly byteOffset: number;
  readonly sourceText: string;
}

/** Parses, checks ids and validates a bundle; throws PolicyLoadError naming every problem. */
export function compilePolicyBundle(bundle: PolicyBundle, schemaSource = SCHEMA_SOURCE): CompiledPolicySet {
  const schema = bundle.schema as cedar.Schema;
  const schemaText = typeof bundle.schema === 'string' ? bundle.schema : undefined;

  const schemaCheck = cedar.checkParseSchema(schema);
  if (schemaCheck.type === 'failure') {
    throw new PolicyLoadError(
      'policy_schema_invalid',
      schemaCheck.errors.map((e) => issueFrom(e, schemaSource, schemaText, 0)),
    );
  }

  const split = splitSources(bundle.policies);
  if (split.length === 0) {
    throw new PolicyLoadError('policy_set_empty', [
      { source: Object.keys(bundle.policies).join(', ') || '(no policy files)', message: 'no policies found; an empty policy set would deny every request' },
    ]);
  }

  const policies: Record<string, string> = {};
  const sourceOf: Record<string, string> = {};
  const byId = new Map<string, SplitPolicy>();
  for (const p of split) {
    policies[p.id] = p.text;
    sourceOf[p.id] = p.source;
    byId.set(p.id, p);
  }

  const answer = cedar.validate({ schema, policies: { staticPolicies: policies }, validationSettings: { mode: 'strict' } });
  if (answer.type === 'failure') {
    // Validation could not run at all (the schema parsed but is unusable, e.g. duplicate actions).
    throw new PolicyLoadError(
      'policy_schema_invalid',
      answer.errors.map((e) => issueFrom(e, schemaSource, schemaText, 0)),
    );
  }
  const locate = (policyId: string, error: cedar.DetailedError): PolicyIssue => {
    const p = byId.get(policyId);
    if (!p) return { source: '(unknown)', policyId, message: describe(error) };
    return { ...issueFrom(error, p.source, p.sourceText, p.byteOffset), policyId };
  };
  if (answer.validationErrors.length > 0) {
    throw new PolicyLoadError(
      'policy_validation',
      answer.validationErrors.map((v) => locate(v.policyId, v.error)),
    );
  }
  const warnings = answer.validationWarnings.map((v) => locate(v.policyId, v.error));
  return { version: versionOf(bundle), policies, sourceOf, schema, warnings, bundle };
}

/** Splits every source into single policies keyed by their `@id`, checking ids are present and unique. */
function splitSources(sources: PolicySources): SplitPolicy[] {
  const out: SplitPolicy[] = [];
  const syntax: PolicyIssue[] = [];
  const ids: PolicyIssue[] = [];
  const templates: PolicyIssue[] = [];
  const seen = new Map<string, string>();

  for (const source of Object.keys(sources).sort()) {
    const text = sources[source] ?? '';
    const parts = cedar.policySetTextToParts(text);
    if (parts.type === 'failure') {
      syntax.push(...parts.errors.map((e) => issueFrom(e, source, text, 0)));
      continue;
    }
    for (const t of parts.policy_templates) {
      templates.push({
        source,
        ...positionOf(text, Buffer.byteLength(text.slice(0, Math.max(0, text.indexOf(t))))),
        message: 'policy templates (slots such as ?principal) are not supported; write a static policy',
      });
    }
    const used = new Set<number>();
    for (const policyText of parts.policies) {
      const charIndex = findUnused(text, policyText, used);
      const byteOffset = charIndex < 0 ? 0 : Buffer.byteLength(text.slice(0, charIndex));
      const pos = charIndex < 0 ? {} : positionOf(text, byteOffset);
      const json = cedar.policyToJson(policyText);
      const id = json.type === 'success' ? json.json.annotations?.['id'] : undefined;
      if (!id) {
        ids.push({ source, ...pos, message: 'policy has no @id("...") annotation; every policy needs a stable id' });
        continue;
      }
      const earlier = seen.get(id);
      if (earlier !== undefined) {
        ids.push({ source, ...pos, policyId: id, message: `@id "${id}" is already used in ${earlier}` });
        continue;
      }
      seen.set(id, source);
      out.push({ id, text: policyText, source, byteOffset, sourceText: text });
    }
  }
  if (syntax.length > 0) throw new PolicyLoadError('policy_syntax', syntax);
  if (templates.length > 0) throw new PolicyLoadError('policy_template_unsupported', templates);
  if (ids.length > 0) throw new PolicyLoadError('policy_id', ids);
  return out;
}

/** Cedar returns each policy as the exact slice of its source; find where, once per slice. */
function findUnused(text: string, part: string, used: Set<number>): number {
  let from = 0;
  for (;;) {
    const at = text.indexOf(part, from);
    if (at < 0 || !used.has(at)) {
      if (at >= 0) used.add(at);
      return at;
    }
    from = at + 1;
  }
}

function issueFrom(e: cedar.DetailedError, source: string, sourceText: string | undefined, byteOffset: number): PolicyIssue {
  const loc = e.sourceLocations?.[0];
  const pos = loc && sourceText !== undefined ? positionOf(sourceText, byteOffset + loc.start) : {};
  return { source, ...pos, message: describe(e) };
}

function describe(e: cedar.DetailedError): string {
  const label = e.sourceLocations?.find((l) => l.label)?.label;
  const parts = [e.message];
  if (label) parts.push(`(${label})`);
  if (e.help) parts.push(`hint: ${e.help}`);
  return parts.join(' ');
}

/** 1-based line and column of a byte offset (Cedar reports UTF-8 byte offsets). */
function positionOf(text: string, byteOffset: number): { line: number; column: number } {
  const before = Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}

function versionOf(bundle: PolicyBundle): string {
  const h = createHash('sha256');
  for (const name of Object.keys(bundle.policies).sort()) {
    h.update(`policy\0${name}\0${bundle.policies[name] ?? ''}\0`);
  }
  h.update(`schema\0${typeof bundle.schema === 'string' ? bundle.schema : JSON.stringify(bundle.schema)}`);
  return `pol_${h.digest('hex').slice(0, 16)}`;
}
