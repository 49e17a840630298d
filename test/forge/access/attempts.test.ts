import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Scenario } from '../../../src/forge/orchestrator/store.js';
import { makeAccessRig, netplusTemplate, signIn, until, type AccessRig } from './helpers.js';

interface Status {
  state: string;
  attempt: number;
  grading: { status: string; score?: { total: number; attempt?: number } };
}

/**
 * Issue 23 point 11 from the learner's side: Reset on the lab page starts the next attempt once
 * the lab was graded, Submit then grades that attempt, and the learner's results follow it. The
 * adversary: a learner with one lab's session cannot reset or submit another learner's lab, a
 * session naming another learner is refused, and submitting again without a reset (no new work)
 * changes no score.
 */
describe('attempts on the lab page: reset, regrade, and whose lab it is', () => {
  let rig: AccessRig;
  let mine: Scenario;
  let theirs: Scenario;

  before(async () => {
    rig = await makeAccessRig({ grading: true });
    const template = await netplusTemplate();
    [mine, theirs] = await Promise.all([rig.createLab(template), rig.orchestrator.create(rig.tenantId, template, 'learner-2')]);
  });
  after(async () => rig?.close());

  const post = (id: string, action: string, cookie: string, body: unknown = {}) =>
    fetch(`${rig.baseUrl}/v1/access/${id}/${action}`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', origin: rig.origin },
      body: JSON.stringify(body),
    });
  const status = async (id: string, cookie: string): Promise<Status> => {
    const res = await fetch(`${rig.baseUrl}/v1/access/${id}/status`, { headers: { cookie } });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as Status;
  };
  const graded = (id: string, cookie: string, attempt: number) =>
    until(
      `attempt ${attempt} graded`,
      async () => {
        const s = await status(id, cookie);
        if (s.grading.status === 'failed') throw new Error(JSON.stringify(s.grading));
        return s.grading.status === 'scored' && s.grading.score?.attempt === attempt ? s : undefined;
      },
      60_000,
    );

  it('submit, submit again without new work, reset, submit: attempt 2 is graded on its own', async () => {
    const cookie = await signIn(rig, mine.scenario_id, await rig.issue(mine.scenario_id));
    for (const [device, gw] of [
      ['h1', '10.10.1.1'],
      ['h2', '10.10.2.1'],
    ] as const) {
      const res = await rig.runtime.exec(mine.scenario_id, device, ['/bin/sh', '-c', `ip route add default via ${gw}`], { asLearner: true });
      assert.equal(res.exitCode, 0, res.stderr);
    }
    assert.equal((await post(mine.scenario_id, 'submit', cookie)).status, 202);
    const first = await graded(mine.scenario_id, cookie, 1);
    assert.equal(first.grading.score?.total, 100);

    // Regrading without new work: the lab breaks its own solution, submits again; the score stands.
    await rig.runtime.exec(mine.scenario_id, 'h1', ['/bin/sh', '-c', 'ip route del default'], { asLearner: true });
    assert.equal((await post(mine.scenario_id, 'submit', cookie, { answers: { anything: 'x' } })).status, 202);
    const still = await graded(mine.scenario_id, cookie, 1);
    assert.equal(still.grading.score?.total, 100);
    assert.equal(still.attempt, 1);

    // Reset: a fresh lab on attempt 2, not yet submitted (attempt 1's score is not shown as this attempt's).
    const reset = await post(mine.scenario_id, 'reset', cookie);
    assert.equal(reset.status, 200, await reset.clone().text());
    assert.deepEqual(await reset.json(), { state: 'running', attempt: 2 });
    const fresh = await status(mine.scenario_id, cookie);
    assert.equal(fresh.attempt, 2);
    assert.equal(fresh.grading.status, 'not_submitted');
    const route = await rig.runtime.exec(mine.scenario_id, 'h1', ['/bin/sh', '-c', 'ip route show default'], { asLearner: true });
    assert.equal(route.stdout.trim(), '', 'the reset lab starts without the earlier solution');

    // Attempt 2, untouched: 0, and the downloads are attempt 2's.
    assert.equal((await post(mine.scenario_id, 'submit', cookie)).status, 202);
    const second = await graded(mine.scenario_id, cookie, 2);
    assert.equal(second.grading.score?.total, 0);
    const file = await fetch(`${rig.baseUrl}/v1/access/${mine.scenario_id}/results/score.json`, { headers: { cookie } });
    assert.equal(file.status, 200);
    assert.equal(((await file.json()) as { total: number }).total, 0);
  });

  it("a learner's session cannot reset or submit another learner's lab", async () => {
    const cookie = await signIn(rig, mine.scenario_id, await rig.issue(mine.scenario_id));
    const before = await rig.orchestrator.get(rig.tenantId, theirs.scenario_id);
    // My lab's session on their lab's routes: refused (the session is bound to its lab).
    for (const action of ['reset', 'submit']) {
      const res = await post(theirs.scenario_id, action, cookie);
      assert.ok(res.status === 401 || res.status === 403, `${action}: ${res.status}`);
    }
    // A session for their lab that names me (a link handed to the wrong learner): reset refused.
    const wrong = `fg_access=${await rig.session(theirs.scenario_id, { subject: 'learner-1' })}`;
    const res = await post(theirs.scenario_id, 'reset', wrong);
    assert.equal(res.status, 403, await res.clone().text());
    const after = await rig.orchestrator.get(rig.tenantId, theirs.scenario_id);
    assert.equal(after.state, before.state);
    assert.equal(after.attempt, 1);
    assert.equal(after.updated_at, before.updated_at, 'their lab was not touched');
    // And another origin cannot make my browser reset my own lab.
    const csrf = await fetch(`${rig.baseUrl}/v1/access/${mine.scenario_id}/reset`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', origin: 'http://evil.example' },
      body: '{}',
    });
    assert.equal(csrf.status, 403);
  });
});
