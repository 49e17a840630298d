/** Bounds of the learner's terminals; every one is per process and configurable for tests. */
export interface AccessLimits {
  /** Live shells (attached or waiting for a reconnect) per scenario. */
  readonly terminalsPerScenario: number;
  /** Largest WebSocket message the server accepts; a bigger one closes the socket (1009). */
  readonly maxMessageBytes: number;
  /** Sustained PTY output per terminal; above it the PTY is paused (flow control, nothing is dropped). */
  readonly outputBytesPerSecond: number;
  /** Output burst allowed before the rate applies. */
  readonly outputBurstBytes: number;
  /** How long a shell whose socket dropped waits for the browser to reconnect. */
  readonly reconnectGraceMs: number;
  /** Output kept while no socket is attached, replayed on reconnect. */
  readonly replayBufferBytes: number;
  /** No input for this long closes the terminal... */
  readonly idleTimeoutMs: number;
  /** ...after a warning sent this long before. */
  readonly idleWarningMs: number;
  /** Recordings of one scenario stop growing past this (a marker says so). */
  readonly recordingBytesPerScenario: number;
}

export const DEFAULT_ACCESS_LIMITS: AccessLimits = {
  terminalsPerScenario: 8,
  maxMessageBytes: 64 * 1024,
  outputBytesPerSecond: 256 * 1024,
  outputBurstBytes: 512 * 1024,
  reconnectGraceMs: 60_000,
  replayBufferBytes: 64 * 1024,
  idleTimeoutMs: 30 * 60_000,
  idleWarningMs: 60_000,
  recordingBytesPerScenario: 64 * 1024 * 1024,
};

export function accessLimits(overrides: Partial<AccessLimits> = {}): AccessLimits {
  const limits = { ...DEFAULT_ACCESS_LIMITS, ...overrides };
  if (limits.idleWarningMs >= limits.idleTimeoutMs) throw new Error('idleWarningMs must be shorter than idleTimeoutMs');
  return limits;
}
