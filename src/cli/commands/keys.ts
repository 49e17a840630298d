import { CLI_OPERATOR, KeyStore } from '../../core/auth/store.js';
import { SCOPES, parseScopes } from '../../platform/auth/scopes.js';
import { parseDuration } from '../../platform/duration.js';
import { JSON_OPTION, type Command } from '../command.js';
import { UsageError } from '../errors.js';
import { printErr, printJson, printLine, table } from '../output.js';
import { cliAuditTrail, withDatabase } from './db-session.js';

export const keysCommand: Command = {
  name: 'keys',
  options: {
    tenant: { type: 'string' },
    scopes: { type: 'string' },
    'expires-in': { type: 'string' },
    name: { type: 'string' },
    owner: { type: 'string' },
    ...JSON_OPTION,
  },
  help: `Usage: frostgate keys create --tenant <id> --scopes <list> [--expires-in 90d] [--name <text>] [--owner <who>] [--json]
       frostgate keys list --tenant <id> [--json]
       frostgate keys revoke --tenant <id> <key-id> [--json]

A key reads fg_<id>_<secret>. It is printed once at creation; only its SHA-256 digest is stored,
so a lost key cannot be recovered: revoke it and create another. Revocation takes effect at once
on the node that revokes and within 5 seconds on every other node.

Scopes (comma-separated): ${SCOPES.join(', ')}
('admin' implies every other scope)

Options:
  --tenant <id>        the tenant the key belongs to (must exist: frostgate tenants create)
  --scopes <list>      e.g. defend:write,decisions:read
  --expires-in <dur>   e.g. 90d, 12h, 30m (default: no expiry)
  --name <text>        a label shown in listings
  --owner <who>        the person or system the key acts for (default: the key's own id).
                       This is how a second person gets an identity: the operator vouches
                       for it here. Keys a key mints over HTTP always belong to that key's
                       owner, and governance approvals need an identity other than the
                       author's and other than anyone who minted the approving key
  --json               machine-readable output
  -h, --help           this help

Examples:
  frostgate keys create --tenant acme --scopes defend:write,decisions:read --expires-in 90d --name sensor-1
  frostgate keys create --tenant acme --scopes governance:approve --owner bob@acme.example --name bob
  frostgate keys list --tenant acme
  frostgate keys revoke --tenant acme key_abcdefghjkmn`,
  async run({ values, positionals }) {
    const sub = positionals[0];
    const tenant = values.tenant as string | undefined;
    if (!['create', 'list', 'revoke'].includes(sub ?? ''))
      throw new UsageError(`expected 'keys create', 'keys list' or 'keys revoke'${sub ? `, got 'keys ${sub}'` : ''}`);
    if (!tenant) throw new UsageError(`--tenant <id> is required for 'keys ${sub}'`);
    // Parse everything before touching the database, so a typo costs nothing.
    const scopes = sub === 'create' ? parseScopes((values.scopes as string | undefined) ?? '') : [];
    const expiresIn = values['expires-in'] as string | undefined;
    const expiresAt = expiresIn ? new Date(Date.now() + parseDuration(expiresIn)) : undefined;
    const keyId = positionals[1];
    if (sub === 'revoke' && !keyId) throw new UsageError('missing key id: frostgate keys revoke --tenant <id> <key-id>');
    return withDatabase(async (db) => {
      const store = new KeyStore(db, await cliAuditTrail(db));
      if (sub === 'create') {
        const created = await store.createKey({
          tenantId: tenant,
          scopes,
          ...(values.name ? { name: values.name as string } : {}),
          ...(values.owner ? { owner: values.owner as string } : {}),
          ...(expiresAt ? { expiresAt } : {}),
          minter: CLI_OPERATOR,
        });
        if (values.json) printJson(created);
        else {
          printLine(created.key);
          printErr(
            `created ${created.id} for tenant ${created.tenant_id}, owner ${created.owner}, with scopes ${created.scopes.join(',')}${created.expires_at ? `, expires ${created.expires_at}` : ''}; the key above is shown once`,
          );
        }
        return 0;
      }
      if (sub === 'list') {
        const keys = await store.listKeys(tenant);
        if (values.json) printJson({ keys });
        else
          printLine(
            table(keys as unknown as Record<string, unknown>[], [
              'id',
              'name',
              'owner',
              'scopes',
              'created_by',
              'created_at',
              'expires_at',
              'revoked_at',
              'last_used_at',
            ]),
          );
        return 0;
      }
      const revoked = await store.revokeKey(tenant, keyId!, 'cli');
      if (values.json) printJson(revoked);
      else printLine(`revoked ${revoked.id} at ${revoked.revoked_at}`);
      return 0;
    });
  },
};
