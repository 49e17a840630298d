import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { verifyCheckpoint } from '../../src/ledger/checkpoint.js';
import { parseVerifierKey } from '../../src/ledger/note.js';
import { verifyLogFromDatabase } from '../../src/ledger/verify.js';
import { verifierOf } from '../../src/ledger/note.js';
import { startTestApp, type TestApp } from '../helpers/app.js';

describe('security audit trail', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => t?.close());

  it('key and tenant operations are ledger entries with who, what and when, committed with the change', async () => {
    const h = { 'x-api-key': t.adminKey };
    const created = (await t.app.inject({ method: 'POST', url: '/keys', headers: h, payload: { scopes: ['decisions:read'], name: 'sensor-1' } })).json();
    assert.equal((await t.app.inject({ method: 'DELETE', url: `/keys/${created.id}`, headers: h })).statusCode, 200);
    assert.equal((await t.app.inject({ method: 'POST', url: '/tenants', headers: h, payload: { id: 'audit-new' } })).statusCode, 201);

    const page = (await t.app.inject({ url: '/ledger/entries?log=audit&start=0&end=100', headers: h })).json();
    const records = page.entries.map((e: { record: Record<string, unknown> }) => e.record);
    const actions = records.map((r: { action: string; target: string }) => `${r.action} ${r.target}`);
    assert.ok(actions.includes(`key.create ${created.id}`), actions.join('\n'));
    assert.ok(actions.includes(`key.revoke ${created.id}`));
    assert.ok(actions[0].startsWith('key.create key_'), 'the bootstrap key is the first audited operation');
    const revoke = records.find((r: { action: string }) => r.action === 'key.revoke');
    assert.match(revoke.actor, /^key_/);
    assert.ok(Date.parse(revoke.at) > 0);
    // The new tenant's own audit log starts with its creation.
    const other = await t.ledger.ledger.entries('audit-new', 'audit', 0, 10);
    assert.equal((other[0]!.record as { action: string }).action, 'tenant.create');

    // The audit log is a verifiable log like the decisions log.
    const cp = (await t.app.inject({ url: '/ledger/checkpoint?log=audit&fresh=true', headers: h })).json();
    verifyCheckpoint(cp.note, cp.verifier_keys.map(parseVerifierKey));
    const check = await verifyLogFromDatabase(t.platform.db, t.tenantId, 'audit', [verifierOf(t.ledger.ledger.signingKey.signer)]);
    assert.equal(check.ok, true, JSON.stringify(check.problems));
    assert.equal(check.size, records.length);
  });

  it('a failed operation leaves no audit entry, and an audit entry cannot exist without its change', async () => {
    const h = { 'x-api-key': t.adminKey };
    const before = await t.ledger.ledger.size(t.tenantId, 'audit');
    assert.equal((await t.app.inject({ method: 'DELETE', url: '/keys/key_aaaaaaaaaaaa', headers: h })).statusCode, 404);
    assert.equal((await t.app.inject({ method: 'POST', url: '/tenants', headers: h, payload: { id: 'audit-new' } })).statusCode, 409);
    assert.equal(await t.ledger.ledger.size(t.tenantId, 'audit'), before);
  });
});
