/** Stable error codes of the ledger core; the HTTP/CLI layers map them to problem+json types. */
export type LedgerErrorCode =
  /** A tree size or leaf index is negative, fractional, beyond 2^53 or beyond the tree. */
  | 'merkle_range_invalid'
  /** The node store lacks a node the tree needs: the store is incomplete or was tampered with. */
  | 'merkle_node_missing'
  /** A write would replace a stored node with a different hash: history is append-only. */
  | 'merkle_node_conflict'
  /** An inclusion or consistency proof does not prove what it claims. */
  | 'merkle_proof_invalid'
  /** A signed note is not well formed (encoding, blank line, signature lines). */
  | 'note_malformed'
  /** A verifier or signer key string (vkey / skey) is not well formed. */
  | 'note_key_invalid'
  /** A signature by a known key did not verify: the note was altered or forged. */
  | 'note_signature_invalid'
  /** No signature by any known key: signed by an unknown (or retired and forgotten) key. */
  | 'note_unverified'
  /** The note text is not a well-formed tlog checkpoint. */
  | 'checkpoint_malformed'
  /** The checkpoint is for another log than the one expected. */
  | 'checkpoint_origin_mismatch';

export class LedgerError extends Error {
  readonly code: LedgerErrorCode;
  constructor(code: LedgerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LedgerError';
    this.code = code;
  }
}
