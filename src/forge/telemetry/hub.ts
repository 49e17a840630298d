import type { NatsConnection, Subscription } from 'nats';
import { TELEMETRY_PREFIX, type TelemetryEvent } from './events.js';

/**
 * The observer hub: subscribes to every tenant's telemetry on NATS and writes each event as one
 * JSON line with the labels a log pipeline indexes (promtail's `json` and `labels` stages: tenant,
 * kind, scenario, track, worker), everything else as fields. Lines that are not telemetry events
 * are counted and dropped, never written: the hub's output must stay parseable.
 */
export class ObserverHub {
  private sub: Subscription | undefined;
  private done: Promise<void> | undefined;
  /** Messages that were not telemetry events (not JSON, or missing kind/event/tenant). */
  rejected = 0;
  written = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly write: (line: string) => void,
    private readonly subject = `${TELEMETRY_PREFIX}.>`,
  ) {}

  /** Resolves once the subscription is registered with the server (events published after are seen). */
  async start(): Promise<void> {
    this.sub = this.nc.subscribe(this.subject);
    const sub = this.sub;
    this.done = (async () => {
      for await (const msg of sub) {
        const line = toLogLine(msg.subject, msg.data);
        if (line === undefined) {
          this.rejected++;
          continue;
        }
        this.write(line);
        this.written++;
      }
    })();
    await this.nc.flush();
  }

  async stop(): Promise<void> {
    this.sub?.unsubscribe();
    await this.done;
  }
}

/** One JSON log line for an event received on `subject`; the tenant is the subject's, not the payload's. */
export function toLogLine(subject: string, data: Uint8Array): string | undefined {
  const [, , tenant, kind] = subject.split('.');
  let event: Partial<TelemetryEvent>;
  try {
    event = JSON.parse(Buffer.from(data).toString('utf8')) as Partial<TelemetryEvent>;
  } catch {
    return undefined;
  }
  if (!event || typeof event !== 'object' || typeof event.event !== 'string' || event.kind !== kind || !tenant) return undefined;
  // A publisher cannot file an event under another tenant: the subject decides, a differing payload is refused.
  if (event.tenant_id !== tenant) return undefined;
  return JSON.stringify({
    time: event.at ?? new Date().toISOString(),
    level: 'info',
    logger: 'frostgate.telemetry',
    msg: `${kind} ${event.event}`,
    tenant_id: tenant,
    kind,
    event: event.event,
    scenario_id: event.scenario_id,
    track: event.track,
    worker_id: event.worker_id,
    ...(event.details ? { details: event.details } : {}),
  });
}
