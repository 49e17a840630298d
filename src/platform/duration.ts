/** "90d", "12h", "30m", "45s" or a plain number of seconds, to milliseconds. */
const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export class InvalidDurationError extends Error {
  readonly code = 'invalid_duration';
}

export function parseDuration(input: string): number {
  const m = /^(\d{1,9})([smhdw]?)$/.exec(input.trim());
  if (!m) throw new InvalidDurationError(`${JSON.stringify(input)} is not a duration; use e.g. 90d, 12h, 30m or 3600s`);
  const value = Number(m[1]);
  if (value <= 0) throw new InvalidDurationError(`duration ${JSON.stringify(input)} must be positive`);
  return value * UNITS[m[2] || 's']!;
}
