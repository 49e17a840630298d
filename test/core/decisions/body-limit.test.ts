import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../../helpers/app.js';

const LIMIT = 48 * 1024;
const event = (i: number, pad: string) => ({
  source: 'sensor-limit',
  event_type: 'http.request',
  occurred_at: new Date().toISOString(),
  payload: { src_ip: '100.64.55.1', note: pad, n: i },
});

/** An /ingest body of exactly `bytes` bytes: 4 KiB events, the last one padded to fit. */
function ingestBody(bytes: number): string {
  const events = [];
  for (let i = 0; ; i++) {
    const body = JSON.stringify({ events: [...events, event(i, '')] });
    const room = bytes - Buffer.byteLength(body);
    if (room <= 4096) {
      const text = JSON.stringify({ events: [...events, event(i, 'x'.repeat(room))] });
      assert.equal(Buffer.byteLength(text), bytes);
      return text;
    }
    events.push(event(i, 'x'.repeat(4000)));
  }
}

describe('request bodies follow FG_BODY_LIMIT, /ingest included', () => {
  let t: TestApp;
  let key: string;
  before(async () => {
    t = await startTestApp({ env: { FG_BODY_LIMIT: String(LIMIT) } });
    key = (await t.auth.store.createKey({ tenantId: t.tenantId, scopes: ['ingest:write', 'defend:write'] })).key;
  });
  after(async () => t?.close());
  const post = (url: string, payload: string) =>
    t.app.inject({ method: 'POST', url, headers: { 'x-api-key': key, 'content-type': 'application/json' }, payload });

  it(`/ingest takes a batch of exactly FG_BODY_LIMIT (${LIMIT}) bytes and refuses one byte more with 413 (it had its own 16 MiB)`, async () => {
    const fits = await post('/ingest', ingestBody(LIMIT));
    assert.equal(fits.statusCode, 202, fits.body);
    const over = await post('/ingest', ingestBody(LIMIT + 1));
    assert.equal(over.statusCode, 413, over.body);
    assert.equal(over.json().code, 'payload_too_large');
    assert.match(over.json().detail, new RegExp(`limit of ${LIMIT} bytes`));
  });

  it('/defend keeps its 64 KiB for one event, but never above a smaller FG_BODY_LIMIT', async () => {
    const one = JSON.stringify(event(0, 'x'.repeat(LIMIT)));
    const res = await post('/defend', one);
    assert.equal(res.statusCode, 413, res.body);
    assert.match(res.json().detail, new RegExp(`limit of ${LIMIT} bytes`));
  });
});
