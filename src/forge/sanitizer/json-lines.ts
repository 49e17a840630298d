import { findPii, type Finding } from './detectors.js';
import { applyRedactions, toRedactions } from './text.js';
import { countKinds, type SanitizeReport } from './types.js';

export interface SanitizedJsonLines {
  readonly text: string;
  /** Offsets in UTF-16 code units of the input text, like sanitizeText. */
  readonly report: SanitizeReport & {
    /** 1-based numbers of non-empty lines that were not JSON (scrubbed as plain text). */
    readonly nonJsonLines: readonly number[];
  };
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * Decodes the JSON string literal whose opening quote is at `open`, returning the decoded value,
 * where the literal ends (index after its closing quote), and for every decoded code unit the
 * index in `line` where its (possibly escaped) source starts — plus one final entry for the
 * closing quote — so findings in the value map back to whole escapes in the raw line.
 */
function decodeStringLiteral(line: string, open: number): { value: string; close: number; rawIndex: number[] } {
  const units: string[] = [];
  const rawIndex: number[] = [];
  let i = open + 1;
  while (i < line.length && line[i] !== '"') {
    if (line[i] === '\\') {
      const esc = line[i + 1] ?? '';
      if (esc === 'u') {
        units.push(String.fromCharCode(parseInt(line.slice(i + 2, i + 6), 16)));
        rawIndex.push(i);
        i += 6;
      } else {
        units.push(SHORT_ESCAPES[esc] ?? esc);
        rawIndex.push(i);
        i += 2;
      }
    } else {
      units.push(line[i] ?? '');
      rawIndex.push(i);
      i++;
    }
  }
  rawIndex.push(i);
  return { value: units.join(''), close: i + 1, rawIndex };
}

/** Findings inside the string literals of one valid JSON line, as offsets into that line. */
function findInJsonLine(line: string): Finding[] {
  const found: Finding[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] !== '"') {
      i++;
      continue;
    }
    const literal = decodeStringLiteral(line, i);
    for (const f of findPii(literal.value)) {
      found.push({ kind: f.kind, start: literal.rawIndex[f.start] ?? i, end: literal.rawIndex[f.end] ?? literal.close - 1 });
    }
    i = literal.close;
  }
  return found;
}

/**
 * Scrubs JSON Lines (audit.jsonl, check results). Each line that parses as JSON is scrubbed inside
 * its string values and keys only, after decoding escapes (a PEM key stored with `\n` escapes is
 * still found); a redacted span is replaced in the raw line by the mark, so the line stays valid
 * JSON and everything else in it — numbers, spacing, escapes — is byte for byte unchanged. Lines
 * that are not JSON are scrubbed as plain text and listed in the report.
 */
export function sanitizeJsonLines(text: string): SanitizedJsonLines {
  const findings: Finding[] = [];
  const nonJsonLines: number[] = [];
  let lineStart = 0;
  let lineNumber = 0;
  while (lineStart <= text.length) {
    const nl = text.indexOf('\n', lineStart);
    const lineEnd = nl === -1 ? text.length : nl;
    const line = text.slice(lineStart, lineEnd);
    lineNumber++;
    if (line.trim().length > 0) {
      let isJson = true;
      try {
        JSON.parse(line);
      } catch {
        isJson = false;
        nonJsonLines.push(lineNumber);
      }
      const inLine = isJson ? findInJsonLine(line) : findPii(line);
      for (const f of inLine) findings.push({ kind: f.kind, start: lineStart + f.start, end: lineStart + f.end });
    }
    if (nl === -1) break;
    lineStart = nl + 1;
  }
  const redactions = toRedactions(findings);
  return { text: applyRedactions(text, findings), report: { counts: countKinds(redactions), redactions, nonJsonLines } };
}
