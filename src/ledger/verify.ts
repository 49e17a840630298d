import { sql } from 'kysely';
import { parseEd25519PublicKey } from '../platform/crypto/ed25519.js';
import { canonicalBytes } from '../platform/crypto/canonical-json.js';
import type { Database } from '../platform/db/database.js';
import type { LedgerName } from '../platform/db/schema.js';
import type { LogAnchor } from './anchors.js';
import { verifyCheckpoint } from './checkpoint.js';
import { DbMerkleNodeStore } from './db-store.js';
import { LedgerError } from './errors.js';
import { hashLeaf } from './hash.js';
import { consistencyProof, MerkleFrontier } from './merkle.js';
import { createNoteVerifier, parseNote, parseVerifierKey, type NoteVerifier } from './note.js';
import { verifyConsistency, verifyInclusion } from './proof-verify.js';

export interface LogProblem {
  /** The first ledger index the problem concerns, when one can be named. */
  readonly index?: number;
  readonly message: string;
}

export interface LogVerification {
  readonly ok: boolean;
  readonly tenant: string;
  readonly log: LedgerName;
  readonly size: number;
  readonly entriesChecked: number;
  readonly checkpointsChecked: number;
  readonly latestCheckpointSize: number | undefined;
  /** Checkpoints held outside the database (--checkpoint, the witness) compared with the recomputed tree. */
  readonly externalCheckpointsChecked: number;
  /** The largest of them, which the current tree was proven to extend (RFC 9162 consistency proof). */
  readonly newestExternalSize: number | undefined;
  readonly problems: readonly LogProblem[];
  /** The lowest index any problem names. */
  readonly firstBadIndex: number | undefined;
}

const PAGE = 5000;

export interface VerifyLogOptions {
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * Signed checkpoints held outside the database, already verified with a trusted key (anchors.ts).
   * The database's checkpoints cannot catch a consistent rewrite by someone who can write the
   * database (entries and nodes recomputed, later checkpoints deleted, the server re-signing the
   * rewritten tree); these can.
   */
  readonly anchors?: readonly LogAnchor[];
}

/**
 * Recomputes a whole log from the database: every record against its stored leaf hash, every
 * stored subtree node against the recomputed tree, every signed checkpoint of the database
 * (signature by a trusted key, and root) and every external anchor against the recomputed root at
 * its size, and proves with the stored tree that the current log extends the newest anchor.
 * Reports the first index that does not match. Keys are trusted only when passed in: a key found
 * in the database is not.
 */
