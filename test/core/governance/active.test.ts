import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { KeyStore } from '../../../src/core/auth/store.js';
import { loadDefaultDoctrine } from '../../../src/core/engine/doctrine.js';
import { ActiveVersions, DEPLOYED_SUBJECT } from '../../../src/core/governance/active.js';
import { InProcessBus } from '../../../src/platform/bus/bus.js';
import { openDatabase, type Database } from '../../../src/platform/db/database.js';

describe('ActiveVersions: the deployed version each request decides with', () => {
  let db: Database;
  const bus = new InProcessBus();
  const tenant = `act-${randomBytes(3).toString('hex')}`;

  /** What a deploy leaves in the database: the version's content and the active pointer. */
  const deploy = async (version: string, mode: 'observe' | 'guarded' | 'active') => {
    const content = { ...structuredClone(loadDefaultDoctrine().source), version, mode };
    const changeId = `chg_${randomBytes(10).toString('hex')}`;
    await db.withTenant(tenant, async (tx) => {
      await tx
        .insertInto('governed_versions')
        .values({ tenant_id: tenant, kind: 'doctrine', version, content: JSON.stringify(content), change_id: changeId })
        .execute();
      await tx
        .insertInto('governed_active')
        .values({ tenant_id: tenant, kind: 'doctrine', version, change_id: changeId })
        .onConflict((oc) => oc.columns(['tenant_id', 'kind']).doUpdateSet({ version, change_id: changeId }))
        .execute();
    });
  };

  before(async () => {
    db = await openDatabase({ embeddedDir: 'memory', migrate: true });
    await new KeyStore(db).createTenant(tenant);
    await deploy('doc-1', 'guarded');
  });
  after(async () => {
    await bus.close();
    await db.close();
  });

  it('answers concurrent misses with one read and one compiled doctrine', async () => {
    const active = new ActiveVersions(db, bus);
    assert.equal(active.peek(tenant, 'doctrine'), undefined, 'nothing cached yet');
    const answers = await Promise.all(Array.from({ length: 8 }, () => active.get(tenant, 'doctrine')));
    assert.equal(answers[0]!.version, 'doc-1');
    assert.equal(answers[0]!.content.compiled.mode, 'guarded');
    for (const a of answers) assert.equal(a, answers[0], 'every caller gets the same loaded version');
    assert.equal(active.peek(tenant, 'doctrine'), answers[0]);
    active.close();
  });

  it('keeps the compiled content when the cache expires and the version is still deployed', async () => {
    const active = new ActiveVersions(db, bus, 0); // every get() reads again
    const first = await active.get(tenant, 'doctrine');
    const again = await active.get(tenant, 'doctrine');
    assert.notEqual(again, first, 'read again');
    assert.equal(again.content, first.content, 'not compiled again');
    active.close();
  });

  it('does not cache a read that a deploy message overtook, and reads the new version after it', async () => {
    // The database answers the read, then the answer is held up (a slow link) until the deploy
    // and its bus message have come through.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slowDb: Database = Object.create(db);
    slowDb.withTenant = async (t, fn) => {
      const result = await db.withTenant(t, fn);
      await held;
      return result;
    };
    const active = new ActiveVersions(slowDb, bus);
    const inFlight = active.get(tenant, 'doctrine');
    await deploy('doc-2', 'active');
    await bus.publish(DEPLOYED_SUBJECT, { tenant, kind: 'doctrine', version: 'doc-2' });
    release();
    assert.equal((await inFlight).version, 'doc-1', 'the overtaken read answers what it read');
    const now = await active.get(tenant, 'doctrine');
    assert.equal(now.version, 'doc-2', 'and was not cached');
    assert.equal(now.content.compiled.mode, 'active');
    active.close();
  });
});
