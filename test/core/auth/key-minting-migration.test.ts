import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { generateKey } from '../../../src/core/auth/key-format.js';
import { loadMigrations, runMigrations, type MigrationSession } from '../../../src/platform/db/migrate.js';
import { startTestApp } from '../../helpers/app.js';
import { createThrowawayDatabase } from '../../helpers/postgres.js';
import { blockingRuleset } from '../governance/helpers.js';

/** The first migration of this change: keys written before it are the old shape. */
const MINTING_IDENTITY = 16;

describe('upgrading a database whose admin minted keys for invented owners (migration 0016)', () => {
  it('records who minted each key, and the invented owners still cannot approve for their minter', async () => {
    const db = await createThrowawayDatabase();
    try {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const [root, ghost, bob] = [generateKey(), generateKey(), generateKey()];
      try {
        const session: MigrationSession = {
          exec: async (text) => void (await client.query(text)),
          query: async <R>(text: string, params?: unknown[]) => (await client.query(text, params)).rows as R[],
        };
        await runMigrations(
          session,
          (await loadMigrations()).filter((m) => m.version < MINTING_IDENTITY),
        );
        // What the previous release wrote: the bootstrap admin, a ghost it minted over HTTP with an
        // owner it named, and a person the operator enrolled on the command line.
        await client.query(`INSERT INTO tenants (id, name) VALUES ('default', 'bootstrap tenant')`);
        await client.query(`INSERT INTO platform_state (key, value) VALUES ('bootstrap_admin', $1)`, [
          JSON.stringify({ key_id: root.id, tenant_id: 'default' }),
        ]);
        const insert = 'INSERT INTO api_keys (id, tenant_id, digest, name, scopes, created_by, owner) VALUES ($1, $2, $3, $4, $5, $6, $7)';
        await client.query(insert, [root.id, 'default', root.digest, 'bootstrap admin', ['admin'], 'bootstrap', 'bootstrap-admin']);
        await client.query(insert, [ghost.id, 'default', ghost.digest, 'ghost', ['admin'], root.id, 'ghost-1']);
        await client.query(insert, [bob.id, 'default', bob.digest, 'bob', ['admin'], 'cli', 'bob']);
      } finally {
        await client.end();
      }

      // The new release starts on that database and migrates it.
      const t = await startTestApp({ db: 'postgres', env: { FG_DB_URL: db.url } });
      try {
        const keys = new Map((await t.auth.store.listKeys('default')).map((k) => [k.id, k]));
        assert.deepEqual(
          [keys.get(root.id)!.created_by_identity, keys.get(ghost.id)!.created_by_identity, keys.get(bob.id)!.created_by_identity],
          ['operator', 'bootstrap-admin', 'operator'],
        );
        assert.equal(keys.get(ghost.id)!.owner, 'ghost-1', 'history is not rewritten');

        const post = (url: string, key: string, payload: object = {}) => t.app.inject({ method: 'POST', url, headers: { 'x-api-key': key }, payload });
        const change = await post('/governance/changes', root.key, {
          kind: 'ruleset',
          content: blockingRuleset('upgrade-1'),
          justification: 'block WordPress probes',
        });
        assert.equal(change.statusCode, 201, change.body);
        const id = change.json().id as string;
        const byGhost = await post(`/governance/changes/${id}/approve`, ghost.key);
        assert.equal(byGhost.statusCode, 403, byGhost.body);
        assert.equal(byGhost.json().code, 'two_person_rule');
        assert.equal(byGhost.json().reason, 'minted_by_author');
        assert.equal((await post(`/governance/changes/${id}/approve`, bob.key)).statusCode, 200, 'the enrolled person still counts');
      } finally {
        await t.close();
      }
    } finally {
      await db.drop();
    }
  });
});
