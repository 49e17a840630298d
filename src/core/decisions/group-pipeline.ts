import type { MerkleFrontier } from '../../ledger/merkle.js';
import type { DiffableDecision } from '../engine/diff.js';

/** A block a decision applied, for the doctrine's caps before the decision is stored. */
export interface PendingBlock {
  readonly occurredMs: number;
  readonly untilMs: number;
}

/**
 * A group that is hashed and being written: the next group's read may not see it yet, and then
 * builds on it (its frontier, its decisions as the previous ones per entity, its own blocks) instead
 * of on what the read returned. The write's check that the log still has the size and Merkle
 * frontier the group was built on makes that safe: if this group fails or lands differently,
 * the next one is read and built again.
 */
export interface InFlightGroup {
  readonly startSize: number;
  readonly endFrontier: MerkleFrontier;
  readonly lastByEntity: ReadonlyMap<string, DiffableDecision>;
  /** The blocks this group applies, and only those: the groups before it are stored below startSize. */
  readonly blocks: readonly PendingBlock[];
}

const settled = (p: Promise<unknown>): Promise<void> =>
  p.then(
    () => undefined,
    () => undefined,
  );

/**
 * One tenant's group commits, in two ordered stages: prepare (read, evaluate, hash) and write.
 * Group K prepares while group K-1 writes, so one group's database round trip overlaps the next
 * one's CPU work; at most one group is in flight behind the one preparing, and writes keep the
 * order in which groups were prepared (the order of the tenant's ledger).
 */
export class GroupPipeline {
  private lastPrepared: Promise<void> = Promise.resolve();
  private lastWritten: Promise<void> = Promise.resolve();
  private writtenBeforeLast: Promise<void> = Promise.resolve();
  /** The group being written, while its write has not settled. */
  inFlight: InFlightGroup | undefined;
  /** Groups started and not yet settled; the owner drops an idle pipeline. */
  users = 0;

  /**
   * `prepared` settles (never rejects) once `prepare` has run, successfully or not; `done` is the
   * outcome of `write` (or the error of `prepare`).
   */
  run<P, R>(prepare: () => Promise<P>, write: (prepared: P) => Promise<R>): { prepared: Promise<void>; done: Promise<R> } {
    const preparation = Promise.all([this.lastPrepared, this.writtenBeforeLast]).then(prepare);
    const done = Promise.all([preparation, this.lastWritten]).then(([p]) => write(p));
    this.lastPrepared = settled(preparation);
    this.writtenBeforeLast = this.lastWritten;
    this.lastWritten = settled(done);
    return { prepared: this.lastPrepared, done };
  }
}
