import { loadTemplate, TemplateInvalidError, formatProblem } from '../../forge/templates/index.js';
import { JSON_OPTION, type Command } from '../command.js';
import { UsageError, printErr, printJson, printLine } from '../output.js';

export const templateCommand: Command = {
  name: 'template',
  summary: 'Validate lab templates',
  options: { ...JSON_OPTION },
  help: `Usage: frostgate template validate <file> [--json]

Checks a lab template (YAML) against the template schema and the lab runtime's rules: shape,
CIDRs and addresses, references between networks, devices and criteria. Prints OK with a
summary, or every problem with its path in the document (and its line), e.g.
  topology.devices[1].interfaces[0].address: not a CIDR (a.b.c.d/n) (line 31)
Exit status 1 when the template is invalid. docs/templates.md describes the format.

Options:
  --json      machine-readable output: {ok, template} or {ok: false, errors: [{path, message, line}]}
  -h, --help  this help

Examples:
  frostgate template validate templates/netplus-two-subnets.yaml
  frostgate template validate lab.yaml --json`,
  async run({ values, positionals }) {
    const [sub, file, extra] = positionals;
    if (sub !== 'validate') throw new UsageError(`expected 'template validate <file>'${sub ? `, got 'template ${sub}'` : ''}`);
    if (!file) throw new UsageError('missing file: frostgate template validate <file>');
    if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
    try {
      const t = await loadTemplate(file);
      const summary = {
        id: t.id,
        version: t.version,
        version_source: t.versionSource,
        title: t.title,
        track: t.track,
        tier: t.tier,
        ttl_minutes: t.ttl_minutes,
        networks: t.topology.networks.map((n) => `${n.name} ${n.cidr}`),
        devices: t.topology.devices.map((d) => `${d.name} (${d.kind}) ${d.interfaces.map((i) => i.address).join(', ')}`),
        tasks: t.tasks.length,
        criteria: t.successCriteria.length,
        points: t.successCriteria.reduce((sum, c) => sum + c.points, 0),
        egress: t.egress?.profile ?? 'deny-all',
      };
      if (values.json) {
        printJson({ ok: true, template: summary });
      } else {
        printLine(`OK ${file}: ${t.id}@${t.version} (${t.track}/${t.tier}, ttl ${t.ttl_minutes} min)`);
        printLine(`  ${t.title}`);
        printLine(`  networks: ${summary.networks.join('; ')}`);
        printLine(`  devices:  ${summary.devices.join('; ')}`);
        printLine(`  ${summary.tasks} tasks, ${summary.criteria} criteria worth ${summary.points} points, egress ${summary.egress}`);
      }
      return 0;
    } catch (err) {
      if (!(err instanceof TemplateInvalidError)) throw err;
      if (values.json) {
        printJson({ ok: false, file, errors: err.problems });
      } else {
        printErr(`INVALID ${file}: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}`);
        for (const p of err.problems) printErr(`  ${formatProblem(p)}`);
      }
      return 1;
    }
  },
};
