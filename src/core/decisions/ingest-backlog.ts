import { sql } from 'kysely';
import type { Database } from '../../platform/db/database.js';
import { AppError } from '../../platform/http/problem.js';

/** What waits to be decided, over every tenant and process (fg_ingest_backlog, migration 0017). */
export interface BacklogSample {
  /** Accepted events not decided yet. */
  readonly events: number;
  readonly batches: number;
  /** Seconds of work they stand for at this process's measured decide rate (0 before it has one). */
  readonly seconds: number;
  /** Events this process's consumer decides per second while it is busy (0: not measured yet). */
  readonly decidedPerS: number;
}

export interface BacklogBounds {
  readonly maxEvents: number;
  readonly maxSeconds: number;
}

/** A sample is reused for this long; accepts meanwhile are added to it as they happen. */
const SAMPLE_TTL_MS = 250;
/** Retry-After bounds (seconds) of a refused batch. */
const RETRY_MIN_S = 1;
const RETRY_MAX_S = 60;
/** Weight the decide rate keeps of what came before at each measured drain. */
const RATE_DECAY = 0.8;

/**
 * /ingest backpressure: a batch is refused whole (503, Retry-After) while the accepted work that
 * waits is over FG_INGEST_MAX_BACKLOG_EVENTS events, or over FG_INGEST_MAX_BACKLOG_S seconds of
 * work at the rate the consumer decides while busy (measured in this process; a process that has
 * not decided yet applies the events bound only), so a producer faster than the deciders is slowed
 * down instead of growing the queue without bound. The backlog is read from the batches' rows (one
 * summing query at most every 250 ms, shared by concurrent accepts): every process's accepts and
 * decisions count.
 */
export class IngestBacklog {
  private sample: { at: number; value: BacklogSample } | undefined;
  private reading: Promise<BacklogSample> | undefined;
  /** Decayed sums of events decided and of the seconds the consumer was busy deciding them. */
  private decidedEvents = 0;
  private busyS = 0;

  constructor(
    private readonly db: Database,
    readonly bounds: BacklogBounds,
  ) {}

  /** The consumer decided `events` in `busyMs` of work (a drain of the queue). */
  observeDecided(events: number, busyMs: number): void {
    if (events <= 0 || busyMs <= 0) return;
    this.decidedEvents = this.decidedEvents * RATE_DECAY + events;
    this.busyS = this.busyS * RATE_DECAY + busyMs / 1000;
  }

  private rate(): number {
    return this.busyS > 0 ? this.decidedEvents / this.busyS : 0;
  }

  /** The current backlog (a sample at most 250 ms old, plus what this process accepted since). */
  async current(): Promise<BacklogSample> {
    if (this.sample && Date.now() - this.sample.at < SAMPLE_TTL_MS) return this.withRate(this.sample.value.events, this.sample.value.batches);
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** Refuses a batch of `events` that the backlog has no room for; nothing of it is stored. */
  async admit(events: number): Promise<void> {
    const b = await this.current();
    const overEvents = b.events + events > this.bounds.maxEvents;
    const overSeconds = b.decidedPerS > 0 && b.seconds > this.bounds.maxSeconds;
    if (!overEvents && !overSeconds) return;
    // Until enough of the backlog is decided to make room, at the rate it is being decided.
    const excess = Math.max(b.events + events - this.bounds.maxEvents, b.events - this.bounds.maxSeconds * b.decidedPerS, 1);
    const retryS = b.decidedPerS > 0 ? Math.min(RETRY_MAX_S, Math.max(RETRY_MIN_S, Math.ceil(excess / b.decidedPerS))) : RETRY_MAX_S / 6;
    const limit = overEvents ? `FG_INGEST_MAX_BACKLOG_EVENTS=${this.bounds.maxEvents}` : `FG_INGEST_MAX_BACKLOG_S=${this.bounds.maxSeconds}`;
    throw new AppError(
      'unavailable',
      `the ingest backlog is full (${b.events} events, about ${Math.round(b.seconds)} s of work waiting; ${limit}); nothing of this batch was accepted, retry after ${retryS} s`,
      { backlog_events: b.events, backlog_seconds: Math.round(b.seconds), max_events: this.bounds.maxEvents, max_seconds: this.bounds.maxSeconds },
      { 'retry-after': String(retryS) },
    );
  }

  /** Counts an accepted batch (of `events`) until the next sample sees it. */
  accepted(events: number): void {
    if (this.sample) this.sample = { at: this.sample.at, value: this.withRate(this.sample.value.events + events, this.sample.value.batches + 1) };
  }

  private withRate(events: number, batches: number): BacklogSample {
    const decidedPerS = this.rate();
    return { events, batches, seconds: decidedPerS > 0 ? events / decidedPerS : 0, decidedPerS };
  }

  private async read(): Promise<BacklogSample> {
    const { rows } = await sql<{ events: string | number; batches: string | number }>`SELECT * FROM fg_ingest_backlog()`.execute(this.db.db);
    const value = this.withRate(Number(rows[0]!.events), Number(rows[0]!.batches));
    this.sample = { at: Date.now(), value };
    return value;
  }
}
