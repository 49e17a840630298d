import { AppError } from '../../platform/http/problem.js';
import type { ScenarioAdmission } from '../orchestrator/admission.js';

/** What the orchestrator answered for a handed-off scenario. */
export interface HandedOffScenario {
  readonly scenario_id: string;
  readonly state: string;
  readonly expires_at: string;
}

/**
 * How spawn gives a scenario to the orchestrator: the SAT is the whole authority (the
 * orchestrator verifies it and builds the lab it names). In-process when one process runs both
 * roles, over HTTP to FG_ORCHESTRATOR_URL otherwise.
 */
export interface ScenarioHandoff {
  submit(tenantId: string, sat: string): Promise<HandedOffScenario>;
}

/** Same process: straight into the orchestrator's admission (which still verifies the SAT). */
export class InProcessHandoff implements ScenarioHandoff {
  constructor(private readonly admission: Pick<ScenarioAdmission, 'admit'>) {}

  async submit(tenantId: string, sat: string): Promise<HandedOffScenario> {
    const s = await this.admission.admit(
      sat,
      (claimed) => {
        if (claimed !== tenantId) throw new AppError('tenant_mismatch', `the SAT is for tenant ${claimed}, not ${tenantId}`);
        return claimed;
      },
      'in_process',
    );
    return { scenario_id: s.scenario_id, state: s.state, expires_at: s.expires_at };
  }
}

/** Another process: POST /v1/scenarios with the SAT and a forge:operate key of the same tenant. */
export class HttpHandoff implements ScenarioHandoff {
  constructor(
    private readonly baseUrl: string,
    private readonly apiKey: string,
    private readonly timeoutMs = 120_000,
  ) {}

  async submit(tenantId: string, sat: string): Promise<HandedOffScenario> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl.replace(/\/+$/, '')}/v1/scenarios`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': this.apiKey, 'x-sat': sat, 'x-tenant-id': tenantId },
        body: '{}',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new AppError('unavailable', `the orchestrator at ${this.baseUrl} did not answer: ${(err as Error).message}`, {
        reason: 'orchestrator_unreachable',
      });
    }
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (res.status === 201 && typeof body.scenario_id === 'string' && typeof body.state === 'string' && typeof body.expires_at === 'string') {
      return { scenario_id: body.scenario_id, state: body.state, expires_at: body.expires_at };
    }
    const detail = typeof body.detail === 'string' ? body.detail : `status ${res.status}`;
    throw new AppError('unavailable', `the orchestrator refused the scenario: ${detail}`, { reason: 'orchestrator_refused', orchestrator_status: res.status });
  }
}
