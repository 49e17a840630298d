import path from 'node:path';
import { loadConfig } from '../../config/config.js';
import type { Orchestrator } from '../../forge/orchestrator/service.js';
import type { Scenario } from '../../forge/orchestrator/store.js';
import { NetnsLabRuntime } from '../../forge/runtime/netns/driver.js';
import { describeLimits } from '../../forge/runtime/spec.js';
import { JSON_OPTION, type Command } from '../command.js';
import { CliError, UsageError } from '../errors.js';
import { printErr, printJson, printLine, table } from '../output.js';

/** Labs that no longer exist on the machine: `lab ls` shows them only with --all. */
const GONE_STATES: ReadonlySet<string> = new Set(['destroyed', 'expired', 'failed']);

export const labCommand: Command = {
  name: 'lab',
  options: { subject: { type: 'string' }, template: { type: 'string' }, answers: { type: 'string' }, all: { type: 'boolean' }, ...JSON_OPTION },
  help: `Usage: frostgate lab up <template.yaml> [--subject <who>] [--json]
       frostgate lab ls [--all] [--json]
       frostgate lab exec <scenario-id> <device> -- <command> [args...]
       frostgate lab grade <scenario-id> [--template <template.yaml>] [--answers <answers.json>] [--json]
       frostgate lab down <scenario-id>

For template authors: starts a template's lab on this machine in Linux namespaces, without a
running server. Scenarios are kept in the embedded database under FG_DATA_DIR (tenant
FG_BOOTSTRAP_TENANT, created if missing) and lab state under FG_DATA_DIR/labs. Needs root.
Progress goes to stderr; up prints the scenario id, devices and addresses. Labs past their
TTL are removed by the next lab up or lab ls. exec runs the command as the learner would
(root inside the lab) and exits with the command's status. grade runs the template's
successCriteria against the lab like the scoreboard does, prints the score and where
score.json, the evidence archive, verdict.sig, verdict.pub and audit.jsonl were written
(FG_STORAGE_DIR, or the S3 bucket); the template comes from --template or the installed
templates/, answers and revealed hints for answer/quiz checks from --answers.

Options:
  --subject <who>  who the lab is for (default: author)
  --template FILE  grade: the template the lab was started from (default: installed templates/)
  --answers FILE   grade: {"answers": {"<criterion>": ...}, "hints_used": {"<criterion>": [0]}}
  --all            ls: also labs that are gone (destroyed, expired, failed)
  --json           machine-readable output (up: scenario_id, devices, addresses; ls: scenarios)
  -h, --help       this help

Examples:
  frostgate lab up templates/netplus-two-subnets.yaml
  frostgate lab exec scn_0123abcd h1 -- ip -br addr
  frostgate lab down scn_0123abcd`,
  async run({ values, positionals }) {
    const [sub, ...rest] = positionals;
    const json = values.json === true;
    switch (sub) {
      case 'up': {
        const [file, extra] = rest;
        if (!file) throw new UsageError('missing template file: frostgate lab up <template.yaml>');
        if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
        // Templates (YAML, TypeBox schemas) load only here: exec and ls never parse one.
        const [{ loadTemplate }, { templateLimits }] = await Promise.all([import('../../forge/templates/load.js'), import('../../forge/templates/to-spec.js')]);
        const template = await loadTemplate(file);
        return withLabSession(async ({ orchestrator, tenantId }) => {
          await orchestrator.sweepExpired();
          const { removed } = await orchestrator.reconcile();
          if (removed.length > 0) printErr(`removed ${removed.length} stale lab(s): ${removed.join(', ')}`);
          const s = await orchestrator.create(tenantId, template, (values.subject as string | undefined) ?? 'author');
          const limits = templateLimits(template);
          if (json)
            printJson({
              ...scenarioJson(s),
              limits: { cpu_shares: limits.cpuShares, memory_bytes: limits.memoryBytes, pids: limits.pids, disk_bytes_per_device: limits.diskBytes },
            });
          else {
            printLine(`${s.scenario_id} running (${template.id}@${template.version}), expires ${s.expires_at}`);
            printLine(`limits: ${describeLimits(limits)}`);
            printLine(table(deviceRows(s), ['device', 'kind', 'interface', 'network', 'address']));
          }
          return 0;
        });
      }
      case 'ls': {
        if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
        return withLabSession(async ({ orchestrator, tenantId }) => {
          await orchestrator.sweepExpired();
          const all = await orchestrator.list(tenantId);
          const scenarios = values.all === true ? all : all.filter((s) => !GONE_STATES.has(s.state));
          if (json) printJson({ scenarios: scenarios.map(scenarioJson) });
          else
            printLine(
              table(
                scenarios.map((s) => ({ ...s, template: `${s.template_id}@${s.template_version}`, devices: s.devices.map((d) => d.name) })),
                ['scenario_id', 'state', 'template', 'devices', 'expires_at', 'error'],
              ),
            );
          return 0;
        });
      }
      case 'exec': {
        const [scenarioId, device, ...argv] = rest;
        if (!scenarioId || !device || argv.length === 0) throw new UsageError('expected: frostgate lab exec <scenario-id> <device> -- <command> [args...]');
        // No database: the lab's own record under FG_DATA_DIR/labs says whether it runs and
        // what it has, and this needs root on the machine that runs it anyway.
        const res = await localRuntime().exec(scenarioId, device, argv, { asLearner: true, timeoutMs: 300_000 });
        process.stdout.write(res.stdout);
        process.stderr.write(res.stderr);
        return res.exitCode;
      }
      case 'grade': {
        const [scenarioId, extra] = rest;
        if (!scenarioId) throw new UsageError('missing scenario id: frostgate lab grade <scenario-id>');
        if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
        const { gradeLab } = await import('./lab-grade.js');
        return gradeLab(scenarioId, {
          json,
          ...(typeof values.template === 'string' ? { template: values.template } : {}),
          ...(typeof values.answers === 'string' ? { answers: values.answers } : {}),
        });
      }
      case 'down': {
        const [scenarioId, extra] = rest;
        if (!scenarioId) throw new UsageError('missing scenario id: frostgate lab down <scenario-id>');
        if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
        return withLabSession(async ({ orchestrator, tenantId }) => {
          const s = await orchestrator.destroy(tenantId, scenarioId);
          if (json) printJson(scenarioJson(s));
          else printLine(`${s.scenario_id} destroyed`);
          return 0;
        });
      }
      default:
        throw new UsageError(`expected 'lab up', 'lab ls', 'lab exec', 'lab grade' or 'lab down'${sub ? `, got 'lab ${sub}'` : ''}`);
    }
  },
};

