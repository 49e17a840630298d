import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { fileURLToPath } from 'node:url';
import { verifierOf } from '../../../src/ledger/note.js';
import { verifyLogFromDatabase } from '../../../src/ledger/verify.js';
import { defaultContent } from '../../../src/core/governance/kinds.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

/**
 * Every decision in the product goes through src/core/engine's evaluate(): this scans the source
 * (a structural check, the seed's `grep -r "def evaluate"` done properly) for any other place that
 * evaluates events, computes threat levels or mitigations, or writes decision records.
 */
/** Code only: comments may name evaluate() freely. */
function withoutComments(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '')
    .replace(/\s\/\/ .*$/gm, '');
}

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src');
const files = (function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
})(SRC).map((f) => ({ rel: path.relative(SRC, f), text: withoutComments(readFileSync(f, 'utf8')) }));
const outsideEngine = files.filter((f) => !f.rel.startsWith('core/engine/'));

it('evaluate() is defined once, in the engine', () => {
  const definitions = files
    .filter((f) => /(?:function\s+evaluate\s*\(|\bevaluate\s*[:=]\s*(?:async\s*)?\(|^\s*(?:async\s+)?evaluate\s*\()/m.test(f.text))
    .map((f) => f.rel);
  assert.deepEqual(definitions, ['core/engine/evaluate.ts']);
});

it('only the decision service (and governance canary replays, which store nothing) call evaluate()', () => {
  const importers = outsideEngine
    .filter((f) => /import\s*\{[^}]*\bevaluate\b[^}]*\}\s*from\s*'[^']*engine/.test(f.text))
    .map((f) => f.rel)
    .sort();
  assert.deepEqual(importers, ['core/decisions/service.ts', 'core/governance/canary.ts']);
  const canary = files.find((f) => f.rel === 'core/governance/canary.ts')!;
  assert.doesNotMatch(canary.text, /insertInto\(\s*'decisions'/, 'canaries compare, they never store decisions');
});

it('no module but the engine maps scores to threat levels or gates mitigations', () => {
  const engineOnly = [
    /\bthreatLevelFor\s*\(/,
    /\bgateMitigations\s*\(/,
    /\bscore\s*[<>]=?\s*[\w.]*thresholds\b/,
    /\bthresholds\s*\[[^\]]+\]\s*[<>]=?\s*[\w.]*score\b/,
  ];
  for (const f of outsideEngine) {
    for (const re of engineOnly) assert.doesNotMatch(f.text, re, `${f.rel} must not compute what evaluate() computes (${re})`);
  }
});

/**
 * The one write path, by behaviour rather than by the names in the source: whatever reaches a
 * decision (/defend, /ingest, a replayed event_id, a governance canary), every decision row has
 * its ledger entry at its ledger_index holding that very decision, the log holds nothing else, and
 * the log verifies against its signed checkpoint. A second writer of either table breaks one of these.
 */
describe('decision rows and the decisions log are one path', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ db: 'postgres' });
  });
  after(async () => t?.close());

  it('every decision, from /defend and from /ingest, is a row with its own ledger entry, and the log holds nothing else', async () => {
    const key = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['defend:write', 'ingest:write', 'decisions:read', 'governance:write'] })).key;
    const base = Date.now() - 120_000;
    const event = (i: number) => ({
      event_id: `one-path-${i}`,
      source: 'sshd',
      event_type: 'auth.failure',
      occurred_at: new Date(base + i * 1000).toISOString(),
      payload: { service: 'ssh', src_ip: `100.64.77.${i % 3}`, username: `u${i}` },
    });
    const post = (url: string, payload: object) => t.app.inject({ method: 'POST', url, headers: { 'x-api-key': key }, payload });
    for (let i = 0; i < 6; i++) assert.equal((await post('/defend', event(i))).statusCode, 200);
    const batch = await post('/ingest', { events: [6, 7, 8, 9, 2, 3].map(event) });
    assert.equal(batch.statusCode, 202, batch.body);
    for (;;) {
      const status = (await t.app.inject({ url: `/ingest/batches/${batch.json().batch_id}`, headers: { 'x-api-key': key } })).json();
      if (status.status === 'completed') break;
      assert.equal(status.status === 'failed', false, JSON.stringify(status));
      await new Promise((resolve) => setTimeout(resolve, 20)); // the consumer's work, polled
    }
    // A replay of a decided event_id and a canary over the stored events store nothing new.
    assert.equal((await post('/defend', event(1))).statusCode, 200);
    const canary = await post('/governance/changes', {
      kind: 'doctrine',
      content: { ...(defaultContent('doctrine').source as object), version: 'one-path-2' },
      justification: 'canary only',
    });
    assert.equal(canary.statusCode, 201, canary.body);
    assert.equal((await post(`/governance/changes/${canary.json().id}/canary`, { limit: 100 })).statusCode, 200);

    const rows = await t.platform.db.withTenant(t.tenantId, async (tx) => ({
      decisions: (await sql<{ decision_id: string; ledger_index: string }>`SELECT decision_id, ledger_index FROM decisions ORDER BY ledger_index`.execute(tx))
        .rows,
      entries: (await sql<{ idx: string; record_json: string }>`SELECT idx, record_json FROM ledger_entries WHERE log = 'decisions' ORDER BY idx`.execute(tx))
        .rows,
    }));
    assert.equal(rows.decisions.length, 10, 'ten events, ten decisions (two duplicates, one replay)');
    assert.deepEqual(
      rows.entries.map((e) => [Number(e.idx), (JSON.parse(e.record_json) as { decision_id: string }).decision_id]),
      rows.decisions.map((d) => [Number(d.ledger_index), d.decision_id]),
      'entry i holds the decision stored with ledger_index i, and no other entry exists',
    );
    const check = await verifyLogFromDatabase(t.platform.db, t.tenantId, 'decisions', [verifierOf(t.ledger.ledger.signingKey.signer)]);
    assert.equal(check.ok, true, JSON.stringify(check.problems));
    assert.equal(check.size, 10);
  });
});
