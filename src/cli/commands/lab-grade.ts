import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../config/config.js';
import { KeyStore } from '../../core/auth/store.js';
import { AuditTrail } from '../../ledger/audit.js';
import { LedgerService } from '../../ledger/service.js';
import { loadLedgerSigningKey } from '../../ledger/signing-key.js';
import { ScenarioStore } from '../../forge/orchestrator/store.js';
import { NetnsLabRuntime } from '../../forge/runtime/netns/driver.js';
import { ledgerAuditSource } from '../../forge/scoring/module.js';
import { storageFromConfig } from '../../platform/storage/from-config.js';
import { ScoringService, type CompleteResult } from '../../forge/scoring/service.js';
import { loadVerdictSigningKey } from '../../forge/scoring/verdict.js';
import { TemplateCatalog } from '../../forge/templates/catalog.js';
import { loadTemplate } from '../../forge/templates/load.js';
import { EmbeddedDatabaseLockedError, openDatabase } from '../../platform/db/database.js';
import { CliError } from '../errors.js';
import { printErr, printJson, printLine, table } from '../output.js';

const INSTALLED_TEMPLATES = fileURLToPath(new URL('../../../templates/', import.meta.url));

interface AnswersFile {
  readonly answers?: Record<string, unknown>;
  readonly hints_used?: Record<string, number[]>;
}

async function readAnswers(file: string | undefined): Promise<AnswersFile> {
  if (!file) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new CliError(
      'invalid_file',
      `cannot read answers from ${file}: ${(err as Error).message}`,
      'give a JSON file {"answers": {"<criterion id>": ...}, "hints_used": {"<criterion id>": [0]}}',
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CliError('invalid_file', `${file} is not a JSON object`);
  return parsed;
}

/**
 * `frostgate lab grade <scenario-id>`: grades a lab of the embedded store (FG_DATA_DIR, tenant
 * FG_BOOTSTRAP_TENANT) exactly as the scoreboard does on completion, writing the artefacts to
 * the configured storage. The template comes from --template or the installed templates/.
 */
export async function gradeLab(scenarioId: string, opts: { template?: string; answers?: string; json: boolean }): Promise<number> {
  const { config } = loadConfig();
  const answers = await readAnswers(opts.answers);
  const catalog = new TemplateCatalog();
  if (opts.template) catalog.add(await loadTemplate(opts.template));
  else if (existsSync(INSTALLED_TEMPLATES)) await catalog.loadDirectory(config.forge.templatesDir ?? INSTALLED_TEMPLATES);
  let db;
  try {
    db = await openDatabase({ embeddedDir: config.dataDir, appRole: config.db.appRole, migrate: true });
  } catch (err) {
    if (err instanceof EmbeddedDatabaseLockedError)
      throw new CliError('database_locked', err.message, 'stop the server using this FG_DATA_DIR, or grade through POST /internal/scenario/{id}/complete');
    throw err;
  }
  try {
    const tenantId = config.bootstrapTenant;
    if (!(await new KeyStore(db).tenantExists(tenantId)))
      throw new CliError('not_found', `tenant ${tenantId} has no labs here`, 'start one with frostgate lab up');
    const signingKey = await loadVerdictSigningKey({
      keyPath: config.keys.signingKeyPath,
      allowEphemeral: config.env === 'dev' || config.env === 'test',
      dataDir: config.env === 'dev' ? config.dataDir : undefined,
    });
    if (signingKey.ephemeral)
      printErr(
        'warning: SIGNING_KEY_PATH is not set; the verdict is signed by an ephemeral key that is ' +
          'never published, so only its integrity can be checked (verify-verdict --allow-unpinned)',
      );
    const ledgerKey = await loadLedgerSigningKey({ keyPath: config.keys.ledgerKeyPath, dataDir: config.env === 'dev' ? config.dataDir : undefined });
    const ledger = new LedgerService(db, ledgerKey, {
      origin: config.ledger.origin,
      checkpointIntervalS: config.ledger.checkpointIntervalS,
      checkpointMaxEntries: config.ledger.checkpointMaxEntries,
    });
    const scoring = new ScoringService({
      db,
      scenarios: new ScenarioStore(db),
      runtime: new NetnsLabRuntime({ stateDir: path.join(config.dataDir, 'labs'), egressDryRun: config.egress.dryRun }),
      templates: (id, version) => catalog.get(id, version),
      storage: storageFromConfig(config),
      signingKey,
      audit: new AuditTrail(ledger),
      auditSource: ledgerAuditSource(ledger),
      compression: existsSync('/usr/bin/zstd') ? 'zstd' : 'gzip',
    });
    const result = await scoring.complete(tenantId, scenarioId, {
      reason: 'operator',
      actor: 'frostgate lab grade',
      ...(answers.answers ? { answers: answers.answers } : {}),
      ...(answers.hints_used ? { hintsUsed: answers.hints_used } : {}),
    });
    printResult(result, opts.json);
    return 0;
  } finally {
    await db.close();
  }
}

function printResult(result: CompleteResult, json: boolean): void {
  const { score } = result;
  if (json) {
    printJson({
      scenario_id: score.scenario_id,
      graded: result.graded,
      total: score.total,
      max: score.max,
      percent: score.percent,
      key_id: result.keyId,
      artefacts: result.artefacts,
      criteria: score.criteria,
    });
    return;
  }
  printLine(
    `${score.scenario_id} ${result.graded ? 'graded' : 'was already graded'}: ` +
      `${score.total}/${score.max} (${score.percent}%) on ${score.template.id}@${score.template.version}`,
  );
  printLine(
    table(
      score.criteria.map((c) => ({ ...c, points: `${c.awarded}/${c.points}` })),
      ['id', 'status', 'points', 'detail'],
    ),
  );
  printLine('artefacts:');
  for (const [name, where] of Object.entries(result.artefacts)) printLine(`  ${name.padEnd(16)} ${where}`);
}
