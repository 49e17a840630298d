import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BindTenant } from '../platform/auth/tenant.js';
import type { AuditTrail } from '../ledger/audit.js';
import type { AppPlugin } from '../platform/http/server.js';
import type { Platform } from '../platform/platform.js';
import type { PolicyEngine } from '../policy/engine.js';
import { createOrchestratorModule, type OrchestratorModule } from './orchestrator/module.js';
import { ScenarioStore } from './orchestrator/store.js';
import { TemplateCatalog } from './templates/catalog.js';
import { formatProblem, TemplateInvalidError } from './templates/errors.js';
import { loadTemplate } from './templates/load.js';
import { HttpHandoff, InProcessHandoff, type ScenarioHandoff } from './spawn/handoff.js';
import { createSpawnModule, type SpawnModule } from './spawn/module.js';
import { createScenarioTokens } from './tokens/module.js';
import type { ScenarioTokens } from './tokens/scenario-tokens.js';

/**
 * Loads every template of `dir` into the catalog. A template that does not validate is not
 * offered (its track may then be refused as unknown), is logged with every problem, and is
 * reported by the readiness check `templates`; the others are served. One author's broken file
 * does not take every spawn down.
 */
async function loadOfferedTemplates(platform: Pick<Platform, 'log' | 'health'>, catalog: TemplateCatalog, dir: string): Promise<void> {
  const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  const invalid: Array<{ file: string; problems: string[] }> = [];
  for (const file of files) {
    try {
      catalog.add(await loadTemplate(path.join(dir, file)));
    } catch (err) {
      if (!(err instanceof TemplateInvalidError)) throw err;
      invalid.push({ file, problems: err.problems.map(formatProblem) });
      platform.log.error({ file: path.join(dir, file), problems: err.problems.map(formatProblem) }, 'lab template is invalid and is not offered');
    }
  }
  const offered = catalog.list().map((t) => `${t.id}@${t.version}`);
  platform.log.info({ templates: offered, dir }, 'lab templates loaded');
  platform.health.register({
    name: 'templates',
    check: async () => ({ offered: offered.length, tracks: [...new Set(catalog.list().map((t) => t.track))].sort(), invalid: invalid.map((i) => i.file) }),
  });
}

/** The installation's templates/ directory (src/forge -> ../../templates). */
export const DEFAULT_TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));

export interface ForgeModules {
  readonly catalog: TemplateCatalog;
  readonly spawn: SpawnModule | undefined;
  readonly orchestrator: OrchestratorModule | undefined;
  /** The scenario tokens of this process (spawn signs access tokens; the access page verifies them). */
  readonly tokens: ScenarioTokens | undefined;
  readonly plugins: readonly AppPlugin[];
}

/**
 * The Forge parts a role runs: spawn, orchestrator, or both. With both in one process, spawn
 * hands scenarios to the orchestrator in-process; a spawn-only process hands them over HTTP to
 * FG_ORCHESTRATOR_URL. The orchestrator is built, not started: the role starts it once the
 * scoring module that grades at TTL end exists. Templates are loaded once (read-only) from FG_TEMPLATES_DIR; one invalid
 * template stops the start, naming the problem.
 */
export async function createForgeModules(
  platform: Pick<Platform, 'config' | 'db' | 'redis' | 'log' | 'security' | 'metrics' | 'health' | 'onClose' | 'bus'>,
  deps: { audit: AuditTrail; policy: PolicyEngine; bindTenant: BindTenant },
  parts: { spawn: boolean; orchestrator: boolean; grading?: boolean },
): Promise<ForgeModules> {
  const catalog = new TemplateCatalog();
  const templatesDir = platform.config.forge.templatesDir ?? DEFAULT_TEMPLATES_DIR;
  if (!parts.spawn && !parts.orchestrator) {
    // A scoreboard of its own grades from the templates' successCriteria: it loads them too.
    if (parts.grading) await loadOfferedTemplates(platform, catalog, templatesDir);
    return { catalog, spawn: undefined, orchestrator: undefined, tokens: undefined, plugins: [] };
  }
  await loadOfferedTemplates(platform, catalog, templatesDir);
  const tokens = await createScenarioTokens(platform);
  const orchestrator = parts.orchestrator ? createOrchestratorModule(platform, { catalog, tokens, bindTenant: deps.bindTenant, audit: deps.audit }) : undefined;
  let spawn: SpawnModule | undefined;
  if (parts.spawn) {
    const { orchestratorUrl, orchestratorApiKey } = platform.config.forge;
    let handoff: ScenarioHandoff | undefined;
    if (orchestrator) handoff = new InProcessHandoff(orchestrator.admission);
    else if (orchestratorUrl && orchestratorApiKey) handoff = new HttpHandoff(orchestratorUrl, orchestratorApiKey);
    spawn = createSpawnModule(platform, { ...deps, catalog, tokens, scenarios: orchestrator?.store ?? new ScenarioStore(platform.db), handoff });
  }
  // GET /v1/access/{scenario_id} is served by the access page (src/forge/access, wired in roles.ts).
  return { catalog, spawn, orchestrator, tokens, plugins: [...(spawn ? [spawn.routes] : []), ...(orchestrator ? [orchestrator.routes] : [])] };
}
