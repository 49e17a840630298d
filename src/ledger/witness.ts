import type { Counter } from 'prom-client';
import type { LedgerName } from '../platform/db/schema.js';
import type { Logger } from '../platform/log.js';
import type { ObjectStorage } from '../platform/storage/types.js';
import { anchorFromNote, type LogAnchor } from './anchors.js';
import { parseCheckpoint, verifyCheckpoint, type Checkpoint } from './checkpoint.js';
import { parseNote, type NoteVerifier } from './note.js';
import { verifyConsistency } from './proof-verify.js';
import type { LedgerService } from './service.js';

/**
 * The checkpoint witness: every signed checkpoint of every log, exported into the object store
 * once the witness has checked it (signed by the ledger's own key, and a consistency proof from
 * the database showing it extends the last checkpoint exported). The exported history is
 * append-only: an object is written once and never replaced or removed. Kept off the database
 * host, it is what `frostgate verify` holds the database against; a history rewritten in the
 * database no longer extends it, so the witness refuses to export further (security log,
 * ledger_witness_refused_total) and verify fails.
 *
 * Layout: `ledger-witness/<tenant>/<log>/<tree size, 16 digits>.checkpoint`, each the signed
 * note exactly as the ledger issued it (C2SP tlog-checkpoint), so names sort by size; and
 * `latest.checkpoint`, a copy of the newest, where the witness resumes after a restart without
 * listing the history (verification never relies on it).
 */
export const WITNESS_PREFIX = 'ledger-witness/';
const NAME = /^(\d{16})\.checkpoint$/;

export function witnessLogPrefix(tenantId: string, log: LedgerName): string {
  return `${WITNESS_PREFIX}${tenantId}/${log}/`;
}

export function witnessKey(tenantId: string, log: LedgerName, treeSize: number): string {
  return `${witnessLogPrefix(tenantId, log)}${String(treeSize).padStart(16, '0')}.checkpoint`;
}

const latestKey = (tenantId: string, log: LedgerName) => `${witnessLogPrefix(tenantId, log)}latest.checkpoint`;

/** Verification reads at most this many exported checkpoints: the newest alone detects a rewrite, the others narrow down where. */
export const MAX_WITNESS_READS = 256;

/** Up to `max` of `items`, evenly spread, always including the first and the last. */
function spread<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  const picked = new Set<number>();
  for (let i = 0; i < max; i++) picked.add(Math.round((i * (items.length - 1)) / (max - 1)));
  return [...picked].sort((a, b) => a - b).map((i) => items[i]!);
}

export interface ExportedCheckpoint {
  readonly key: string;
  /** A file path or s3:// URL, for people. */
  readonly location: string;
  /** The size its name gives. */
  readonly treeSize: number;
  readonly note: string;
}

/**
 * The exported history of one log, by size (nothing verified yet: see witnessAnchors): every
 * object, or at most `max` of them, evenly spread from the oldest to the newest.
 */
export async function readWitnessHistory(
  storage: Pick<ObjectStorage, 'list' | 'get' | 'locate'>,
  tenantId: string,
  log: LedgerName,
  max = Number.POSITIVE_INFINITY,
): Promise<{ exported: ExportedCheckpoint[]; total: number }> {
  const prefix = witnessLogPrefix(tenantId, log);
  const named = (await storage.list(prefix)).flatMap((obj) => {
    const match = NAME.exec(obj.key.slice(prefix.length));
    return match ? [{ key: obj.key, treeSize: Number(match[1]) }] : [];
  });
  const exported: ExportedCheckpoint[] = [];
  for (const { key, treeSize } of spread(named, max)) {
    const bytes = await storage.get(key);
    if (bytes) exported.push({ key, location: storage.locate(key), treeSize, note: bytes.toString('utf8') });
  }
  return { exported, total: named.length };
}

/**
 * The exported history as anchors for verifyLogFromDatabase (at most MAX_WITNESS_READS of it,
 * the newest always). An object that is not a checkpoint of this log signed by a trusted key, or
 * whose name is not its size, is a problem, not skipped.
 */
export async function witnessAnchors(
  storage: Pick<ObjectStorage, 'list' | 'get' | 'locate'>,
  tenantId: string,
  log: LedgerName,
  trusted: readonly NoteVerifier[],
  origin: string,
): Promise<{ anchors: LogAnchor[]; problems: string[]; total: number }> {
  const anchors: LogAnchor[] = [];
  const problems: string[] = [];
  const history = await readWitnessHistory(storage, tenantId, log, MAX_WITNESS_READS);
  for (const exported of history.exported) {
    try {
      const anchor = anchorFromNote(exported.note, `witness ${exported.location}`, trusted, origin);
      if (anchor.treeSize !== exported.treeSize) problems.push(`witness ${exported.location}: holds a checkpoint for size ${anchor.treeSize}`);
      else anchors.push(anchor);
    } catch (err) {
      problems.push(`witness ${exported.location}: ${(err as Error).message}`);
    }
  }
  return { anchors, problems, total: history.total };
}

