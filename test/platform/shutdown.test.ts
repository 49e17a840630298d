import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAuthModule } from '../../src/core/auth/module.js';
import { ensureBootstrapAdmin } from '../../src/core/auth/bootstrap.js';
import { buildServer } from '../../src/platform/http/server.js';
import { createPlatform } from '../../src/platform/platform.js';
import { testConfig } from '../helpers/app.js';

describe('graceful shutdown', () => {
  it('stops accepting, lets in-flight requests finish, then closes the pools', async () => {
    const platform = await createPlatform(testConfig(), { embeddedDir: 'memory' });
    const auth = createAuthModule(platform);
    let entered!: () => void;
    const handlerEntered = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const app = await buildServer(platform, {
      role: 'test',
      version: '0',
      gate: auth.gate,
      plugins: [
        {
          name: 'slow',
          plugin: async (a) =>
            void a.get('/slow', async () => {
              entered();
              await released;
              return { done: true };
            }),
        },
      ],
    });
    platform.onClose(() => app.close());
    const key = (await ensureBootstrapAdmin(platform.db, 'default')).key!;
    const address = await app.listen({ host: '127.0.0.1', port: 0 });

    const inFlight = fetch(`${address}/slow`, { headers: { 'x-api-key': key } });
    await handlerEntered;
    const closing = platform.close();
    // While draining, the listener is closed: a new connection is refused.
    await assert.rejects(fetch(`${address}/health/live`, { headers: { connection: 'close' } }));
    release();
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { done: true });
    await closing;
    await assert.rejects(platform.db.ping(500), /unavailable|closed|destroy/i);
  });
});
