import { LedgerError } from './errors.js';
import { HASH_SIZE } from './hash.js';
import { decodeStrictBase64, openNote, signNote, type NoteSigner, type NoteVerifier } from './note.js';

/**
 * C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): the signed tree head of a log, as the
 * text of a signed note:
 *
 *   <origin>\n<tree size, decimal, no leading zeros>\n<base64 root hash>\n[<extension line>\n]*
 *
 * The origin names the log (e.g. `frostgate.example/ledger/<tenant>`); the spec recommends that
 * the signing key's name equal it, but does not require it, so one key may sign several logs.
 */

export interface Checkpoint {
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: Buffer;
  /** Optional, opaque, non-empty lines after the root hash (NOT RECOMMENDED by the spec). */
  readonly extensions?: readonly string[];
}

export interface VerifiedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The exact signed text. */
  readonly text: string;
  readonly verifiedBy: readonly NoteVerifier[];
}

function malformed(message: string): LedgerError {
  return new LedgerError('checkpoint_malformed', message);
}

function checkLine(line: string, what: string): void {
  if (line.length === 0 || line.includes('\n')) throw malformed(`${what} must be one non-empty line`);
}

/** The checkpoint as note text. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, treeSize, rootHash, extensions = [] } = checkpoint;
  checkLine(origin, 'origin');
  if (!Number.isSafeInteger(treeSize) || treeSize < 0) throw malformed(`tree size must be an integer in [0, 2^53), got ${treeSize}`);
  if (rootHash.length !== HASH_SIZE) throw malformed(`root hash must be ${HASH_SIZE} bytes, got ${rootHash.length}`);
  extensions.forEach((line, i) => checkLine(line, `extension line ${i + 1}`));
  return [origin, String(treeSize), rootHash.toString('base64'), ...extensions].map((line) => `${line}\n`).join('');
}

/** Parses checkpoint note text (as returned by openNote), strictly. */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw malformed('checkpoint text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw malformed('checkpoint text needs origin, tree size and root hash lines');
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  checkLine(origin, 'origin');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) throw malformed('tree size must be decimal without leading zeros');
  const treeSize = Number(sizeLine);
  if (!Number.isSafeInteger(treeSize)) throw malformed('tree size is beyond 2^53');
  const rootHash = decodeStrictBase64(rootLine);
  if (!rootHash || rootHash.length !== HASH_SIZE) throw malformed(`root hash must be the base64 of ${HASH_SIZE} bytes`);
  extensions.forEach((line, i) => checkLine(line, `extension line ${i + 1}`));
  return extensions.length > 0 ? { origin, treeSize, rootHash, extensions } : { origin, treeSize, rootHash };
}

/** The signed checkpoint note, signed by one key or several (e.g. old and new during rotation). */
export function signCheckpoint(checkpoint: Checkpoint, signers: NoteSigner | readonly NoteSigner[]): string {
  return signNote(formatCheckpoint(checkpoint), Array.isArray(signers) ? signers : [signers as NoteSigner]);
}

/**
 * Verifies a signed checkpoint against the known keys (all current and retired keys of the log)
 * and, if given, the expected origin. Throws LedgerError: note_* for signature problems,
 * checkpoint_malformed, checkpoint_origin_mismatch.
 */
export function verifyCheckpoint(
  note: string | Uint8Array,
  verifiers: readonly NoteVerifier[],
  options: { readonly origin?: string } = {},
): VerifiedCheckpoint {
  const opened = openNote(note, verifiers);
  const checkpoint = parseCheckpoint(opened.text);
  if (options.origin !== undefined && checkpoint.origin !== options.origin) {
    throw new LedgerError(
      'checkpoint_origin_mismatch',
      `checkpoint is for log ${JSON.stringify(checkpoint.origin)}, expected ${JSON.stringify(options.origin)}`,
    );
  }
  return { checkpoint, text: opened.text, verifiedBy: opened.verifiedBy };
}