interface LabSession {
  readonly orchestrator: Orchestrator;
  readonly tenantId: string;
}

/** The embedded store under FG_DATA_DIR, the bootstrap tenant and a netns runtime on FG_DATA_DIR/labs. */
function localRuntime(): NetnsLabRuntime {
  const { config } = loadConfig();
  return new NetnsLabRuntime({ stateDir: path.join(config.dataDir, 'labs'), egressDryRun: config.egress.dryRun });
}

/** The database and orchestrator, loaded only by the subcommands that need them (exec does not). */
async function withLabSession<T>(fn: (session: LabSession) => Promise<T>): Promise<T> {
  const { config } = loadConfig();
  const [{ KeyStore }, { Orchestrator }, { ScenarioStore }, { TemplateCatalog }, { EmbeddedDatabaseLockedError, openDatabase }] = await Promise.all([
    import('../../core/auth/store.js'),
    import('../../forge/orchestrator/service.js'),
    import('../../forge/orchestrator/store.js'),
    import('../../forge/templates/catalog.js'),
    import('../../platform/db/database.js'),
  ]);
  let db;
  try {
    db = await openDatabase({ embeddedDir: config.dataDir, appRole: config.db.appRole, migrate: true });
  } catch (err) {
    if (err instanceof EmbeddedDatabaseLockedError)
      throw new CliError('database_locked', err.message, 'stop the server using this FG_DATA_DIR, or point FG_DATA_DIR at another directory');
    throw err;
  }
  try {
    const tenantId = config.bootstrapTenant;
    const tenants = new KeyStore(db);
    if (!(await tenants.tenantExists(tenantId))) await tenants.createTenant(tenantId, 'created by frostgate lab');
    const runtime = localRuntime();
    const orchestrator = new Orchestrator({
      store: new ScenarioStore(db),
      runtime,
      catalog: new TemplateCatalog(),
      onProgress: (_id, message) => printErr(message),
    });
    return await fn({ orchestrator, tenantId });
  } finally {
    await db.close();
  }
}

function scenarioJson(s: Scenario) {
  return {
    scenario_id: s.scenario_id,
    state: s.state,
    template_id: s.template_id,
    template_version: s.template_version,
    track: s.track,
    subject: s.subject,
    expires_at: s.expires_at,
    created_at: s.created_at,
    error: s.error,
    devices: s.devices.map((d) => ({ name: d.name, kind: d.kind, addresses: d.addresses })),
  };
}

function deviceRows(s: Scenario): Array<Record<string, unknown>> {
  return s.devices.flatMap((d): Array<Record<string, unknown>> =>
    d.addresses.length === 0
      ? [{ device: d.name, kind: d.kind }]
      : d.addresses.map((a, i) => ({
          device: i === 0 ? d.name : '',
          kind: i === 0 ? d.kind : '',
          interface: a.interface,
          network: a.network,
          address: a.address,
        })),
  );
}
