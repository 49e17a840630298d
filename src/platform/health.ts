/** A dependency the platform needs to serve: readiness fails when any check fails. */
export interface HealthCheck {
  readonly name: string;
  /** Resolves with details when healthy, throws when not. */
  check(): Promise<Record<string, unknown> | void>;
}

export interface CheckResult {
  ok: boolean;
  latency_ms: number;
  error?: string;
  [detail: string]: unknown;
}

export class HealthRegistry {
  private readonly checks = new Map<string, HealthCheck>();

  register(check: HealthCheck): void {
    this.checks.set(check.name, check);
  }

  names(): string[] {
    return [...this.checks.keys()];
  }

  async run(timeoutMs = 2500): Promise<{ ok: boolean; checks: Record<string, CheckResult> }> {
    const entries = await Promise.all(
      [...this.checks.values()].map(async (c): Promise<[string, CheckResult]> => {
        const started = performance.now();
        let timer: NodeJS.Timeout | undefined;
        try {
          const detail = await Promise.race([
            c.check(),
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
            }),
          ]);
          return [c.name, { ...(detail ?? {}), ok: true, latency_ms: round(performance.now() - started) }];
        } catch (err) {
          return [c.name, { ok: false, latency_ms: round(performance.now() - started), error: (err as Error).message }];
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const checks = Object.fromEntries(entries);
    return { ok: entries.every(([, r]) => r.ok), checks };
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;
