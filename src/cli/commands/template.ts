import { importTemplateFromContainerlab } from './template-import.js';
import { loadTemplate } from '../../forge/templates/load.js';
import { TemplateInvalidError, formatProblem } from '../../forge/templates/errors.js';
import { JSON_OPTION, type Command } from '../command.js';
import { UsageError } from '../errors.js';
import { printErr, printJson, printLine } from '../output.js';

export const templateCommand: Command = {
  name: 'template',
  options: {
    ...JSON_OPTION,
    output: { type: 'string', short: 'o' },
    id: { type: 'string' },
    track: { type: 'string' },
    tier: { type: 'string' },
    force: { type: 'boolean' },
  },
  help: `Usage: frostgate template validate <file> [--json]
       frostgate template import <lab.clab.yml> [-o <template.yaml>] [--id <id>] [--track netplus|ccna|cissp] [--tier basic|pro|enterprise] [--force] [--json]

Checks a lab template (YAML) against the template schema and the lab runtime's rules: shape,
CIDRs and addresses, references between networks, devices and criteria. Prints OK with a
summary, or every problem with its path in the document (and its line), e.g.
  topology.devices[1].interfaces[0].address: not a CIDR (a.b.c.d/n) (line 31)
Exit status 1 when the template is invalid. docs/templates.md describes the format.

import converts a containerlab topology (node kinds linux and bridge; links with per-interface
addresses from endpoint ipv4, exec \`ip addr add\` lines or a bound frr.conf; exec commands)
into a template skeleton that validates: networks, devices, routes, startup lines and FRR
configs, with TODO tasks and one placeholder criterion. Any other node kind is refused, naming
the node. The skeleton goes to stdout, or to -o (not overwritten without --force); conversion
notes (renamed interfaces, dropped images, generated addresses) go to stderr.

Options:
  --json        machine-readable output: {ok, template} or {ok: false, errors: [{path, message, line}]};
                for import {ok, id, version, output, warnings} or {ok: false, errors: [...]}
  -o, --output  import: write the skeleton to this file
  --id, --track, --tier   import: template id (default: the topology name), track (netplus), tier (basic)
  --force       import: overwrite --output
  -h, --help    this help

Examples:
  frostgate template validate templates/netplus-two-subnets.yaml
  frostgate template validate lab.yaml --json
  frostgate template import frr01.clab.yml -o templates/ccna-frr01.yaml --track ccna`,
  async run({ values, positionals }) {
    const [sub, file, extra] = positionals;
    if (sub === 'import') {
      if (!file) throw new UsageError('missing file: frostgate template import <lab.clab.yml>');
      if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
      return importTemplateFromContainerlab(file, values);
    }
    if (sub !== 'validate')
      throw new UsageError(`expected 'template validate <file>' or 'template import <lab.clab.yml>'${sub ? `, got 'template ${sub}'` : ''}`);
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
