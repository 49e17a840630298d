import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LabNames, instanceTag, parseNsName, scenarioHex } from '../../../src/forge/runtime/netns/naming.js';

// Kernel objects carry only their names; a runtime recognises its own by the instance tag, and
// its reconcile removes whatever carries that tag. Two runtimes sharing a tag remove each
// other's labs, so tags of distinct state dirs must not collide in practice.
describe('lab object naming', () => {
  it('gives 10,000 distinct state dirs 10,000 distinct instance tags', () => {
    const tags = new Set<string>();
    for (let i = 0; i < 10_000; i++) tags.add(instanceTag(`/tmp/fg-labs-${i.toString(36).padStart(6, '0')}`));
    assert.equal(tags.size, 10_000);
  });

  it('parses only names of its own tag, whatever the other tag shares with it', () => {
    const mine = instanceTag('/var/lib/frostgate/labs');
    const names = new LabNames(mine, scenarioHex('scn_abc'));
    assert.deepEqual(parseNsName(mine, names.deviceNs('r1')), { hex: scenarioHex('scn_abc'), device: 'r1' });
    assert.deepEqual(parseNsName(mine, names.switchNs()), { hex: scenarioHex('scn_abc'), device: '_sw' });
    // Another instance whose tag starts like ours (e.g. a 16-bit tag of the same hash).
    const other = new LabNames(mine.slice(0, 4), scenarioHex('scn_abc'));
    assert.equal(parseNsName(mine, other.deviceNs('r1')), undefined);
    assert.equal(parseNsName(mine.slice(0, 4), names.deviceNs('r1')), undefined);
  });

  it('keeps FRR socket paths within the UNIX socket limit for the longest device name', () => {
    const names = new LabNames(instanceTag('/x'), scenarioHex('scn_x'));
    const socket = `${names.frrDir('d'.repeat(24))}/zserv.api`;
    assert.ok(socket.length < 108, `${socket} is ${socket.length} bytes`);
  });
});
