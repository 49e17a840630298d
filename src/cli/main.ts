import { VERSION } from '../version.js';
import { parse, type Command } from './command.js';
import { CLI_ERRORS, UsageError, cliFailure, renderFailure, wantsJson } from './errors.js';
import { printErr, printLine } from './output.js';

export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  /** The command's module, imported only when it runs or shows its help. */
  load(): Promise<Command>;
}

/**
 * Commands load lazily: most of them pull in the whole platform (database, HTTP server, lab
 * runtime), which `frostgate --help`, `config` or the offline `verify-verdict` never touch.
 */
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'serve', summary: 'Run the platform (all roles by default)', load: async () => (await import('./commands/serve.js')).serveCommand },
  { name: 'migrate', summary: 'Apply pending database migrations', load: async () => (await import('./commands/migrate.js')).migrateCommand },
  {
    name: 'config',
    summary: 'Check the configuration, or print the table of every variable',
    load: async () => (await import('./commands/config.js')).configCommand,
  },
  { name: 'tenants', summary: 'Create and list tenants', load: async () => (await import('./commands/tenants.js')).tenantsCommand },
  { name: 'keys', summary: 'Create, list and revoke API keys', load: async () => (await import('./commands/keys.js')).keysCommand },
  {
    name: 'receipts',
    summary: 'Issue a fake_charge receipt: an entitlement for a learner (dev and staging)',
    load: async () => (await import('./commands/receipts.js')).receiptsCommand,
  },
  {
    name: 'verify',
    summary: "Verify a tenant's ledger from the database, or one decision offline",
    load: async () => (await import('./commands/verify.js')).verifyCommand,
  },
  {
    name: 'verify-verdict',
    summary: "Verify a Forge verdict offline against the scoreboard's published key set (--keys) or pinned key",
    load: async () => (await import('./commands/verify-verdict.js')).verifyVerdictCommand,
  },
  {
    name: 'template',
    summary: 'Validate lab templates, import containerlab topologies',
    load: async () => (await import('./commands/template.js')).templateCommand,
  },
  {
    name: 'lab',
    summary: 'Run a lab from a template locally (template authors; no server needed)',
    load: async () => (await import('./commands/lab.js')).labCommand,
  },
  {
    name: 'observe',
    summary: 'The observer hub: lab and service telemetry from NATS as JSON log lines',
    load: async () => (await import('./commands/observe.js')).observeCommand,
  },
];

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `FrostGate ${VERSION}: security decision engine (Core) and certification cyber-range (Forge)

Usage: frostgate <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Every command takes --help; commands that print data take --json.
Configuration comes from FG_* environment variables: frostgate config docs lists them all,
frostgate config check shows what the current environment means and what it would refuse.

Quick start:
  npm ci && npm start          start everything embedded on http://127.0.0.1:8080
  frostgate config check       what this environment would refuse in production`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const target = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    printLine(target ? (await target.load()).help : mainHelp());
    return 0;
  }
  if (name === '--version' || name === 'version') {
    printLine(VERSION);
    return 0;
  }
  const json = wantsJson(rest);
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) return reportError(new UsageError(`unknown command ${JSON.stringify(name)}`), json);
  let command: Command | undefined;
  try {
    command = await entry.load();
    const args = parse(command, rest);
    if (args.values.help) {
      printLine(command.help);
      return 0;
    }
    return await command.run(args);
  } catch (err) {
    return reportError(err, json, command);
  }
}

/** Every failure of every command leaves here: a stable code, on stderr, and a non-zero exit. */
function reportError(err: unknown, json: boolean, command?: Command): number {
  const failure = cliFailure(err, command?.name);
  printErr(renderFailure(failure, json, (err as Error | undefined)?.stack));
  return CLI_ERRORS[failure.code].exit;
}

const invokedDirectly = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      printErr(renderFailure(cliFailure(err), wantsJson(process.argv.slice(3)), (err as Error).stack));
      process.exit(1);
    },
  );
}
