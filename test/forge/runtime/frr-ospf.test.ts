import assert from 'node:assert/strict';
import { test } from 'node:test';
import { leftovers, makeRuntime, subnet, uniqueId, waitFor } from './helpers.js';
import { fullNeighbours, ospfLab } from './ospf.js';

test('3-router OSPF lab converges and routes end to end', async (t) => {
  const rt = makeRuntime(t);
  const id = uniqueId('ospf');
  const n12 = subnet();
  let n23 = subnet();
  while (n23(0) === n12(0)) n23 = subnet();
  await rt.create(ospfLab(id, n12, n23));

  // Polled with a deadline: OSPF needs a few hello rounds.
  await waitFor('r2 to have two Full neighbours', 20_000, async () => {
    const res = await rt.exec(id, 'r2', ['vtysh', '-c', 'show ip ospf neighbor json'], {});
    return fullNeighbours(res.stdout) >= 2 ? true : undefined;
  });
  const route = await waitFor('r1 to learn n23 over OSPF', 20_000, async () => {
    const res = await rt.exec(id, 'r1', ['ip', '-4', 'route', 'show', n23(0)], {});
    return /proto (ospf|188)/.test(res.stdout) ? res.stdout : undefined;
  });
  assert.match(route, new RegExp(`via ${n12(2).replace(/\./g, '\\.')}`));
  const ping = await waitFor('r1 to ping r3', 10_000, async () => {
    const res = await rt.exec(id, 'r1', ['ping', '-c', '1', '-W', '1', n23(3)], { asLearner: true });
    return res.exitCode === 0 ? res : undefined;
  });
  assert.match(ping.stdout, /1 received/);

  // Each router has its own FRR: r1's vtysh shows r1's hostname, not another device's.
  const r1 = await rt.exec(id, 'r1', ['vtysh', '-c', 'show running-config'], {});
  assert.match(r1.stdout, /hostname r1/);
  assert.doesNotMatch(r1.stdout, /hostname r[23]/);
  // The learner configures the router through vtysh inside the device, like on real gear.
  const learner = await rt.exec(id, 'r3', ['vtysh', '-c', 'show ip ospf neighbor'], { asLearner: true });
  assert.equal(learner.exitCode, 0, learner.stderr);
  assert.match(learner.stdout, /2\.2\.2\.2/);

  await rt.destroy(id);
  assert.deepEqual(leftovers(rt, id), []);
});

// That create() returns earlier in this mode is a timing property: bench/labs.ts shows it.
test('routersInBackground: exec on a router straight after create() waits for its FRR daemons', async (t) => {
  const id = uniqueId('bgfrr');
  const n12 = subnet();
  let n23 = subnet();
  while (n23(0) === n12(0)) n23 = subnet();
  const rt2 = makeRuntime(t, { routersInBackground: true });
  await rt2.create(ospfLab(id, n12, n23));
  // Straight after create(): the learner's vtysh answers, because exec waited for zebra and ospfd.
  const learner = await rt2.exec(id, 'r1', ['vtysh', '-c', 'show running-config'], { asLearner: true });
  assert.equal(learner.exitCode, 0, learner.stdout + learner.stderr);
  assert.match(learner.stdout, /router ospf/);
  await rt2.destroy(id);
  assert.deepEqual(leftovers(rt2, id), []);
});
