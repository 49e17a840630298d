import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { RateLimitPolicy } from '../../../src/core/ratelimit/policy.js';
import { unknownKey } from '../../chaos/harness.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

/**
 * FG_TRUST_PROXY decides which client address the server sees: the socket's peer (off, the
 * default), or the address a proxy wrote into X-Forwarded-For (on). The invalid-key guard counts
 * per address, so this is what an attacker tries to game: with the switch off, a forged
 * X-Forwarded-For must not buy a fresh budget; with it on (behind a proxy that sets the header),
 * clients behind one proxy must not share one budget.
 */

const BUDGET = 3;
function policy(): RateLimitPolicy {
  const roomy = { per_key: { points: 1000, duration_s: 60 }, per_tenant: { points: 5000, duration_s: 60 } };
  // A budget of 3 invalid keys per address: the 4th from one address is refused (429).
  return {
    version: `trust-proxy-${randomBytes(4).toString('hex')}`,
    classes: { read: roomy, write: roomy, admin: roomy },
    invalid_keys: { points: BUDGET, duration_s: 60, block_s: 60 },
  };
}

async function withApp(trustProxy: boolean, fn: (t: TestApp) => Promise<void>): Promise<void> {
  const t = await startTestApp({ env: { FG_TRUST_PROXY: String(trustProxy) }, captureLogs: true });
  try {
    t.limiter.apply(policy());
    await fn(t);
  } finally {
    await t.close();
  }
}

/** One request with an invalid key, from a socket address, claiming an X-Forwarded-For. */
const probe = (t: TestApp, remoteAddress: string, forwardedFor?: string) =>
  t.app.inject({ url: '/keys', remoteAddress, headers: { 'x-api-key': unknownKey(), ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) } });

/** The `ip` the security log recorded for each refused key, in order. */
const loggedIps = (t: TestApp) => t.logs!.lines.filter((l) => l.type === 'auth_event' && l.reason === 'unknown').map((l) => l.ip);

describe('FG_TRUST_PROXY and the client address the invalid-key guard counts', () => {
  it('off (default): X-Forwarded-For is ignored, so forging a new one per request does not escape the guard', async () => {
    await withApp(false, async (t) => {
      const attacker = '203.0.113.50';
      const statuses: number[] = [];
      for (let i = 0; i <= BUDGET; i++) statuses.push((await probe(t, attacker, `198.51.100.${i + 1}`)).statusCode);
      assert.deepEqual(statuses, [401, 401, 401, 429], 'every forged address was counted against the socket address');
      // Each refusal is logged (the refused fourth too), always with the socket address.
      assert.deepEqual(loggedIps(t), [attacker, attacker, attacker, attacker], 'the security log names the socket address, not the forged one');
      // Another real peer is unaffected.
      assert.equal((await probe(t, '203.0.113.51')).statusCode, 401);
    });
  });

  it('on: the forwarded address is the client, so clients behind one proxy have budgets of their own', async () => {
    await withApp(true, async (t) => {
      const proxy = '10.0.0.2';
      const statuses: number[] = [];
      for (let i = 0; i <= BUDGET; i++) statuses.push((await probe(t, proxy, '198.51.100.7')).statusCode);
      assert.deepEqual(statuses, [401, 401, 401, 429], 'the client named by the proxy spent its budget');
      // Another client behind the same proxy still gets a plain 401: the proxy's address is not what is counted.
      assert.equal((await probe(t, proxy, '198.51.100.8')).statusCode, 401);
      assert.deepEqual(
        loggedIps(t),
        ['198.51.100.7', '198.51.100.7', '198.51.100.7', '198.51.100.7', '198.51.100.8'],
        'the security log names the forwarded client',
      );
      // Without the header, the peer itself is the client (and has a budget of its own).
      assert.equal((await probe(t, proxy)).statusCode, 401);
      assert.equal(loggedIps(t).at(-1), proxy);
    });
  });
});