export async function verifyLogFromDatabase(
  db: Database,
  tenantId: string,
  log: LedgerName,
  trusted: readonly NoteVerifier[],
  options: VerifyLogOptions = {},
): Promise<LogVerification> {
  const { onProgress } = options;
  const anchors = [...(options.anchors ?? [])].sort((a, b) => a.treeSize - b.treeSize);
  return db.withTenant(tenantId, async (tx) => {
    const problems: LogProblem[] = [];
    const head = await tx.selectFrom('ledger_heads').select('size').where('tenant_id', '=', tenantId).where('log', '=', log).executeTakeFirst();
    const size = head ? Number(head.size) : 0;
    const checkpoints = await tx
      .selectFrom('ledger_checkpoints')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('log', '=', log)
      .orderBy('tree_size')
      .execute();
    const beyond = await tx
      .selectFrom('ledger_entries')
      .select('idx')
      .where('tenant_id', '=', tenantId)
      .where('log', '=', log)
      .where('idx', '>=', size)
      .orderBy('idx')
      .limit(1)
      .executeTakeFirst();
    if (beyond) problems.push({ index: Number(beyond.idx), message: `entry at index ${Number(beyond.idx)} lies beyond the log size ${size} (inserted row)` });

    let frontier = MerkleFrontier.EMPTY;
    let checked = 0;
    let cpIndex = 0;
    let checkpointsChecked = 0;
    let anchorIndex = 0;
    let externalChecked = 0;
    let previousGoodSize = 0;
    const checkCheckpointsUpTo = (treeSize: number) => {
      while (anchorIndex < anchors.length && anchors[anchorIndex]!.treeSize <= treeSize) {
        const anchor = anchors[anchorIndex++]!;
        if (anchor.treeSize !== treeSize) continue; // reached only when entries are missing; reported there
        externalChecked++;
        if (!anchor.rootHash.equals(frontier.root())) {
          problems.push({
            index: Math.max(0, previousGoodSize),
            message:
              `the log recomputed to size ${treeSize} does not match the signed checkpoint held outside the ` +
              `database (${anchor.source}): history changed between index ${previousGoodSize} and ${treeSize - 1}`,
          });
        } else previousGoodSize = Math.max(previousGoodSize, treeSize);
      }
      while (cpIndex < checkpoints.length && Number(checkpoints[cpIndex]!.tree_size) <= treeSize) {
        const cp = checkpoints[cpIndex++]!;
        const cpSize = Number(cp.tree_size);
        if (cpSize !== treeSize) continue; // reached only when entries are missing; reported there
        checkpointsChecked++;
        try {
          const verified = verifyCheckpoint(cp.note, trusted);
          if (verified.checkpoint.treeSize !== cpSize)
            problems.push({ message: `checkpoint row for size ${cpSize} holds a note for size ${verified.checkpoint.treeSize}` });
          else if (!verified.checkpoint.rootHash.equals(frontier.root())) {
            problems.push({
              index: Math.max(0, previousGoodSize),
              message:
                `the log recomputed to size ${cpSize} does not match the signed checkpoint at ` +
                `that size: history changed between index ${previousGoodSize} and ${cpSize - 1}`,
            });
          } else previousGoodSize = cpSize;
        } catch (err) {
          problems.push({ message: `checkpoint at size ${cpSize}: ${(err as Error).message}` });
        }
      }
    };

    for (let start = 0; start < size; start += PAGE) {
      const end = Math.min(size, start + PAGE);
      const [entries, nodes] = await Promise.all([
        tx
          .selectFrom('ledger_entries')
          .select(['idx', 'record_json'])
          .where('tenant_id', '=', tenantId)
          .where('log', '=', log)
          .where('idx', '>=', start)
          .where('idx', '<', end)
          .orderBy('idx')
          .execute(),
        // Nodes completed by leaves [start, end): the last leaf of node (L, i) is (i+1)*2^L - 1.
        tx
          .selectFrom('ledger_nodes')
          .select(['level', 'idx', 'hash'])
          .where('tenant_id', '=', tenantId)
          .where('log', '=', log)
          .where(sql<boolean>`(idx + 1) * (2::numeric ^ level) - 1 >= ${start} AND (idx + 1) * (2::numeric ^ level) - 1 < ${end}`)
          .execute(),
      ]);
      const stored = new Map(nodes.map((n) => [`${n.level}:${Number(n.idx)}`, Buffer.from(n.hash)]));
      let e = 0;
      for (let i = start; i < end; i++) {
        const entry = entries[e];
        if (!entry || Number(entry.idx) !== i) {
          problems.push({ index: i, message: `entry at index ${i} is missing (deleted row)` });
          return finish();
        }
        e++;
        const leaf = hashLeaf(Buffer.from(entry.record_json, 'utf8'));
        const result = frontier.append(leaf);
        for (const node of result.nodes) {
          const have = stored.get(`${node.level}:${node.index}`);
          if (!have) {
            problems.push({ index: i, message: `tree node (level ${node.level}, index ${node.index}) completed by entry ${i} is missing` });
            return finish();
          }
          if (!have.equals(node.hash)) {
            problems.push({
              index: i,
              message:
                node.level === 0
                  ? `entry at index ${i} does not match its leaf hash (record modified, moved or replaced)`
                  : `tree node (level ${node.level}, index ${node.index}) completed by entry ${i} does not match the recomputed tree`,
            });
            return finish();
          }
        }
        frontier = result.frontier;
        checked++;
        checkCheckpointsUpTo(frontier.size);
      }
      onProgress?.(end, size);
    }
    if (size === 0) checkCheckpointsUpTo(0);
    const dangling = checkpoints.filter((cp) => Number(cp.tree_size) > size);
    for (const cp of dangling)
      problems.push({ message: `checkpoint at size ${Number(cp.tree_size)} is beyond the log size ${size} (entries removed from the head)`, index: size });
    for (const anchor of anchors.filter((a) => a.treeSize > size)) {
      problems.push({
        index: size,
        message:
          `the signed checkpoint held outside the database (${anchor.source}) is for size ${anchor.treeSize}, but the database's ` +
          `log has ${size} entries: entries were removed from the head, or the database was restored from an older backup`,
      });
    }
    // The current tree, as stored, must extend the newest anchor: what a client holding only that
    // checkpoint would ask the log for (the recomputation above already compared the roots).
    const newest = [...anchors].reverse().find((a) => a.treeSize <= size);
    if (newest && problems.length === 0) {
      try {
        verifyConsistency({
          firstSize: newest.treeSize,
          secondSize: size,
          firstRoot: newest.rootHash,
          secondRoot: frontier.root(),
          proof: newest.treeSize === 0 ? [] : await consistencyProof(new DbMerkleNodeStore(tx, tenantId, log), newest.treeSize, size),
        });
      } catch (err) {
        problems.push({
          index: newest.treeSize,
          message: `the stored tree does not prove that the log extends the checkpoint held outside the database (${newest.source}): ${(err as Error).message}`,
        });
      }
    }
    return finish();

    function finish(): LogVerification {
      const indices = problems.map((p) => p.index).filter((i): i is number => i !== undefined);
      return {
        ok: problems.length === 0,
        tenant: tenantId,
        log,
        size,
        entriesChecked: checked,
        checkpointsChecked,
        latestCheckpointSize: checkpoints.length > 0 ? Number(checkpoints[checkpoints.length - 1]!.tree_size) : undefined,
        externalCheckpointsChecked: externalChecked,
        newestExternalSize: anchors.length > 0 ? anchors[anchors.length - 1]!.treeSize : undefined,
        problems,
        firstBadIndex: indices.length > 0 ? Math.min(...indices) : undefined,
      };
    }
  });
}

