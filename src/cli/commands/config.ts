import { isProductionProfile, maskedConfig, parseConfig } from '../../config/config.js';
import { VARIABLES } from '../../config/variables.js';
import { JSON_OPTION, type Command } from '../command.js';
import { UsageError } from '../errors.js';
import { printJson, printLine } from '../output.js';

export const configCommand: Command = {
  name: 'config',
  options: { ...JSON_OPTION },
  help: `Usage: frostgate config check [--json]
       frostgate config docs [--json]

check  Parses the environment exactly as 'serve' does and prints the resulting configuration
       with secrets masked, then every problem: values that cannot be parsed (refused in every
       profile) and unsafe settings (refused at startup in staging and prod). Exits 1 when the
       current profile would refuse to start, 0 otherwise.
docs   Prints every FG_* variable with its meaning, default and what production allows
       (the README's configuration table is this output).

Options:
  --json       machine-readable output
  -h, --help   this help`,
  async run({ values, positionals }) {
    const sub = positionals[0];
    if (sub === 'docs') {
      if (values.json) printJson(VARIABLES);
      else printLine(configTable());
      return 0;
    }
    if (sub !== 'check') throw new UsageError(`expected 'config check' or 'config docs'${sub ? `, got 'config ${sub}'` : ''}`);
    const report = parseConfig();
    const profile = report.config?.env ?? 'dev';
    const refused = [...report.errors, ...(isProductionProfile(profile) ? report.productionProblems : [])];
    if (values.json) {
      printJson({
        profile,
        would_start: refused.length === 0,
        config: report.config ? maskedConfig(report.config) : null,
        errors: report.errors,
        production_problems: report.productionProblems,
        warnings: report.warnings,
      });
    } else {
      printLine(`profile: ${profile}`);
      printLine(JSON.stringify(report.config ? maskedConfig(report.config) : null, null, 2));
      const section = (title: string, items: readonly string[]) => {
        printLine(`\n${title} (${items.length})`);
        for (const i of items) printLine(`  - ${i}`);
      };
      section('errors, refused in every profile', report.errors);
      section(`unsafe in production, ${isProductionProfile(profile) ? 'refused now' : 'refused when FG_ENV is staging or prod'}`, report.productionProblems);
      section('warnings', report.warnings);
      printLine(`\n${refused.length === 0 ? 'OK: this configuration would start' : `REFUSED: ${refused.length} problem(s) would stop startup`}`);
    }
    return refused.length === 0 ? 0 : 1;
  },
};

export function configTable(): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  const rows = VARIABLES.map(
    (v) =>
      `| \`${v.name}\` | ${esc(v.description)}${v.values ? ` One of: ${v.values.map((x) => `\`${x}\``).join(', ')}.` : ''} | ${v.default !== undefined ? `\`${v.default}\`` : 'unset'} | ${esc(v.production)} |`,
  );
  return ['| Variable | Meaning | Default | staging / prod |', '|---|---|---|---|', ...rows].join('\n');
}
