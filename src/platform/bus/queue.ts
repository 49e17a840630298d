import { sql } from 'kysely';
import {
  AckPolicy,
  DebugEvents,
  Events,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
} from 'nats';
import type { Database, Tx } from '../db/database.js';

/** A durable work queue: JetStream in production, the database embedded; same contract. */
export interface QueueDelivery {
  readonly id: string;
  readonly tenantId: string;
  readonly subject: string;
  readonly payload: unknown;
  /** 1 on first delivery; higher after a crash or nak. Consumers must be idempotent. */
  readonly attempts: number;
}

/**
 * Queue operations that commit with a transaction of the caller's: where the queue lives in the
 * same database they run in that transaction (the caller's rows and the queue change together,
 * exactly once); otherwise they are held until afterCommit(), which the caller runs once the
 * transaction has committed (at least once: a crash in between redelivers, consumers are idempotent).
 */
export interface QueueTransaction {
  /** True when the operations are part of the transaction itself (afterCommit then does nothing). */
  readonly joinsTransaction: boolean;
  enqueue(tenantId: string, subject: string, payloads: readonly unknown[]): Promise<void>;
  ack(deliveries: readonly QueueDelivery[]): Promise<void>;
  /** Runs what could not join the transaction; rejects when the queue did not take it (nothing of it is stored). */
  afterCommit(): Promise<void>;
}

export interface DurableQueue {
  readonly kind: 'database' | 'jetstream';
  /** How long a consumer with nothing to do waits before pulling again (0: pull() itself waits for messages). */
  readonly idlePollMs: number;
  /** Stores messages durably before resolving (DB commit or JetStream ack). */
  enqueue(tenantId: string, subject: string, payloads: readonly unknown[]): Promise<void>;
  /** Operations that commit with `tx` (see QueueTransaction). */
  within(tx: Tx): QueueTransaction;
  /** Up to `max` messages, leased for `leaseS` seconds: ack them, or they come back. */
  pull(max: number, leaseS?: number): Promise<QueueDelivery[]>;
  /** Acknowledges processed messages. */
  ack(deliveries: readonly QueueDelivery[]): Promise<void>;
  nak(deliveries: readonly QueueDelivery[], delayS: number): Promise<void>;
  depth(): Promise<number>;
  close(): Promise<void>;
}

/** The embedded queue: a table, claimed with SKIP LOCKED leases through definer functions. */
export class DatabaseQueue implements DurableQueue {
  readonly kind = 'database' as const;
  readonly idlePollMs = 250;
  constructor(
    private readonly db: Database,
    private readonly stream: string,
  ) {}

  async enqueue(tenantId: string, subject: string, payloads: readonly unknown[]): Promise<void> {
    await this.db.withTenant(tenantId, (tx) => this.enqueueIn(tx, tenantId, subject, payloads));
  }

  /** In the caller's transaction: the messages and the caller's rows commit or vanish together. */
  within(tx: Tx): QueueTransaction {
    return {
      joinsTransaction: true,
      enqueue: (tenantId, subject, payloads) => this.enqueueIn(tx, tenantId, subject, payloads),
      ack: (deliveries) => this.ackIn(tx, deliveries),
      afterCommit: async () => {},
    };
  }

  private async enqueueIn(tx: Tx, tenantId: string, subject: string, payloads: readonly unknown[]): Promise<void> {
    if (payloads.length === 0) return;
    await sql`INSERT INTO queue_messages (stream, tenant_id, subject, payload)
          SELECT ${this.stream}, ${tenantId}, ${subject}, p FROM unnest(${payloads.map((p) => JSON.stringify(p))}::jsonb[]) AS p`.execute(tx);
  }

  async pull(max: number, leaseS = 30): Promise<QueueDelivery[]> {
    const rows = await sql<{ id: number | string; tenant_id: string; subject: string; payload: unknown; attempts: number }>`
      SELECT * FROM fg_queue_claim(${this.stream}, ${max}, ${leaseS})`.execute(this.db.db);
    return rows.rows
      .map((r) => ({ id: String(r.id), tenantId: r.tenant_id, subject: r.subject, payload: r.payload, attempts: r.attempts }))
      .sort((a, b) => Number(a.id) - Number(b.id));
  }

  async ack(deliveries: readonly QueueDelivery[]): Promise<void> {
    await this.ackIn(this.db.db, deliveries);
  }

