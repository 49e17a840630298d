import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BindTenant } from '../../platform/auth/tenant.js';
import type { AppPlugin } from '../../platform/http/server.js';
import type { Platform } from '../../platform/platform.js';
import { AppError } from '../../platform/http/problem.js';
import { textAsset, type Asset } from '../access/assets.js';
import type { ScenarioStore } from '../orchestrator/store.js';
import { readResults } from '../scoring/results.js';
import { bestAttempt, type ScoringService } from '../scoring/service.js';
import type { SpawnModule } from '../spawn/module.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import type { ScenarioTokens } from '../tokens/scenario-tokens.js';
import type { PortalScoring } from './certificate.js';
import { portalRoutes } from './routes.js';

const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../web/portal');

export interface PortalRoleDeps {
  readonly tokens: ScenarioTokens;
  readonly spawn: Pick<SpawnModule, 'service' | 'entitlements'>;
  readonly scenarios: Pick<ScenarioStore, 'get' | 'listForSubject'>;
  readonly catalog: TemplateCatalog;
  readonly bindTenant: BindTenant;
  /** Present when this process runs the scoreboard: scores, downloads and certificates. */
  readonly scoring?: Pick<ScoringService, 'history' | 'score' | 'storage' | 'verdictKeys'>;
}

/** The learner portal of a process that serves spawn (it starts labs through spawn's service). */
export async function createPortalForRole(platform: Pick<Platform, 'config' | 'security'>, deps: PortalRoleDeps): Promise<AppPlugin> {
  const assets = new Map<string, Asset>();
  for (const [name, type] of [
    ['portal.js', 'text/javascript; charset=utf-8'],
    ['portal.css', 'text/css; charset=utf-8'],
  ] as const)
    assets.set(name, textAsset(await readFile(path.join(WEB_DIR, name), 'utf8'), type));
  return {
    name: 'forge-portal',
    plugin: portalRoutes({
      tokens: deps.tokens,
      spawn: deps.spawn.service,
      entitlements: deps.spawn.entitlements,
      scenarios: deps.scenarios,
      templates: deps.catalog,
      bindTenant: deps.bindTenant,
      publicUrl: platform.config.forge.publicUrl,
      assets,
      security: platform.security,
      ...(deps.scoring ? { scoring: scoringPortalPort(deps.scoring) } : {}),
    }),
  };
}

/**
 * The scoreboard as the portal reads it: a lab's best graded attempt (what "my labs" and progress
 * count); a scenario with no score row of this tenant has no results.
 */
export function scoringPortalPort(scoring: Pick<ScoringService, 'history' | 'score' | 'storage' | 'verdictKeys'>): PortalScoring {
  const graded: PortalScoring['graded'] = async (tenantId, scenarioId) => {
    try {
      const latest = await scoring.score(tenantId, scenarioId);
      const best = bestAttempt(latest.attempts);
      const { row, score } = best && best.attempt !== latest.attempt ? await scoring.score(tenantId, scenarioId, best.attempt) : latest;
      return { row, criteria: score.criteria.map((c) => ({ description: c.description, awarded: c.awarded, points: c.points, status: c.status })) };
    } catch (err) {
      if (err instanceof AppError && err.code === 'not_found') return undefined;
      throw err;
    }
  };
  return {
    history: (t, s, n) => scoring.history(t, s, n),
    graded,
    async results(tenantId, scenarioId) {
      const found = await graded(tenantId, scenarioId);
      return found ? readResults(scoring.storage, scenarioId, found.row.attempt) : undefined;
    },
    verdictKeys: () => scoring.verdictKeys(),
  };
}
