import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newScenarioId } from '../../../src/forge/orchestrator/service.js';
import type { ScenarioState } from '../../../src/forge/orchestrator/states.js';
import { makeRig } from './helpers.js';

test('failLost fails the active scenarios of a lost lab host; scored and finished ones keep their state', async (t) => {
  const rig = await makeRig(t);
  const path: Record<ScenarioState, ScenarioState[]> = {
    pending: [],
    provisioning: ['provisioning'],
    running: ['provisioning', 'running'],
    grading: ['provisioning', 'running', 'grading'],
    scored: ['provisioning', 'running', 'grading', 'scored'],
    destroyed: ['destroyed'],
    failed: ['failed'],
    expired: ['expired'],
  };
  const ids = new Map<ScenarioState, string>();
  for (const [state, steps] of Object.entries(path) as Array<[ScenarioState, ScenarioState[]]>) {
    const id = newScenarioId();
    await rig.store.insert(rig.tenantId, {
      scenario_id: id,
      template_id: 'tiny-lab',
      template_version: 'v',
      track: 'netplus',
      subject: 's',
      expires_at: new Date(rig.clock.now.getTime() + 60_000),
    });
    for (const step of steps) await rig.store.transition(rig.tenantId, id, step);
    ids.set(state, id);
  }
  const failed = await rig.orchestrator.failLost([...ids.values(), 'scn_unknown'], 'worker w1 stopped heartbeating; the lab was lost');
  assert.deepEqual(failed.sort(), ['pending', 'provisioning', 'running', 'grading'].map((s) => ids.get(s as ScenarioState)!).sort());
  for (const [state, id] of ids) {
    const now = await rig.store.get(rig.tenantId, id);
    const expected = ['pending', 'provisioning', 'running', 'grading'].includes(state) ? 'failed' : state;
    assert.equal(now.state, expected, `${state} -> ${now.state}`);
    if (expected === 'failed' && state !== 'failed') assert.equal(now.error, 'worker w1 stopped heartbeating; the lab was lost');
  }
});
