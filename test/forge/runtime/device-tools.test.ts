import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import type { LabSpec } from '../../../src/forge/runtime/types.js';
import type { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { makeRuntime, subnet, uniqueId } from './helpers.js';

async function learner(rt: NetnsLabRuntime, id: string, device: string, script: string): Promise<{ exitCode: number; out: string }> {
  const res = await rt.exec(id, device, ['/bin/bash', '--login', '-c', script], { asLearner: true, timeoutMs: 30_000 });
  return { exitCode: res.exitCode, out: res.stdout + res.stderr };
}

/**
 * Issue 23 point 9: the cissp/ccna tasks ask for telnet and a DHCP client. Both come from the
 * host's busybox through links in the device's own tools dir on PATH (a login shell's too), and
 * the host's /usr is not written.
 */
test('telnet and udhcpc run from a device shell; the host /usr is unchanged and read-only', async (t) => {
  const hostToolsBefore = readdirSync('/usr/local/sbin');
  const rt = makeRuntime(t);
  const id = uniqueId('tools');
  const lan = subnet();
  const spec: LabSpec = {
    scenarioId: id,
    networks: [{ name: 'lan', cidr: lan(0) }],
    devices: [
      { name: 'host-a', kind: 'host', interfaces: [{ network: 'lan', address: `${lan(10)}/24` }] },
      { name: 'host-b', kind: 'host', interfaces: [{ network: 'lan', address: `${lan(20)}/24` }] },
    ],
  };
  await rt.create(spec);

  const found = await learner(rt, id, 'host-a', 'command -v telnet udhcpc');
  assert.equal(found.exitCode, 0, found.out);
  assert.deepEqual(found.out.trim().split('\n'), ['/usr/local/sbin/telnet', '/usr/local/sbin/udhcpc']);

  // A server on host-b answers one connection; telnet from host-a reads its greeting.
  const server = rt.exec(
    id,
    'host-b',
    [
      '/usr/bin/python3',
      '-c',
      "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('0.0.0.0',2323));s.listen(1);s.settimeout(20);c,_=s.accept();c.sendall(b'hello-over-telnet\\r\\n');c.close()",
    ],
    { asLearner: true, timeoutMs: 30_000 },
  );
  const ready = await learner(rt, id, 'host-b', 'for i in $(seq 200); do ss -ltn | grep -q ":2323 " && exit 0; sleep 0.05; done; exit 1');
  assert.equal(ready.exitCode, 0, 'the test server listens');
  const telnet = await learner(rt, id, 'host-a', `(sleep 1) | timeout 10 telnet ${lan(20)} 2323`);
  assert.match(telnet.out, /hello-over-telnet/, telnet.out);
  assert.equal((await server).exitCode, 0);
  const refused = await learner(rt, id, 'host-a', `timeout 10 telnet ${lan(20)} 2324 </dev/null`);
  assert.match(refused.out, /can't connect to remote host.*Connection refused/, refused.out);

  // udhcpc broadcasts its discover on the lab interface (no DHCP server here: no lease, as it says).
  const dhcp = await learner(rt, id, 'host-a', `dev=$(ip -o -4 addr show | awk '$2 != "lo" {print $2; exit}'); udhcpc -i "$dev" -n -q -t 2 -T 1 -s /bin/true`);
  assert.match(dhcp.out, /udhcpc: started/, dhcp.out);
  assert.match(dhcp.out, /broadcasting discover/, dhcp.out);
  assert.match(dhcp.out, /no lease/, dhcp.out);

  // The tools dir is the device's, read-only to the learner; the host's /usr gained nothing.
  const write = await learner(rt, id, 'host-a', 'touch /usr/local/sbin/x; ln -sf /bin/sh /usr/local/sbin/telnet');
  assert.match(write.out, /Read-only file system/);
  assert.deepEqual(readdirSync('/usr/local/sbin'), hostToolsBefore);
});