export interface WitnessDeps {
  readonly storage: ObjectStorage;
  readonly ledger: Pick<LedgerService, 'checkpoints' | 'consistency' | 'originOf'>;
  /** Keys whose checkpoints are exported: the ledger's own signing key, never one read from the database. */
  readonly trusted: readonly NoteVerifier[];
  readonly log: Logger;
  readonly security: Logger;
  readonly refusals?: Counter<'log'>;
}

export interface WitnessSync {
  /** Sizes exported by this call. */
  readonly exported: readonly number[];
  /** The checkpoint the witness would not export, and why. */
  readonly refused?: { readonly treeSize: number; readonly reason: string };
}

export class CheckpointWitness {
  /** The newest exported checkpoint per log (undefined: none yet), read from storage once. */
  private readonly heads = new Map<string, Checkpoint | undefined>();
  /** The last refusal per log, so a persisting rewrite is reported once per checkpoint, not per tick. */
  private readonly refused = new Map<string, number>();

  constructor(private readonly deps: WitnessDeps) {}

  /** Exports the log's checkpoints newer than the last one exported, in order, each checked first. */
  async sync(tenantId: string, log: LedgerName): Promise<WitnessSync> {
    const id = `${tenantId}/${log}`;
    const origin = this.deps.ledger.originOf(tenantId, log);
    let head = this.heads.has(id) ? this.heads.get(id) : await this.readHead(tenantId, log);
    this.heads.set(id, head);
    const exported: number[] = [];
    for (const cp of await this.deps.ledger.checkpoints(tenantId, log, head ? { after: head.treeSize } : {})) {
      let next: Checkpoint;
      try {
        next = verifyCheckpoint(cp.note, this.deps.trusted, { origin }).checkpoint;
      } catch (err) {
        // A checkpoint row the ledger key did not sign: written into the database by someone else.
        return { exported, refused: this.refuse(tenantId, log, cp.tree_size, `not signed by the ledger's key: ${(err as Error).message}`) };
      }
      if (head && head.treeSize > 0) {
        try {
          const proof = await this.deps.ledger.consistency(tenantId, log, head.treeSize, next.treeSize);
          verifyConsistency({ firstSize: head.treeSize, secondSize: next.treeSize, firstRoot: head.rootHash, secondRoot: next.rootHash, proof: proof.proof });
        } catch (err) {
          return {
            exported,
            refused: this.refuse(
              tenantId,
              log,
              next.treeSize,
              `the database's log at size ${next.treeSize} does not extend the exported checkpoint at ` +
                `size ${head.treeSize} (history rewritten in the database?): ${(err as Error).message}`,
            ),
          };
        }
      }
      const key = witnessKey(tenantId, log, next.treeSize);
      const existing = await this.deps.storage.get(key);
      if (existing === undefined) {
        await this.deps.storage.put(key, Buffer.from(cp.note, 'utf8'));
        await this.deps.storage.put(latestKey(tenantId, log), Buffer.from(cp.note, 'utf8'));
      } else if (!parseCheckpoint(parseNote(existing).text).rootHash.equals(next.rootHash)) {
        // Written by another process meanwhile (several servers share the store): never replaced.
        return {
          exported,
          refused: this.refuse(
            tenantId,
            log,
            next.treeSize,
            `the exported checkpoint ${this.deps.storage.locate(key)} names another root for size ${next.treeSize}`,
          ),
        };
      }
      exported.push(next.treeSize);
      head = next;
      this.heads.set(id, head);
    }
    if (exported.length > 0) this.deps.log.debug({ tenant_id: tenantId, log, exported }, 'checkpoints exported to the ledger witness');
    return { exported };
  }

  /**
   * Where the witness left off: latest.checkpoint, else the newest of the history (a store written
   * before latest.checkpoint existed). Its own history, verified when it was written, possibly
   * under a key since rotated out; a stale latest only makes it re-check what it exported.
   */
  private async readHead(tenantId: string, log: LedgerName): Promise<Checkpoint | undefined> {
    let bytes = await this.deps.storage.get(latestKey(tenantId, log));
    if (!bytes) {
      const prefix = witnessLogPrefix(tenantId, log);
      const newest = (await this.deps.storage.list(prefix)).filter((o) => NAME.test(o.key.slice(prefix.length))).at(-1);
      bytes = newest ? await this.deps.storage.get(newest.key) : undefined;
    }
    return bytes ? parseCheckpoint(parseNote(bytes).text) : undefined;
  }

  private refuse(tenantId: string, log: LedgerName, treeSize: number, reason: string): { treeSize: number; reason: string } {
    const id = `${tenantId}/${log}`;
    if (this.refused.get(id) !== treeSize) {
      this.refused.set(id, treeSize);
      this.deps.refusals?.inc({ log });
      this.deps.security.error(
        { type: 'ledger_witness_refused', tenant_id: tenantId, log, tree_size: treeSize, reason },
        'ledger witness refused a checkpoint: the database no longer matches the exported history; run frostgate verify',
      );
    }
    return { treeSize, reason };
  }
}
