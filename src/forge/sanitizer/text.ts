import { findPii, type Finding } from './detectors.js';
import { countKinds, redactionMark, type Redaction, type SanitizedText } from './types.js';

/** Replaces each finding (sorted, disjoint, offsets into `text`) by its mark. */
export function applyRedactions(text: string, findings: readonly Finding[]): string {
  if (findings.length === 0) return text;
  const parts: string[] = [];
  let at = 0;
  for (const f of findings) {
    parts.push(text.slice(at, f.start), redactionMark(f.kind));
    at = f.end;
  }
  parts.push(text.slice(at));
  return parts.join('');
}

export function toRedactions(findings: readonly Finding[]): Redaction[] {
  return findings.map((f) => ({ kind: f.kind, offset: f.start, length: f.end - f.start }));
}

/**
 * Scrubs PII from free text (shell transcripts, logs, command output). Each finding is replaced
 * by `[REDACTED:<kind>]`; everything else is returned unchanged. Report offsets and lengths are
 * in UTF-16 code units of the input `text` (JavaScript string indices).
 */
export function sanitizeText(text: string): SanitizedText {
  const findings = findPii(text);
  const redactions = toRedactions(findings);
  return { text: applyRedactions(text, findings), report: { counts: countKinds(redactions), redactions } };
}
