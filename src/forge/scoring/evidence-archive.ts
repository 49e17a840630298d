/**
 * Deterministic evidence archives: the same named files always give the same bytes, so a verdict
 * signed over the archive's SHA-256 can be re-derived and grading twice yields identical artefacts.
 *
 * Writer (POSIX ustar, written here rather than by a dependency so the bytes are ours to fix):
 * - entries sorted by the UTF-8 bytes of their names (locale-independent), regular files only
 *   (directories are implied by the names, as tar readers create them on extraction);
 * - every header has mode 0644, uid/gid 0, empty user/group names, mtime 0 (or the caller's fixed
 *   `mtime`), typeflag '0', magic "ustar\0" version "00";
 * - names longer than 100 bytes are split into the ustar prefix (≤155 bytes) and name (≤100) at a
 *   '/'; a name that cannot be split is refused, as are absolute names, '.'/'..'/empty components,
 *   backslashes, NUL and duplicates (after nothing: names are taken byte for byte);
 * - the archive ends with two zero blocks and is padded to a whole 10240-byte record, as POSIX asks.
 *
 * Compression: gzip by default (node:zlib, level 9; the header's mtime is 0 and its OS byte is
 * forced to 3 "Unix" so the bytes do not depend on the platform), or zstd through /usr/bin/zstd
 * (`-19 --single-thread`: the single-thread mode is the one whose output does not depend on the
 * machine). Both are deterministic for a given zlib / zstd version; a different library version may
 * compress differently, which is why verification hashes the archive bytes as stored rather than
 * rebuilding them.
 *
 * Reader: detects gzip / zstd / plain tar by magic bytes, caps the decompressed size, checks every
 * header checksum, and returns the files; `extractEvidenceArchive` writes them under a directory
 * without ever leaving it.
 */

import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

export type EvidenceArchiveErrorCode =
  | 'evidence_name_invalid'
  | 'evidence_name_duplicate'
  | 'evidence_file_too_large'
  | 'evidence_archive_malformed'
  | 'evidence_archive_too_large'
  | 'evidence_entry_unsupported'
  | 'evidence_zstd_failed';

export class EvidenceArchiveError extends Error {
  readonly code: EvidenceArchiveErrorCode;
  constructor(code: EvidenceArchiveErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EvidenceArchiveError';
    this.code = code;
  }
}

export interface EvidenceFile {
  /** Relative POSIX path inside the archive, e.g. `checks/c1.stdout`. */
  readonly name: string;
  readonly bytes: Uint8Array;
}

export type EvidenceCompression = 'gzip' | 'zstd' | 'none';

/** The file name suffix for each compression, e.g. `evidence.${EVIDENCE_ARCHIVE_EXTENSION.gzip}`. */
export const EVIDENCE_ARCHIVE_EXTENSION: Readonly<Record<EvidenceCompression, string>> = {
  gzip: 'tar.gz',
  zstd: 'tar.zst',
  none: 'tar',
};

export interface BuildEvidenceArchiveOptions {
  /** Default 'gzip'. */
  readonly compression?: EvidenceCompression;
  /** Seconds since the epoch written in every header; default 0. */
  readonly mtime?: number;
  /** Default '/usr/bin/zstd'. */
  readonly zstdPath?: string;
}

export interface ReadEvidenceArchiveOptions {
  /** Refuse archives whose tar stream exceeds this many bytes; default 512 MiB. */
  readonly maxTarBytes?: number;
  readonly zstdPath?: string;
}

const BLOCK = 512;
const RECORD = 20 * BLOCK;
const FILE_MODE = 0o644;
const MAX_NAME = 100;
const MAX_PREFIX = 155;
// Eleven octal digits in the size field.
const MAX_FILE_SIZE = 0o77777777777;
const DEFAULT_MAX_TAR_BYTES = 512 * 1024 * 1024;
const DEFAULT_ZSTD = '/usr/bin/zstd';

const GZIP_MAGIC = [0x1f, 0x8b] as const;
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd] as const;
const GZIP_OS_UNIX = 3;

/** Throws EvidenceArchiveError unless `name` is a safe relative POSIX path. */
export function assertEvidenceName(name: string): void {
  const bad = (why: string): never => {
    throw new EvidenceArchiveError('evidence_name_invalid', `evidence file name ${JSON.stringify(name)} ${why}`);
  };
  if (name.length === 0) bad('is empty');
  if (name.includes('\0')) bad('contains NUL');
  if (name.includes('\\')) bad('contains a backslash');
  if (name.startsWith('/')) bad('is absolute');
  for (const part of name.split('/')) {
    if (part === '' || part === '.' || part === '..') bad("has an empty, '.' or '..' component");
  }
}

/** Splits a UTF-8 name into ustar (prefix, name) fields, or refuses it. */
function splitName(name: string): { prefix: Buffer; name: Buffer } {
  const full = Buffer.from(name, 'utf8');
  if (full.length <= MAX_NAME) return { prefix: Buffer.alloc(0), name: full };
  // The last '/' such that the remainder fits the name field and the head fits the prefix.
  for (let i = full.length - 1; i > 0; i--) {
    if (full[i] !== 0x2f) continue;
    const head = full.subarray(0, i);
    const tail = full.subarray(i + 1);
    if (tail.length > MAX_NAME) break;
    if (head.length <= MAX_PREFIX) return { prefix: head, name: tail };
  }
  throw new EvidenceArchiveError('evidence_name_invalid', `evidence file name ${JSON.stringify(name)} is too long for a ustar header`);
}

