import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sanitizeJsonLines } from './json-lines.js';
import { sanitizeText } from './text.js';
import { emptyCounts, PII_KINDS, type PiiCounts, type Redaction, type SanitizedText } from './types.js';

export interface NamedBytes {
  /** Relative POSIX path, e.g. `checks/c1.stdout`. */
  readonly name: string;
  readonly bytes: Uint8Array;
}

/**
 * - `redacted`: text with findings, bytes rewritten;
 * - `clean`: text without findings, bytes unchanged;
 * - `binary`: not UTF-8 text (or contains NUL), left alone and NOT scrubbed — the caller decides
 *   whether such a file may leave the lab store.
 */
export type SanitizedFileStatus = 'redacted' | 'clean' | 'binary';

export interface SanitizedFileReport {
  readonly name: string;
  readonly status: SanitizedFileStatus;
  readonly counts: PiiCounts;
  /** Offsets and lengths in bytes of the original file. */
  readonly redactions: readonly Redaction[];
  /** JSON Lines files only: 1-based lines that were not JSON. */
  readonly nonJsonLines?: readonly number[];
}

export interface SanitizedFiles {
  /** Same names and order as the input; binary files with their original bytes. */
  readonly files: readonly NamedBytes[];
  readonly report: {
    readonly files: readonly SanitizedFileReport[];
    readonly totals: PiiCounts;
    readonly binaryFiles: readonly string[];
    /** sanitizeDirectory only: entries that are not regular files (symlinks, sockets…), not read. */
    readonly skipped: readonly string[];
  };
}

export class SanitizerError extends Error {
  readonly code = 'sanitizer_not_a_directory' as const;
  constructor(dir: string) {
    super(`${dir} is not a directory`);
    this.name = 'SanitizerError';
  }
}

const JSON_LINES_SUFFIXES = ['.jsonl', '.ndjson'];
// ignoreBOM keeps a leading BOM in the decoded text so re-encoding gives the same bytes.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeText(bytes: Uint8Array): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Converts UTF-16 offsets (sorted, disjoint) into byte offsets of the UTF-8 encoding of `text`. */
function toByteOffsets(text: string, redactions: readonly Redaction[]): Redaction[] {
  const out: Redaction[] = [];
  let charAt = 0;
  let byteAt = 0;
  for (const r of redactions) {
    byteAt += Buffer.byteLength(text.slice(charAt, r.offset), 'utf8');
    const length = Buffer.byteLength(text.slice(r.offset, r.offset + r.length), 'utf8');
    out.push({ kind: r.kind, offset: byteAt, length });
    byteAt += length;
    charAt = r.offset + r.length;
  }
  return out;
}

function sanitizeOne(file: NamedBytes): { file: NamedBytes; report: SanitizedFileReport } {
  const text = decodeText(file.bytes);
  if (text === undefined) {
    return { file, report: { name: file.name, status: 'binary', counts: emptyCounts(), redactions: [] } };
  }
  let result: SanitizedText;
  let nonJsonLines: readonly number[] | undefined;
  if (JSON_LINES_SUFFIXES.some((s) => file.name.endsWith(s))) {
    const lines = sanitizeJsonLines(text);
    result = lines;
    nonJsonLines = lines.report.nonJsonLines;
  } else {
    result = sanitizeText(text);
  }
  const redactions = toByteOffsets(text, result.report.redactions);
  const status: SanitizedFileStatus = redactions.length > 0 ? 'redacted' : 'clean';
  const report: SanitizedFileReport = {
    name: file.name,
    status,
    counts: result.report.counts,
    redactions,
    ...(nonJsonLines ? { nonJsonLines } : {}),
  };
  const bytes = status === 'clean' ? file.bytes : Buffer.from(result.text, 'utf8');
  return { file: { name: file.name, bytes }, report };
}

/**
 * Scrubs a list of files: `*.jsonl` / `*.ndjson` with sanitizeJsonLines, other UTF-8 text with
 * sanitizeText, binary files passed through untouched and listed in `report.binaryFiles`.
 */
export function sanitizeFiles(files: readonly NamedBytes[]): SanitizedFiles {
  const outFiles: NamedBytes[] = [];
  const reports: SanitizedFileReport[] = [];
  const totals = emptyCounts();
  for (const f of files) {
    const { file, report } = sanitizeOne(f);
    outFiles.push(file);
    reports.push(report);
    for (const k of PII_KINDS) totals[k] += report.counts[k];
  }
  const binaryFiles = reports.filter((r) => r.status === 'binary').map((r) => r.name);
  return { files: outFiles, report: { files: reports, totals, binaryFiles, skipped: [] } };
}

async function walk(root: string, rel: string, files: NamedBytes[], skipped: string[]): Promise<void> {
  const entries = await readdir(path.join(root, rel), { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const name = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) await walk(root, name, files, skipped);
    else if (e.isFile()) files.push({ name, bytes: await readFile(path.join(root, name)) });
    else skipped.push(name);
  }
}

/**
 * Scrubs every regular file under `dir` (recursively, names relative with '/', sorted). Symbolic
 * links and special files are not followed or read; they are listed in `report.skipped`. With
 * `outDir`, the scrubbed copies are also written there (binary files copied as they are).
 */
export async function sanitizeDirectory(dir: string, opts: { outDir?: string } = {}): Promise<SanitizedFiles> {
  if (!(await lstat(dir)).isDirectory()) throw new SanitizerError(dir);
  const files: NamedBytes[] = [];
  const skipped: string[] = [];
  await walk(dir, '', files, skipped);
  const result = sanitizeFiles(files);
  if (opts.outDir) {
    for (const f of result.files) {
      const target = path.join(opts.outDir, ...f.name.split('/'));
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, f.bytes, { flag: 'wx' });
    }
  }
  return { files: result.files, report: { ...result.report, skipped } };
}
