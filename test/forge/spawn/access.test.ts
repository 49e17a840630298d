import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openDatabase, type Database } from '../../../src/platform/db/database.js';
import { AccessTokens, accessUrl } from '../../../src/forge/spawn/access.js';
import { DatabaseReplayGuard } from '../../../src/forge/tokens/replay.js';
import { loadTokenSigningKey } from '../../../src/forge/tokens/signing-key.js';
import { ScenarioTokens, TokenRefusedError } from '../../../src/forge/tokens/scenario-tokens.js';

const claims = { tenant: 'acme', subject: 'learner-1', scenarioId: 'scn_0123456789abcdef01234567', track: 'netplus' };
const refusedWith = (problem: string) => (err: unknown) => err instanceof TokenRefusedError && err.problem === problem;

describe('AccessTokens.validate (the check behind /v1/access/{scenario_id}?token=)', () => {
  let db: Database;
  before(async () => {
    db = await openDatabase({ embeddedDir: 'memory', migrate: true });
  });
  after(async () => db?.close());

  it('accepts a token once for its scenario; replayed, wrong-scenario, expired and missing tokens are each refused by name', async () => {
    let now = Date.now();
    const key = await loadTokenSigningKey({ keyPath: undefined, dataDir: undefined });
    const access = new AccessTokens(new ScenarioTokens(key, new DatabaseReplayGuard(db), () => now));
    const issued = await access.issue(claims);
    await assert.rejects(access.validate('scn_ffffffffffffffffffffffff', issued.token), refusedWith('wrong_scenario'));
    const ok = await access.validate(claims.scenarioId, issued.token);
    assert.deepEqual([ok.scenarioId, ok.subject, ok.tenant, ok.track], [claims.scenarioId, 'learner-1', 'acme', 'netplus']);
    await assert.rejects(access.validate(claims.scenarioId, issued.token), refusedWith('replayed'));
    await assert.rejects(access.validate(claims.scenarioId, undefined), refusedWith('malformed'));
    const later = await access.issue(claims);
    now += 30 * 60_000 + 1000;
    await assert.rejects(access.validate(claims.scenarioId, later.token), refusedWith('expired'));
  });

  it('builds the access URL under the public base, token encoded', () => {
    assert.equal(accessUrl('https://labs.example.com/', 'scn_abcdefgh', 'a.b+c'), 'https://labs.example.com/v1/access/scn_abcdefgh?token=a.b%2Bc');
  });
});
