import { canonicalBytes } from '../platform/crypto/canonical-json.js';
import { hashLeaf } from './hash.js';

/**
 * The leaf hash of a ledger record: SHA-256(0x00 || RFC 8785 canonical JSON of the record). Any
 * verifier holding the record as JSON recomputes it byte for byte, whatever its key order.
 */
export function recordLeafHash(record: unknown): Buffer {
  return hashLeaf(canonicalBytes(record));
}
