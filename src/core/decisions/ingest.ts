import { newId } from '../../platform/ids.js';
import { sql } from 'kysely';
import type { Database, Tx } from '../../platform/db/database.js';
import type { DurableQueue, QueueDelivery, QueueTransaction } from '../../platform/bus/queue.js';
import { AppError, notFound, unavailable } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import { isDependencyUnavailable } from '../../platform/dependency-errors.js';
import type { SecurityEvent } from '../engine/event.js';
import type { IngestBacklog } from './ingest-backlog.js';
import type { DecisionRecord, DecisionService } from './service.js';

export const MAX_BATCH_EVENTS = 1000;
/** Events decided and committed together; the batch's progress advances by this much. */
const CHUNK = 500;
/** Deliveries of one batch before it is marked failed rather than retried forever. */
const MAX_ATTEMPTS = 8;
const SUBJECT = 'ingest';

export interface AcceptedBatch {
  readonly batch_id: string;
  readonly event_count: number;
  readonly status_url: string;
}

export interface BatchStatus {
  readonly batch_id: string;
  readonly status: 'queued' | 'deciding' | 'completed' | 'failed';
  readonly event_count: number;
  readonly decided: number;
  readonly decision_ids: string[];
  readonly received_at: string;
  readonly completed_at: string | null;
  readonly error: string | null;
}

interface BatchMessage {
  readonly batch_id: string;
  readonly events: SecurityEvent[];
}

const newBatchId = (): string => newId('ing');

/**
 * /ingest: a batch is answered 202 only once it is durable (committed with its queue message in
 * one transaction on the database queue, or acknowledged by JetStream), and a consumer decides
 * its events in order through DecisionService.decideMany, the same evaluate() as /defend. Events
 * without an event_id get `<batch_id>:<index>` as idempotency key, so a redelivered batch (crash,
 * lost ack) decides nothing twice.
 */
