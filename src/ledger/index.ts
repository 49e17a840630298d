export { LedgerError, type LedgerErrorCode } from './errors.js';
export { EMPTY_TREE_ROOT, HASH_SIZE, hashChildren, hashLeaf } from './hash.js';
export { recordLeafHash } from './record.js';
export { frontierIds, type NodeId } from './tree-shape.js';
export { InMemoryMerkleNodeStore, type MerkleNode, type MerkleNodeStore, type WritableMerkleNodeStore } from './node-store.js';
export { consistencyProof, inclusionProof, MerkleFrontier, MerkleLog, rootAt, type AppendResult } from './merkle.js';
export { rootFromInclusionProof, verifyConsistency, verifyInclusion, type ConsistencyClaim, type InclusionClaim } from './proof-verify.js';
export {
  computeKeyId,
  createNoteSigner,
  createNoteVerifier,
  formatSignerKey,
  formatVerifierKey,
  openNote,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  verifierOf,
  type NoteSigner,
  type NoteVerifier,
  type OpenedNote,
} from './note.js';
export { formatCheckpoint, parseCheckpoint, signCheckpoint, verifyCheckpoint, type Checkpoint, type VerifiedCheckpoint } from './checkpoint.js';
