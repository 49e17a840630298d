import { ConfigError } from '../config/config.js';
import { AppError } from '../platform/http/problem.js';
import { VERSION } from '../version.js';
import { parse, type Command } from './command.js';
import { configCommand } from './commands/config.js';
import { keysCommand } from './commands/keys.js';
import { labCommand } from './commands/lab.js';
import { migrateCommand } from './commands/migrate.js';
import { serveCommand } from './commands/serve.js';
import { templateCommand } from './commands/template.js';
import { tenantsCommand } from './commands/tenants.js';
import { verifyCommand } from './commands/verify.js';
import { verifyVerdictCommand } from './commands/verify-verdict.js';
import { CliError, UsageError, printErr, printLine } from './output.js';

export const COMMANDS: readonly Command[] = [serveCommand, migrateCommand, configCommand, tenantsCommand, keysCommand, verifyCommand, verifyVerdictCommand, templateCommand, labCommand];

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
    printLine(target ? target.help : mainHelp());
    return 0;
  }
  if (name === '--version' || name === 'version') {
    printLine(VERSION);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    printErr(`error: unknown command ${JSON.stringify(name)}\nfix: run 'frostgate --help' for the list of commands`);
    return 2;
  }
  try {
    const args = parse(command, rest);
    if (args.values.help) {
      printLine(command.help);
      return 0;
    }
    return await command.run(args);
  } catch (err) {
    return reportError(err, command);
  }
}

function reportError(err: unknown, command: Command): number {
  if (err instanceof UsageError) {
    printErr(`error: ${err.message}\nfix: see 'frostgate ${command.name} --help'`);
    return 2;
  }
  if (err instanceof ConfigError) {
    printErr(`error: ${err.message}\nfix: correct the variables above; 'frostgate config check' shows the full picture`);
    return 1;
  }
  if (err instanceof CliError) {
    printErr(`error: ${err.message}${err.fix ? `\nfix: ${err.fix}` : ''}`);
    return 1;
  }
  if (err instanceof AppError) {
    printErr(`error: ${err.detail}`);
    return 1;
  }
  const e = err as Error & { code?: string };
  // Typed domain errors carry a code and a message that already names the fix.
  if (typeof e?.code === 'string' && e.message) {
    printErr(`error: ${e.message}`);
    return 1;
  }
  printErr(`error: ${e?.stack ?? String(err)}`);
  return 1;
}

const invokedDirectly = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      printErr(`error: ${(err as Error).stack ?? String(err)}`);
      process.exit(1);
    },
  );
}
