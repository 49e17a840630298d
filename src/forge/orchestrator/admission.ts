import { AppError } from '../../platform/http/problem.js';
import type { Logger } from '../../platform/log.js';
import { TokenRefusedError, type ScenarioTokens } from '../tokens/scenario-tokens.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import type { Orchestrator } from './service.js';
import type { Scenario } from './store.js';

/** Where a handoff came from, for the security log. */
export type AdmissionPath = 'in_process' | 'http';

/**
 * The orchestrator's front door for new scenarios: nothing is built without a valid SAT (the
 * scenario access token spawn mints after its entitlement, policy and quota checks). The SAT
 * names the tenant, learner, scenario id, track and template; it is verified (signature,
 * audience, expiry) and used once, so a copied SAT cannot build a second lab. The HTTP route
 * and the in-process handoff both come through here.
 */
export class ScenarioAdmission {
  constructor(
    private readonly deps: {
      readonly orchestrator: Pick<Orchestrator, 'create'>;
      readonly catalog: TemplateCatalog;
      readonly tokens: Pick<ScenarioTokens, 'verify'>;
      readonly security: Logger;
    },
  ) {}

  /**
   * `bindTenant` receives the tenant the SAT names and returns the tenant the caller acts for
   * (the HTTP route compares it with the API key's tenant: another tenant is 403).
   */
  async admit(sat: string | undefined, bindTenant: (claimedTenant: string) => string, path: AdmissionPath): Promise<Scenario> {
    if (!sat) {
      this.refused(path, 'missing');
      throw new AppError('unauthorized', 'a scenario access token (SAT) is required in the X-SAT header; spawn (POST /v1/spawn) issues one', {
        reason: 'sat_missing',
      });
    }
    let claims;
    try {
      claims = await this.deps.tokens.verify('sat', sat, { once: true });
    } catch (err) {
      if (!(err instanceof TokenRefusedError)) throw err;
      this.refused(path, err.problem);
      throw new AppError('forbidden', `scenario access token refused: ${err.message}`, { reason: `sat_${err.problem}` });
    }
    const tenantId = bindTenant(claims.tenant);
    const [templateId, version] = splitTemplateRef(claims.template);
    const template = templateId && version ? this.deps.catalog.get(templateId, version) : undefined;
    if (!template) {
      this.refused(path, 'unknown_template', claims.scenarioId);
      throw new AppError('unprocessable', `the SAT names template ${JSON.stringify(claims.template ?? null)}, which this orchestrator does not have`, {
        reason: 'sat_unknown_template',
      });
    }
    if (template.track !== claims.track) {
      this.refused(path, 'track_mismatch', claims.scenarioId);
      throw new AppError('forbidden', `the SAT is for track ${claims.track}, template ${template.id} is ${template.track}`, { reason: 'sat_track_mismatch' });
    }
    return this.deps.orchestrator.create(tenantId, template, claims.subject, { scenarioId: claims.scenarioId });
  }

  private refused(path: AdmissionPath, reason: string, scenarioId?: string): void {
    this.deps.security.warn(
      { type: 'sat_refused', reason, path, ...(scenarioId ? { scenario_id: scenarioId } : {}) },
      'orchestrator refused a scenario handoff',
    );
  }
}

function splitTemplateRef(ref: string | undefined): [string | undefined, string | undefined] {
  if (!ref) return [undefined, undefined];
  const at = ref.lastIndexOf('@');
  return at <= 0 ? [undefined, undefined] : [ref.slice(0, at), ref.slice(at + 1)];
}