function writeOctal(header: Buffer, offset: number, width: number, value: number): void {
  // width-1 octal digits, zero padded, then NUL.
  header.write(value.toString(8).padStart(width - 1, '0'), offset, width - 1, 'ascii');
  header[offset + width - 1] = 0;
}

function headerChecksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
  return sum;
}

function ustarHeader(name: string, size: number, mtime: number): Buffer {
  const fields = splitName(name);
  const header = Buffer.alloc(BLOCK);
  fields.name.copy(header, 0);
  writeOctal(header, 100, 8, FILE_MODE);
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, size);
  writeOctal(header, 136, 12, mtime);
  header[156] = 0x30; // '0': regular file
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  writeOctal(header, 329, 8, 0);
  writeOctal(header, 337, 8, 0);
  fields.prefix.copy(header, 345);
  // Six octal digits, NUL, space: the historical layout every reader accepts.
  header.write(headerChecksum(header).toString(8).padStart(6, '0'), 148, 6, 'ascii');
  header[154] = 0;
  header[155] = 0x20;
  return header;
}

/** The uncompressed ustar bytes of `files` (see the file header for the fixed fields). */
export function buildTar(files: readonly EvidenceFile[], opts: { mtime?: number } = {}): Buffer {
  const mtime = opts.mtime ?? 0;
  if (!Number.isSafeInteger(mtime) || mtime < 0 || mtime > MAX_FILE_SIZE) {
    throw new RangeError(`mtime must be a non-negative integer of at most 11 octal digits, got ${mtime}`);
  }
  const sorted = files.map((f) => ({ file: f, key: Buffer.from(f.name, 'utf8') })).sort((a, b) => Buffer.compare(a.key, b.key));
  const parts: Buffer[] = [];
  let previous: Buffer | undefined;
  for (const { file, key } of sorted) {
    assertEvidenceName(file.name);
    if (previous && previous.equals(key)) {
      throw new EvidenceArchiveError('evidence_name_duplicate', `evidence file name ${JSON.stringify(file.name)} appears twice`);
    }
    previous = key;
    if (file.bytes.length > MAX_FILE_SIZE) {
      throw new EvidenceArchiveError('evidence_file_too_large', `evidence file ${file.name} exceeds the ustar size limit`);
    }
    parts.push(ustarHeader(file.name, file.bytes.length, mtime));
    parts.push(Buffer.from(file.bytes.buffer, file.bytes.byteOffset, file.bytes.length));
    const pad = (BLOCK - (file.bytes.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  const body = parts.reduce((n, p) => n + p.length, 0) + 2 * BLOCK;
  const total = Math.ceil(body / RECORD) * RECORD;
  parts.push(Buffer.alloc(total - body + 2 * BLOCK));
  return Buffer.concat(parts, total);
}

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

export function detectEvidenceCompression(bytes: Uint8Array): EvidenceCompression {
  if (startsWith(bytes, GZIP_MAGIC)) return 'gzip';
  if (startsWith(bytes, ZSTD_MAGIC)) return 'zstd';
  return 'none';
}

/** Runs zstd with `args`, feeding `input` on stdin; resolves with stdout or rejects with stderr. */
function runZstd(zstdPath: string, args: readonly string[], input: Uint8Array, maxOutput: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(zstdPath, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let overflow = false;
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > maxOutput) {
        overflow = true;
        child.kill('SIGKILL');
        return;
      }
      out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (cause) => reject(new EvidenceArchiveError('evidence_zstd_failed', `cannot run ${zstdPath}`, { cause })));
    child.on('close', (code) => {
      if (overflow) {
        reject(new EvidenceArchiveError('evidence_archive_too_large', `decompressed evidence exceeds ${maxOutput} bytes`));
      } else if (code === 0) {
        resolve(Buffer.concat(out));
      } else {
        const detail = Buffer.concat(err).toString('utf8').trim();
        reject(new EvidenceArchiveError('evidence_zstd_failed', `zstd exited with ${String(code)}: ${detail}`));
      }
    });
    // EPIPE when zstd exits early is reported through 'close'; ignore it here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** Builds the compressed archive of `files`: same files and options, same bytes. */
export async function buildEvidenceArchive(files: readonly EvidenceFile[], opts: BuildEvidenceArchiveOptions = {}): Promise<Buffer> {
  const tar = buildTar(files, opts.mtime === undefined ? {} : { mtime: opts.mtime });
  switch (opts.compression ?? 'gzip') {
    case 'none':
      return tar;
    case 'gzip': {
      const gz = gzipSync(tar, { level: 9 });
      gz[9] = GZIP_OS_UNIX;
      return gz;
    }
    case 'zstd':
      return runZstd(opts.zstdPath ?? DEFAULT_ZSTD, ['-q', '-c', '-19', '--single-thread', '--no-progress'], tar, Number.MAX_SAFE_INTEGER);
  }
}

function decodeTarString(field: Uint8Array): string {
  const end = field.indexOf(0);
  return Buffer.from(field.subarray(0, end === -1 ? field.length : end)).toString('utf8');
}

function parseOctal(field: Uint8Array, what: string): number {
  const text = decodeTarString(field).trim();
  if (!/^[0-7]+$/.test(text)) throw new EvidenceArchiveError('evidence_archive_malformed', `tar header ${what} field is not octal`);
  return parseInt(text, 8);
}

export interface TarEntry extends EvidenceFile {
  readonly type: 'file' | 'directory';
  readonly mode: number;
  readonly mtime: number;
}

/** Parses an uncompressed tar stream of regular files and directories (ustar or GNU magic). */
export function parseTar(tar: Uint8Array): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  while (offset + BLOCK <= tar.length) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) return entries;
    const stored = parseOctal(header.subarray(148, 156), 'checksum');
    if (stored !== headerChecksum(header)) {
      throw new EvidenceArchiveError('evidence_archive_malformed', `tar header checksum mismatch at offset ${offset}`);
    }
    const magic = Buffer.from(header.subarray(257, 263)).toString('latin1');
    if (magic !== 'ustar\0' && magic !== 'ustar ') {
      throw new EvidenceArchiveError('evidence_archive_malformed', `tar header at offset ${offset} is not ustar`);
    }
    const base = decodeTarString(header.subarray(0, 100));
    const prefix = decodeTarString(header.subarray(345, 500));
    const name = prefix ? `${prefix}/${base}` : base;
    const size = parseOctal(header.subarray(124, 136), 'size');
    const flag = String.fromCharCode(header[156] ?? 0);
    const dataStart = offset + BLOCK;
    if (dataStart + size > tar.length) throw new EvidenceArchiveError('evidence_archive_malformed', `tar entry ${name} is truncated`);
    let type: TarEntry['type'];
    if (flag === '0' || flag === '\0') type = 'file';
    else if (flag === '5') type = 'directory';
    else throw new EvidenceArchiveError('evidence_entry_unsupported', `tar entry ${name} has unsupported type '${flag}'`);
    const entryName = type === 'directory' ? name.replace(/\/+$/, '') : name;
    assertEvidenceName(entryName);
    entries.push({
      name: entryName,
      type,
      bytes: tar.slice(dataStart, dataStart + size),
      mode: parseOctal(header.subarray(100, 108), 'mode'),
      mtime: parseOctal(header.subarray(136, 148), 'mtime'),
    });
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new EvidenceArchiveError('evidence_archive_malformed', 'tar stream ends without its end-of-archive blocks');
}

/** The tar stream inside an evidence archive (gzip, zstd or plain), decompressed with a size cap. */
export async function evidenceTarBytes(archive: Uint8Array, opts: ReadEvidenceArchiveOptions = {}): Promise<Buffer> {
  const max = opts.maxTarBytes ?? DEFAULT_MAX_TAR_BYTES;
  switch (detectEvidenceCompression(archive)) {
    case 'gzip':
      try {
        return gunzipSync(archive, { maxOutputLength: max });
      } catch (cause) {
        const tooLarge = (cause as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
        throw tooLarge
          ? new EvidenceArchiveError('evidence_archive_too_large', `decompressed evidence exceeds ${max} bytes`, { cause })
          : new EvidenceArchiveError('evidence_archive_malformed', 'evidence archive is not valid gzip', { cause });
      }
    case 'zstd':
      return runZstd(opts.zstdPath ?? DEFAULT_ZSTD, ['-q', '-d', '-c'], archive, max);
    case 'none':
      if (archive.length > max) throw new EvidenceArchiveError('evidence_archive_too_large', `evidence tar exceeds ${max} bytes`);
      return Buffer.from(archive);
  }
}

/** Lists the regular files of an evidence archive, in archive order. */
export async function readEvidenceArchive(archive: Uint8Array, opts: ReadEvidenceArchiveOptions = {}): Promise<TarEntry[]> {
  return parseTar(await evidenceTarBytes(archive, opts)).filter((e) => e.type === 'file');
}

/**
 * Writes the archive's files under `destDir` (created if needed) and returns their paths. Names
 * were validated as relative paths without '..', and each target is re-checked to lie inside
 * `destDir`; existing files are never overwritten (flag 'wx').
 */
export async function extractEvidenceArchive(archive: Uint8Array, destDir: string, opts: ReadEvidenceArchiveOptions = {}): Promise<string[]> {
  const root = path.resolve(destDir);
  const written: string[] = [];
  for (const entry of await readEvidenceArchive(archive, opts)) {
    const target = path.resolve(root, ...entry.name.split('/'));
    if (!target.startsWith(root + path.sep)) {
      throw new EvidenceArchiveError('evidence_name_invalid', `evidence entry ${entry.name} would leave ${root}`);
    }
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, entry.bytes, { flag: 'wx', mode: 0o644 });
    written.push(target);
  }
  return written;
}
