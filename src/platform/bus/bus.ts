import { EventEmitter } from 'node:events';
import { connect, type NatsConnection } from 'nats';
import type { HealthCheck } from '../health.js';

export type BusHandler = (data: unknown, subject: string) => void | Promise<void>;

/**
 * Notifications between nodes (deploys, revocations, wake-ups). Best effort by design: state
 * lives in the database, and a node that misses a message catches up by polling.
 */
export interface Bus {
  readonly kind: 'in-process' | 'nats';
  publish(subject: string, data: unknown): Promise<void>;
  subscribe(subject: string, handler: BusHandler): () => void;
  health(): HealthCheck;
  close(): Promise<void>;
}

export class InProcessBus implements Bus {
  readonly kind = 'in-process' as const;
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  async publish(subject: string, data: unknown): Promise<void> {
    this.emitter.emit(subject, data);
  }

  subscribe(subject: string, handler: BusHandler): () => void {
    const listener = (data: unknown) => void Promise.resolve(handler(data, subject)).catch(() => {});
    this.emitter.on(subject, listener);
    return () => this.emitter.off(subject, listener);
  }

  health(): HealthCheck {
    return { name: 'bus', check: async () => ({ kind: this.kind }) };
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}

export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  constructor(readonly nc: NatsConnection) {}

  static async connect(url: string): Promise<NatsBus> {
    const nc = await connect({ servers: url, name: 'frostgate', reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 3000 });
    return new NatsBus(nc);
  }

  async publish(subject: string, data: unknown): Promise<void> {
    this.nc.publish(subject, Buffer.from(JSON.stringify(data)));
  }

  subscribe(subject: string, handler: BusHandler): () => void {
    const sub = this.nc.subscribe(subject);
    void (async () => {
      for await (const msg of sub) {
        let data: unknown;
        try {
          data = JSON.parse(Buffer.from(msg.data).toString('utf8'));
        } catch {
          continue; // not ours: every FrostGate message is JSON
        }
        await Promise.resolve(handler(data, msg.subject)).catch(() => {});
      }
    })();
    return () => sub.unsubscribe();
  }

  health(): HealthCheck {
    return {
      name: 'nats',
      check: async () => {
        if (this.nc.isClosed()) throw new Error('nats connection is closed');
        const rtt = await this.nc.rtt();
        return { rtt_ms: rtt, server: this.nc.info?.version };
      },
    };
  }

  async close(): Promise<void> {
    // drain() waits for the server; when NATS is down it would wait forever, so it gets a bound.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.nc.drain(), new Promise((resolve) => (timer = setTimeout(resolve, 1000)))]).catch(() => undefined);
    clearTimeout(timer);
    if (!this.nc.isClosed()) await this.nc.close();
  }
}
