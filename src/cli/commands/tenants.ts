import { KeyStore } from '../../core/auth/store.js';
import { JSON_OPTION, type Command } from '../command.js';
import { UsageError } from '../errors.js';
import { printJson, printLine, table } from '../output.js';
import { cliAuditTrail, withDatabase } from './db-session.js';

export const tenantsCommand: Command = {
  name: 'tenants',
  options: { name: { type: 'string' }, ...JSON_OPTION },
  help: `Usage: frostgate tenants create <id> [--name <text>] [--json]
       frostgate tenants list [--json]

Tenant ids are 2-63 characters of lowercase letters, digits and dashes, starting with a letter
or digit; 'unknown' is refused. Every key, decision and lab belongs to exactly one tenant.

Options:
  --name <text>  a human name for the tenant
  --json         machine-readable output
  -h, --help     this help

Examples:
  frostgate tenants create acme --name "Acme Corp"
  frostgate tenants list --json`,
  async run({ values, positionals }) {
    const [sub, id] = positionals;
    return withDatabase(async (db) => {
      const store = new KeyStore(db, await cliAuditTrail(db));
      if (sub === 'create') {
        if (!id) throw new UsageError('missing tenant id: frostgate tenants create <id>');
        const tenant = await store.createTenant(id, (values.name as string | undefined) ?? '', 'cli');
        if (values.json) printJson(tenant);
        else printLine(`created tenant ${tenant.id}`);
        return 0;
      }
      if (sub === 'list') {
        const tenants = await store.listTenants();
        if (values.json) printJson({ tenants });
        else printLine(table(tenants as unknown as Record<string, unknown>[], ['id', 'name', 'created_at', 'disabled_at']));
        return 0;
      }
      throw new UsageError(`expected 'tenants create' or 'tenants list'${sub ? `, got 'tenants ${sub}'` : ''}`);
    });
  },
};
