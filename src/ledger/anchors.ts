import { verifyCheckpoint } from './checkpoint.js';
import type { NoteVerifier } from './note.js';

/**
 * A signed checkpoint held outside the database (a note an auditor saved, the witness's exported
 * history): what `frostgate verify` holds the database's log against. The database's own
 * checkpoints prove nothing against someone who can rewrite the database, because the server
 * signs whatever tree it finds there; a checkpoint kept elsewhere still names the old root.
 */
export interface LogAnchor {
  /** Where it came from, for problems: `--checkpoint c.txt`, the witness object's location. */
  readonly source: string;
  readonly treeSize: number;
  readonly rootHash: Buffer;
}

/**
 * The anchor a checkpoint note gives: signed by a trusted key (never one read from the database)
 * and for this log's origin. Throws LedgerError (note_*, checkpoint_malformed,
 * checkpoint_origin_mismatch) otherwise.
 */
export function anchorFromNote(note: string | Uint8Array, source: string, trusted: readonly NoteVerifier[], origin: string): LogAnchor {
  const { checkpoint } = verifyCheckpoint(note, trusted, { origin });
  return { source, treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash };
}