export class IngestService {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly db: Database,
    private readonly queue: DurableQueue,
    private readonly decisions: Pick<DecisionService, 'issues' | 'decideStaged'>,
    private readonly log: Logger,
    /** Backpressure: refuses a batch while the work waiting to be decided is over its bounds. */
    private readonly backlog?: Pick<IngestBacklog, 'admit' | 'accepted' | 'observeDecided'>,
  ) {}

  async accept(tenantId: string, events: readonly unknown[]): Promise<AcceptedBatch> {
    if (events.length === 0)
      throw new AppError('validation_failed', 'body/events: a batch holds at least one event', { errors: [{ path: 'body/events', message: 'empty batch' }] });
    if (events.length > MAX_BATCH_EVENTS) {
      throw new AppError('payload_too_large', `body/events: a batch holds at most ${MAX_BATCH_EVENTS} events; this one has ${events.length} (split it)`, {
        limit: MAX_BATCH_EVENTS,
        received: events.length,
      });
    }
    // The whole batch is checked before anything is stored: a rejected batch leaves no trace.
    const errors: Array<{ path: string; message: string }> = [];
    for (const [i, raw] of events.entries()) {
      for (const issue of this.decisions.issues(raw)) errors.push({ path: `body/events/${i}/${issue.path}`, message: issue.message });
      if (errors.length >= 50) break;
    }
    if (errors.length > 0)
      throw new AppError(
        'unprocessable',
        `${errors[0]!.path}: ${errors[0]!.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}; nothing of this batch was stored`,
        { errors },
      );

    await this.backlog?.admit(events.length);
    const batchId = newBatchId();
    const message: BatchMessage = { batch_id: batchId, events: events as SecurityEvent[] };
    // With the embedded queue, the batch row and its message commit together; with JetStream the
    // message is published once the row has committed, and the row removed if it was not taken.
    // With the embedded queue, the batch row and its message commit together. With JetStream the
    // message is published once the row has committed, the row then marked queued (it counts as
    // waiting work from then on), or removed when the queue did not take the message.
    const queued = await this.db.withTenant(tenantId, async (tx) => {
      const q = this.queue.within(tx);
      await tx
        .insertInto('ingest_batches')
        .values({ batch_id: batchId, tenant_id: tenantId, event_count: events.length, queued: q.joinsTransaction })
        .execute();
      await q.enqueue(tenantId, SUBJECT, [message]);
      return q;
    });
    try {
      await queued.afterCommit();
    } catch (err) {
      // Not acknowledged: the client gets 503 and retries; the batch row must not claim otherwise.
      await this.db
        .withTenant(tenantId, (tx) => tx.deleteFrom('ingest_batches').where('batch_id', '=', batchId).execute())
        .catch((e: unknown) => this.log.error({ err: e, batch_id: batchId }, 'could not remove the row of an unqueued ingest batch'));
      this.log.error({ err, batch_id: batchId }, 'ingest batch not acknowledged by the queue');
      throw unavailable('the event queue did not acknowledge the batch; nothing was accepted, retry shortly');
    }
    if (!queued.joinsTransaction)
      // The batch is durable and will be decided: a failure here only leaves it out of the backlog's count.
      await this.db
        .withTenant(tenantId, (tx) =>
          tx.updateTable('ingest_batches').set({ queued: true }).where('tenant_id', '=', tenantId).where('batch_id', '=', batchId).execute(),
        )
        .catch((e: unknown) => this.log.error({ err: e, batch_id: batchId }, 'ingest batch queued but not marked so; the backlog does not count it'));
    this.backlog?.accepted(events.length);
    this.wake?.();
    return { batch_id: batchId, event_count: events.length, status_url: `/ingest/batches/${batchId}` };
  }

  async status(tenantId: string, batchId: string): Promise<BatchStatus> {
    const row = await this.db.withTenant(tenantId, (tx) =>
      tx.selectFrom('ingest_batches').selectAll().where('tenant_id', '=', tenantId).where('batch_id', '=', batchId).executeTakeFirst(),
    );
    if (!row) throw notFound(`ingest batch ${batchId}`);
    const decided = row.decision_ids.length;
    return {
      batch_id: row.batch_id,
      status: row.error ? 'failed' : row.completed_at ? 'completed' : decided > 0 ? 'deciding' : 'queued',
      event_count: row.event_count,
      decided,
      decision_ids: row.decision_ids,
      received_at: new Date(row.received_at).toISOString(),
      completed_at: row.completed_at ? new Date(row.completed_at).toISOString() : null,
      error: row.error,
    };
  }

  /** Starts the consumer loop (one per process); stop() waits for the batch in hand. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.consume();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  private async consume(): Promise<void> {
    while (this.running) {
      let handled = 0;
      try {
        handled = await this.drainOnce();
      } catch (err) {
        this.log.error({ err }, 'ingest consumer could not pull from the queue; retrying');
      }
      if (handled === 0 && this.running) {
        // Woken at once by an accept() in this process; otherwise polls (other processes, retries).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.queue.idlePollMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }

  /**
   * Decides up to a few queued batches; returns how many it handled.
   * A batch starts once the one before it is evaluated and hashed, so it is evaluated while that
   * one's last chunk is written (writes stay in order per tenant: the decision service's pipeline).
   */
  async drainOnce(max = 4): Promise<number> {
    const deliveries = await this.queue.pull(max, 120);
    const startedMs = performance.now();
    const outcomes: Array<Promise<void>> = [];
    // Handled at once, not when the loop ends: a rejection unhandled meanwhile would end the process.
    let cannotRecord: Error | undefined;
    for (const delivery of deliveries) {
      const run = this.process(delivery);
      outcomes.push(
        run.done
          .catch((err: unknown) => this.failed(delivery, err))
          .catch((err: unknown) => {
            cannotRecord ??= err instanceof Error ? err : new Error(String(err));
          }),
      );
      await run.prepared;
    }
    await Promise.all(outcomes);
    // The decide rate while busy: what turns the backlog's events into seconds of work.
    const events = deliveries.reduce((n, d) => n + ((d.payload as Partial<BatchMessage>).events?.length ?? 0), 0);
    this.backlog?.observeDecided(events, performance.now() - startedMs);
    if (cannotRecord !== undefined) throw cannotRecord;
    return deliveries.length;
  }

  /** `prepared` once every chunk is evaluated and hashed (never rejects), `done` once all are stored. */
  private process(delivery: QueueDelivery): { prepared: Promise<void>; done: Promise<void> } {
    let prepared!: () => void;
    const preparedP = new Promise<void>((resolve) => (prepared = resolve));
    const done = this.decideBatch(delivery, prepared).finally(prepared);
    return { prepared: preparedP, done };
  }

  private async decideBatch(delivery: QueueDelivery, prepared: () => void): Promise<void> {
    const { batch_id: batchId, events } = delivery.payload as BatchMessage;
    const tenantId = delivery.tenantId;
    // Chunk k+1 is evaluated and hashed while chunk k is written; writes stay in order. Whether
    // the chunks before this one are stored is asked of the batch row inside this chunk's
    // transaction, not of the process: a chunk whose transaction rolled back (after its callback
    // ran) leaves no ids there, so the chunks after it fail and the batch is retried whole.
    // A retried write or a redelivered batch sets its chunk's ids at their place, never appends.
    const writes: Array<Promise<unknown>> = [];
    // The acknowledgment commits with the last chunk (or follows it); a retried write makes a new one.
    let acknowledged: QueueTransaction | undefined;
    for (let start = 0; start < events.length; start += CHUNK) {
      const from = start;
      const chunk = events.slice(start, start + CHUNK).map((event, j) => ({ event, idempotencyKey: `${batchId}:${start + j}` }));
      const last = start + CHUNK >= events.length;
      const staged = this.decisions.decideStaged(tenantId, chunk, 'ingest', async (tx: Tx, records: readonly DecisionRecord[]) => {
        const ids = records.map((r) => r.decision_id);
        const updated = await tx
          .updateTable('ingest_batches')
          .set({ decision_ids: sql<string[]>`decision_ids[1:${from}] || ${ids}::text[]`, ...(last ? { completed_at: new Date() } : {}) })
          .where('tenant_id', '=', tenantId)
          .where('batch_id', '=', batchId)
          .where(sql<boolean>`cardinality(decision_ids) >= ${from}`)
          .executeTakeFirst();
        // A chunk after one that was not stored must not be stored, complete or acknowledge the batch.
        if (Number(updated.numUpdatedRows) !== 1) throw new Error(`ingest batch ${batchId}: the events before ${from} are not decided yet; retrying the batch`);
        if (last) {
          acknowledged = this.queue.within(tx);
          await acknowledged.ack([delivery]);
        }
      });
      writes.push(staged.done);
      await staged.prepared;
    }
    prepared();
    const failure = (await Promise.allSettled(writes)).find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure) throw failure.reason;
    await acknowledged?.afterCommit();
  }

  private async failed(delivery: QueueDelivery, err: unknown): Promise<void> {
    const { batch_id: batchId } = delivery.payload as BatchMessage;
    // A dependency outage is no fault of the batch: it was accepted (202), so it waits however long
    // the outage lasts. Only a batch that fails on its own is given up after MAX_ATTEMPTS.
    if (delivery.attempts < MAX_ATTEMPTS || isDependencyUnavailable(err)) {
      this.log.warn({ err, batch_id: batchId, tenant_id: delivery.tenantId, attempts: delivery.attempts }, 'ingest batch not decided yet; it will be retried');
      await this.queue
        .nak([delivery], Math.min(30, 2 ** delivery.attempts))
        .catch((e: unknown) => this.log.error({ err: e, batch_id: batchId }, 'could not return an ingest batch to the queue; its lease will expire'));
      return;
    }
    this.log.error({ err, batch_id: batchId, tenant_id: delivery.tenantId, attempts: delivery.attempts }, 'ingest batch failed after repeated attempts');
    const given = await this.db.withTenant(delivery.tenantId, async (tx) => {
      await tx
        .updateTable('ingest_batches')
        .set({ error: `not decided after ${delivery.attempts} attempts: ${(err as Error).message}` })
        .where('batch_id', '=', batchId)
        .execute();
      const q = this.queue.within(tx);
      await q.ack([delivery]);
      return q;
    });
    await given.afterCommit();
  }
}
