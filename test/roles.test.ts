import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ROLE_NAMES, ROLE_PORTS } from '../src/role-names.js';
import { startRoleApp } from './helpers/app.js';

describe('roles', () => {
  it('every role starts on the shared platform, is ready, and carries only its own routes', async () => {
    assert.deepEqual([...ROLE_NAMES].sort(), ['admin', 'all', 'core', 'orchestrator', 'scoreboard', 'spawn', 'worker']);
    assert.equal(ROLE_PORTS.spawn, 8082);
    assert.equal(ROLE_PORTS.orchestrator, 8083);
    assert.equal(ROLE_PORTS.scoreboard, 8086);
    for (const role of ROLE_NAMES) {
      const t = await startRoleApp(role);
      try {
        assert.equal((await t.app.inject({ url: '/health/ready' })).statusCode, 200, role);
        const keys = await t.app.inject({ url: '/keys', headers: { 'x-api-key': t.adminKey } });
        // The admin role serves the core API beside the console, whose pages drive it.
        const servesCore = role === 'all' || role === 'core' || role === 'admin';
        assert.equal(keys.statusCode, servesCore ? 200 : 404, `${role} /keys`);
        const catalog = await t.app.inject({ url: '/v1/catalog', headers: { 'x-api-key': t.adminKey } });
        assert.equal(catalog.statusCode, role === 'all' || role === 'spawn' ? 200 : 404, `${role} /v1/catalog ${catalog.statusCode}`);
      } finally {
        await t.close();
      }
    }
  });
});
