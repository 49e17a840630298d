export { TELEMETRY_PREFIX, PLATFORM_TENANT, telemetrySubject, type TelemetryEvent, type TelemetryKind } from './events.js';
export { BusTelemetry, type TelemetrySink } from './publisher.js';
export { ObserverHub, toLogLine } from './hub.js';
