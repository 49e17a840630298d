/**
 * Lab and service telemetry on NATS: one subject per tenant and kind,
 * `fg.telemetry.<tenant>.<kind>` (`_platform` for events of no tenant, such as worker
 * heartbeats), so a subscriber can take one tenant or everything (`fg.telemetry.>`).
 */
export const TELEMETRY_PREFIX = 'fg.telemetry';
export const PLATFORM_TENANT = '_platform';

export type TelemetryKind = 'lab' | 'session' | 'grading' | 'heartbeat';

export interface TelemetryEvent {
  readonly kind: TelemetryKind;
  /** lab: the state entered (provisioning, running, ...); session: started, ended; grading: graded; heartbeat: advert. */
  readonly event: string;
  readonly tenant_id: string;
  readonly scenario_id?: string;
  readonly track?: string;
  readonly worker_id?: string;
  readonly at: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** NATS subject tokens may not hold `.`, `*`, `>` or whitespace: such a tenant id never names a subject. */
export function telemetrySubject(tenantId: string, kind: TelemetryKind): string {
  if (!/^[A-Za-z0-9_-]+$/.test(tenantId)) throw new Error(`tenant id ${JSON.stringify(tenantId)} cannot be a telemetry subject token`);
  return `${TELEMETRY_PREFIX}.${tenantId}.${kind}`;
}