export interface InclusionProofFile {
  readonly index: number;
  readonly tree_size: number;
  /** base64 hashes */
  readonly proof: readonly string[];
}

/**
 * Verifiers from a key file: a vkey line (`name+id+base64`), or an Ed25519 public key (PEM, raw,
 * hex, base64) named like the signature lines of the note being checked.
 */
export function verifiersFromKeyFile(content: string, note: string): NoteVerifier[] {
  const text = content.trim();
  const vkeys = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(l));
  if (vkeys.length > 0) return vkeys.map(parseVerifierKey);
  const key = parseEd25519PublicKey(content, 'public key');
  const names = [...new Set(parseNote(note).signatures.map((s) => s.name))];
  return names.map((name) => createNoteVerifier(name, key));
}

/** Offline: one record, its inclusion proof, a signed checkpoint, a public key. No database. */
export function verifyRecordOffline(input: {
  record: unknown;
  proof: InclusionProofFile;
  checkpoint: string;
  verifiers: readonly NoteVerifier[];
}): { ok: true; index: number; treeSize: number; origin: string } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  let verified;
  try {
    verified = verifyCheckpoint(input.checkpoint, input.verifiers);
  } catch (err) {
    return { ok: false, problems: [`checkpoint: ${(err as Error).message}`] };
  }
  const { proof } = input;
  if (!Number.isSafeInteger(proof.index) || !Number.isSafeInteger(proof.tree_size) || !Array.isArray(proof.proof)) {
    return { ok: false, problems: ['proof file must be {"index": n, "tree_size": n, "proof": ["base64", ...]}'] };
  }
  if (proof.tree_size !== verified.checkpoint.treeSize)
    problems.push(
      `proof is for tree size ${proof.tree_size} but the checkpoint is for size ` +
        `${verified.checkpoint.treeSize}; fetch the proof for tree_size=${verified.checkpoint.treeSize}`,
    );
  let leaf: Buffer;
  try {
    leaf = hashLeaf(canonicalBytes(input.record));
  } catch (err) {
    return { ok: false, problems: [...problems, `record: ${(err as Error).message}`] };
  }
  if (problems.length === 0) {
    try {
      verifyInclusion({
        index: proof.index,
        treeSize: proof.tree_size,
        leafHash: leaf,
        proof: proof.proof.map((p) => Buffer.from(p, 'base64')),
        root: verified.checkpoint.rootHash,
      });
    } catch (err) {
      problems.push(err instanceof LedgerError ? `record is not in the log at index ${proof.index}: ${err.message}` : (err as Error).message);
    }
  }
  return problems.length === 0 ? { ok: true, index: proof.index, treeSize: proof.tree_size, origin: verified.checkpoint.origin } : { ok: false, problems };
}