  private async ackIn(executor: Tx | Database['db'], deliveries: readonly QueueDelivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    await sql`SELECT fg_queue_ack(${deliveries.map((d) => d.id)}::bigint[])`.execute(executor);
  }

  async nak(deliveries: readonly QueueDelivery[], delayS: number): Promise<void> {
    if (deliveries.length === 0) return;
    await sql`SELECT fg_queue_nak(${deliveries.map((d) => d.id)}::bigint[], ${delayS})`.execute(this.db.db);
  }

  async depth(): Promise<number> {
    const r = await sql<{ n: number | string }>`SELECT fg_queue_depth(${this.stream}) AS n`.execute(this.db.db);
    return Number(r.rows[0]?.n ?? 0);
  }

  async close(): Promise<void> {}
}

interface JetStreamDelivery extends QueueDelivery {
  readonly msg: JsMsg;
}

/**
 * JetStream work queue: stream `<STREAM>` on subjects `<stream>.<tenant>.<subject>`, a durable
 * pull consumer with explicit acks. A publish resolves only after the server's PubAck.
 */
export class JetStreamQueue implements DurableQueue {
  readonly kind = 'jetstream' as const;
  readonly idlePollMs = 0;
  private disconnected = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly durable: string,
  ) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Disconnect || s.type === DebugEvents.Reconnecting) this.disconnected = true;
        else if (s.type === Events.Reconnect) this.disconnected = false;
      }
    })();
  }

  static async open(nc: NatsConnection, stream: string, durable = 'frostgate-consumer'): Promise<JetStreamQueue> {
    const jsm = await nc.jetstreamManager();
    const prefix = stream.toLowerCase();
    try {
      await jsm.streams.info(stream);
    } catch {
      await jsm.streams.add({
        name: stream,
        subjects: [`${prefix}.>`],
        storage: StorageType.File,
        retention: RetentionPolicy.Workqueue,
        max_bytes: 1024 * 1024 * 1024,
      });
    }
    try {
      await jsm.consumers.info(stream, durable);
    } catch {
      await jsm.consumers.add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, ack_wait: 30_000_000_000, max_deliver: -1 });
    }
    return new JetStreamQueue(nc, nc.jetstream(), jsm, stream, durable);
  }

  async enqueue(tenantId: string, subject: string, payloads: readonly unknown[]): Promise<void> {
    const full = `${this.stream.toLowerCase()}.${tenantId}.${subject}`;
    // Not connected: refuse now rather than wait out the publish timeout (the caller answers 503).
    if (this.nc.isClosed() || this.disconnected) throw new Error('NATS is not connected; the message was not stored');
    await Promise.all(payloads.map((p) => this.js.publish(full, Buffer.from(JSON.stringify(p)), { timeout: 2000 })));
  }

  /** JetStream cannot join a database transaction: the operations run after it commits. */
  within(): QueueTransaction {
    const held: Array<() => Promise<void>> = [];
    return {
      joinsTransaction: false,
      enqueue: async (tenantId, subject, payloads) => void held.push(() => this.enqueue(tenantId, subject, payloads)),
      ack: async (deliveries) => void held.push(() => this.ack(deliveries)),
      afterCommit: async () => {
        for (const op of held.splice(0)) await op();
      },
    };
  }

  async pull(max: number): Promise<QueueDelivery[]> {
    const consumer = await this.js.consumers.get(this.stream, this.durable);
    const batch = await consumer.fetch({ max_messages: max, expires: 1000 });
    const out: JetStreamDelivery[] = [];
    for await (const msg of batch) {
      const [, tenantId = '', ...rest] = msg.subject.split('.');
      out.push({
        id: String(msg.seq),
        tenantId,
        subject: rest.join('.'),
        payload: JSON.parse(Buffer.from(msg.data).toString('utf8')) as unknown,
        attempts: msg.info.redeliveryCount,
        msg,
      });
    }
    return out;
  }

  async ack(deliveries: readonly QueueDelivery[]): Promise<void> {
    await Promise.all(deliveries.map((d) => (d as JetStreamDelivery).msg.ackAck()));
  }

  async nak(deliveries: readonly QueueDelivery[], delayS: number): Promise<void> {
    for (const d of deliveries) (d as JetStreamDelivery).msg.nak(delayS * 1000);
  }

  async depth(): Promise<number> {
    const info = await this.jsm.consumers.info(this.stream, this.durable);
    return info.num_pending + info.num_ack_pending;
  }

  async close(): Promise<void> {}
}
