import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../../helpers/app.js';

/** Five SSH failures in a few seconds: a 3600 s block_ip, running from the last event's time. */
const bruteForce = (ip: string, lastAtMs: number) =>
  [0, 1, 2, 3, 4].map((i) => ({
    source: 'sshd',
    event_type: 'auth.failure',
    occurred_at: new Date(lastAtMs - (4 - i) * 1000).toISOString(),
    payload: { service: 'ssh', src_ip: ip, username: `u${i}` },
  }));

type Stream = { new: Array<{ value: string; id: number }>; deleted: Array<{ value: string; id: number; duration: string }> };
const values = (list: Array<{ value: string }>) => list.map((d) => d.value).sort();

/**
 * Early removal of a block (issue 25): DELETE /decisions/active/:ip with decisions:write, audited,
 * and seen by bouncers, in their lookups and in the `deleted` list of their stream, on the process
 * that removed it and on another one sharing the database.
 */
describe('early removal of a block', () => {
  let a: TestApp;
  let b: TestApp;
  let sensor: string;
  let operator: string;
  let reader: string;
  let bouncer: string;
  before(async () => {
    a = await startTestApp({ db: 'postgres' });
    // A second process on the same database: bouncers may pull from either.
    b = await startTestApp({ db: 'postgres', env: { FG_DB_URL: a.platform.config.db.url! } });
    sensor = (await a.auth.store.createKey({ tenantId: a.tenantId, scopes: ['defend:write'] })).key;
    operator = (await a.auth.store.createKey({ tenantId: a.tenantId, scopes: ['decisions:write', 'decisions:read'], owner: 'ops@example.test' })).key;
    reader = (await a.auth.store.createKey({ tenantId: a.tenantId, scopes: ['decisions:read', 'defend:write', 'bouncer:read'] })).key;
    bouncer = (await a.auth.store.createKey({ tenantId: a.tenantId, scopes: ['bouncer:read'] })).key;
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  const defend = async (ip: string, lastAtMs = Date.now() - 1000) => {
    for (const e of bruteForce(ip, lastAtMs))
      assert.equal((await a.app.inject({ method: 'POST', url: '/defend', headers: { 'x-api-key': sensor }, payload: e })).statusCode, 200);
  };
  const remove = (ip: string, key = operator, payload: object = { reason: 'false positive: our own scanner' }, app = a) =>
    app.app.inject({ method: 'DELETE', url: `/decisions/active/${encodeURIComponent(ip)}`, headers: { 'x-api-key': key }, payload });
  const stream = async (app: TestApp, startup = false): Promise<Stream> =>
    (await app.app.inject({ url: `/v1/decisions/stream${startup ? '?startup=true' : ''}`, headers: { 'x-api-key': bouncer } })).json();
  const lookup = async (app: TestApp, ip: string) => (await app.app.inject({ url: `/v1/decisions?ip=${ip}`, headers: { 'x-api-key': bouncer } })).body;
  const active = async (ip?: string) =>
    (await a.app.inject({ url: `/decisions/active${ip ? `?ip=${ip}` : ''}`, headers: { 'x-api-key': operator } })).json<{
      decisions: Array<{ entity: string; decision_id: string }>;
    }>().decisions;

  it('needs decisions:write and a reason; a key of another scope is refused and nothing is lifted', async () => {
    await defend('100.64.60.1');
    const refused = await remove('100.64.60.1', reader);
    assert.equal(refused.statusCode, 403, refused.body);
    assert.equal((await remove('100.64.60.1', operator, {})).statusCode, 400, 'a reason is required');
    assert.equal((await remove('100.64.60.1', operator, { reason: '' })).statusCode, 400);
    assert.equal((await remove('not-an-ip')).statusCode, 400);
    assert.notEqual(await lookup(a, '100.64.60.1'), 'null', 'still blocked');
  });

  it('lifts the block: lookups on both processes stop answering it, the active list drops it, the audit log names who and why', async () => {
    // Both processes hold the block in their sets before the removal (the stale-set case).
    assert.notEqual(await lookup(a, '100.64.60.1'), 'null');
    assert.notEqual(await lookup(b, '100.64.60.1'), 'null');
    const decided = (await active('100.64.60.1')).map((d) => d.decision_id);
    assert.ok(decided.length >= 1);

    const res = await remove('100.64.60.1');
    assert.equal(res.statusCode, 200, res.body);
    const removal = res.json<{ ip: string; removed_by: string; reason: string; decision_ids: string[]; audit_index: number }>();
    assert.equal(removal.ip, '100.64.60.1');
    assert.deepEqual([...removal.decision_ids].sort(), [...decided].sort());
    assert.equal(removal.reason, 'false positive: our own scanner');

    assert.equal(await lookup(a, '100.64.60.1'), 'null', 'the removing process answers at once');
    assert.deepEqual(await active('100.64.60.1'), []);
    // The other process learns within its set's staleness bound (a few seconds).
    const deadline = Date.now() + 10_000;
    while ((await lookup(b, '100.64.60.1')) !== 'null') {
      assert.ok(Date.now() < deadline, 'the second process still answers the lifted block');
      await new Promise((r) => setTimeout(r, 200)); // polling another process's cache refresh
    }

    const audit = (await a.ledger.ledger.entries(a.tenantId, 'audit', removal.audit_index, removal.audit_index + 1))[0]!.record as Record<string, unknown>;
    assert.equal(audit.action, 'decision.block_remove');
    assert.equal(audit.target, 'ip:100.64.60.1');
    assert.equal(audit.reason, 'false positive: our own scanner');
    assert.match(String(audit.actor), /^key_/);
    assert.deepEqual(((audit.details as { decision_ids: string[] }).decision_ids ?? []).sort(), [...decided].sort());

    // Lifted once: a second removal finds nothing in force.
    assert.equal((await remove('100.64.60.1')).statusCode, 404);
  });

  it("bouncers see the lifted IP in their stream's deleted list, on either process, and a new decision blocks it again", async () => {
    await defend('100.64.60.2');
    await defend('100.64.60.3');
    // The bouncer's startup, from process B once it holds both (its set lags by up to its TTL);
    // then a removal made on process A.
    const deadline0 = Date.now() + 10_000;
    while ((await lookup(b, '100.64.60.2')) === 'null' || (await lookup(b, '100.64.60.3')) === 'null') {
      assert.ok(Date.now() < deadline0, 'process B never saw the blocks');
      await new Promise((r) => setTimeout(r, 200)); // polling another process's cache refresh
    }
    const start = await stream(b, true);
    assert.ok(values(start.new).includes('100.64.60.2') && values(start.new).includes('100.64.60.3'));
    assert.ok(!values(start.new).includes('100.64.60.1'), 'the block lifted before is not in a startup');
    assert.equal((await remove('100.64.60.2')).statusCode, 200);

    // Pulls from B (which learns within seconds) and A: the IP is listed deleted until seen.
    let seen: Stream | undefined;
    const deadline = Date.now() + 10_000;
    while (!seen) {
      const pull = await stream(b);
      if (values(pull.deleted).includes('100.64.60.2')) seen = pull;
      else {
        assert.ok(Date.now() < deadline, 'process B never reported the removal');
        await new Promise((r) => setTimeout(r, 200)); // polling another process's cache refresh
      }
    }
    const gone = seen.deleted.find((d) => d.value === '100.64.60.2')!;
    assert.equal(gone.id, start.new.find((d) => d.value === '100.64.60.2')!.id, 'the decision the bouncer holds is the one deleted');
    assert.ok(!values(seen.new).includes('100.64.60.2'));
    assert.ok(!values(seen.deleted).includes('100.64.60.3'), 'the other block stays');
    const fromA = await stream(a);
    assert.ok(!values(fromA.new).includes('100.64.60.2'));
    const startupAgain = await stream(a, true);
    assert.ok(!values(startupAgain.new).includes('100.64.60.2') && values(startupAgain.new).includes('100.64.60.3'));

    // New evidence after the removal blocks the IP again, and the bouncer is told.
    await defend('100.64.60.2', Date.now() - 500);
    assert.notEqual(await lookup(a, '100.64.60.2'), 'null');
    const again = await stream(a);
    assert.ok(values(again.new).includes('100.64.60.2'), JSON.stringify(again));
    assert.ok(!values(again.deleted).includes('100.64.60.2'));
    assert.equal((await active('100.64.60.2')).length >= 1, true);
  });

  it('a tenant cannot remove another tenant’s block', async () => {
    await a.auth.store.createTenant('other-rm', 'other');
    const other = (await a.auth.store.createKey({ tenantId: 'other-rm', scopes: ['decisions:write'] })).key;
    await defend('100.64.60.4');
    const res = await remove('100.64.60.4', other);
    assert.equal(res.statusCode, 404, res.body);
    const claimed = await a.app.inject({
      method: 'DELETE',
      url: `/decisions/active/100.64.60.4?tenant_id=${a.tenantId}`,
      headers: { 'x-api-key': other },
      payload: { reason: 'probing' },
    });
    assert.equal(claimed.statusCode, 403, claimed.body);
    assert.notEqual(await lookup(a, '100.64.60.4'), 'null');
  });
});
