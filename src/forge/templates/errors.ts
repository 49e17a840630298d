import { pointerTokens } from '../../platform/json-pointer.js';

/** One problem in a template, located by its path in the document (and its line when known). */
export interface TemplateProblem {
  /** Dotted path with indices, e.g. `topology.devices[1].interfaces[0].address`; `(root)` for the document. */
  readonly path: string;
  readonly message: string;
  readonly line?: number;
}

export type PathSegment = string | number;

/** `/topology/devices/1` -> ['topology', 'devices', 1]: array indices become numbers. */
export function pointerToSegments(pointer: string): PathSegment[] {
  return pointerTokens(pointer).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) out += typeof s === 'number' ? `[${s}]` : out === '' ? s : `.${s}`;
  return out === '' ? '(root)' : out;
}

export function formatProblem(p: TemplateProblem): string {
  return `${p.path}: ${p.message}${p.line !== undefined ? ` (line ${p.line})` : ''}`;
}

/** A template that does not parse or validate; `problems` names every one, each with its path. */
export class TemplateInvalidError extends Error {
  readonly code = 'template_invalid';
  constructor(
    readonly source: string,
    readonly problems: readonly TemplateProblem[],
  ) {
    super(`template ${source} is invalid:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
    this.name = 'TemplateInvalidError';
  }
}
