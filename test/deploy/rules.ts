import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../helpers/cli.js';

/** deploy/prometheus: the scrape config, the rules and their promtool unit tests. */
export const PROM_DIR = path.join(ROOT, 'deploy/prometheus');
export const RULES_FILE = path.join(PROM_DIR, 'rules/frostgate.rules.yml');
export const RULE_TESTS_FILE = path.join(PROM_DIR, 'tests/frostgate.test.yml');

export interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly annotations?: Record<string, string>;
}

export function loadRules(): Rule[] {
  const doc = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

const FUNCTIONS_AND_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/**
 * The vector selectors of a PromQL expression (metric name with its matchers), without the
 * functions, aggregations, grouping labels, durations and strings around them. Enough for the
 * expressions we write; an expression it cannot read fails the tests that use it loudly.
 */
export function selectors(expr: string): string[] {
  // Everything removed is replaced by as many spaces, so positions stay those of `expr`.
  const blank = (s: string) => ' '.repeat(s.length);
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, (s) => s.replace(/[^"]/g, '_')) // keep string positions, hide their words
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, blank)
    .replace(/\[[^\]]*\]/g, blank);
  const out: string[] = [];
  const re = /([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?/g;
  for (let m = re.exec(stripped); m; m = re.exec(stripped)) {
    const [, name, matchers] = m;
    const after = stripped.slice(m.index + m[0].length);
    if (/^\s*\(/.test(after) && !matchers) continue; // a function or an aggregation
    if (FUNCTIONS_AND_KEYWORDS.has(name!.toLowerCase())) continue;
    if (/[\d.]/.test(stripped[m.index - 1] ?? '')) continue; // the exponent of a number (1e-9)
    const start = m.index;
    // Restore the real matcher text (strings were hidden above).
    out.push(expr.slice(start, start + m[0].length).trim());
  }
  return [...new Set(out)];
}
