import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LabRuntimeError } from '../../../src/forge/runtime/errors.js';
import { validateLabSpec } from '../../../src/forge/runtime/spec.js';
import type { LabSpec } from '../../../src/forge/runtime/types.js';

const good: LabSpec = {
  scenarioId: 'scn_ok',
  networks: [{ name: 'lan', cidr: '10.0.0.0/24' }],
  devices: [{ name: 'h1', kind: 'host', interfaces: [{ network: 'lan', address: '10.0.0.5/24' }], files: [{ path: '/root/a.txt', content: 'x' }] }],
};

test('a valid spec passes', () => {
  validateLabSpec(good);
});

test('invalid specs are refused with every problem named', () => {
  const bad: LabSpec = {
    scenarioId: 'bad id!',
    networks: [{ name: 'lan', cidr: '10.0.0.1/24' }],
    devices: [
      {
        name: 'H1',
        kind: 'host',
        interfaces: [{ network: 'nope', address: '10.0.1.5/24' }],
        files: [
          { path: '/usr/bin/ls', content: '' },
          { path: '/root/../etc/x', content: '' },
        ],
      },
      { name: 'h2', kind: 'host', interfaces: [], routes: [{ to: 'default', via: '10.0.0.1' }], frrConfig: 'x' },
    ],
    egress: { name: 'p', allow: [{ device: 'ghost', proto: 'icmp', port: 22 }] },
  };
  assert.throws(
    () => validateLabSpec(bad),
    (e: unknown) => {
      assert.ok(e instanceof LabRuntimeError);
      assert.equal(e.code, 'lab_spec_invalid');
      for (const part of [
        'scenarioId',
        'cidr 10.0.0.1/24',
        'device H1: name',
        'unknown network nope',
        '/usr/bin/ls',
        '/root/../etc/x',
        'route via 10.0.0.1',
        'frrConfig only for routers',
        'unknown device ghost',
        'port needs tcp or udp',
      ]) {
        assert.ok(e.message.includes(part), `message names ${part}: ${e.message}`);
      }
      return true;
    },
  );
});
