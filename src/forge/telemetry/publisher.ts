import type { Bus } from '../../platform/bus/bus.js';
import { telemetrySubject, type TelemetryEvent } from './events.js';

/** Where modules send telemetry; best effort (a lost event loses a log line, never a scenario). */
export interface TelemetrySink {
  emit(event: Omit<TelemetryEvent, 'at'>): void;
}

/** Publishes on the platform bus: NATS in a deployment (the observer hub subscribes), in-process embedded. */
export class BusTelemetry implements TelemetrySink {
  constructor(
    private readonly bus: Pick<Bus, 'publish'>,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  emit(event: Omit<TelemetryEvent, 'at'>): void {
    const full: TelemetryEvent = { ...event, at: new Date().toISOString() };
    try {
      void this.bus.publish(telemetrySubject(full.tenant_id, full.kind), full).catch(this.onError);
    } catch (err) {
      this.onError(err);
    }
  }
}
