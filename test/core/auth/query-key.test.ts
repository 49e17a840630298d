import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeQueryLayers, queryCarriesKey } from '../../../src/core/auth/gate.js';
import { generateKey } from '../../../src/core/auth/key-format.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';
import { authEvents } from './helpers.js';

const hex = (c: string, upper: boolean) => {
  const h = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${upper ? h.toUpperCase() : h}`;
};

/** Ways to write one character of a query, as a client, a proxy or an attacker might. */
const ENCODINGS = ['plain', 'lower', 'upper', 'double', 'triple', 'wide', 'split'] as const;
type Encoding = (typeof ENCODINGS)[number];

function encodeChar(c: string, how: Encoding): string {
  const h = c.charCodeAt(0).toString(16).padStart(2, '0');
  switch (how) {
    case 'plain':
      return c;
    case 'lower':
      return hex(c, false);
    case 'upper':
      return hex(c, true);
    case 'double':
      return `%25${h}`;
    case 'triple':
      return `%2525${h.toUpperCase()}`;
    case 'wide':
      return `%u00${h}`;
    // the escape's first hex digit itself escaped: %%36 + 6 => %66 => f
    case 'split':
      return `%${hex(h[0]!, false)}${h[1]}`;
  }
}

describe('a key in the query string, however it is encoded', () => {
  it('decodes nested and mixed escapes, leaving malformed ones alone', () => {
    assert.equal(decodeQueryLayers('%66g%5F'), 'fg_');
    assert.equal(decodeQueryLayers('%2566%255f'), 'f_');
    assert.equal(decodeQueryLayers('%u0066%U0067'), 'fg');
    assert.equal(decodeQueryLayers('%%366'), 'f');
    assert.equal(decodeQueryLayers('a+b%2Bc'), 'a b c');
    assert.equal(decodeQueryLayers('100%zz%4'), '100%zz%4');
    assert.equal(decodeQueryLayers('plain=1&x=2'), 'plain=1&x=2');
  });

  it('finds a real key under any per-character mix of encodings, in any parameter, at any position', () => {
    const how = fc.constantFrom<Encoding>(...ENCODINGS);
    fc.assert(
      fc.property(
        fc.array(how, { minLength: 80, maxLength: 80 }),
        fc.stringMatching(/^[a-z]{1,10}$/),
        fc.stringMatching(/^[a-z0-9=&]{0,20}$/),
        (hows, param, prefix) => {
          const key = generateKey().key;
          const encoded = [...key].map((c, i) => encodeChar(c, hows[i]!)).join('');
          const url = `/decisions?${prefix}${prefix ? '&' : ''}${param}=${encoded}`;
          assert.equal(queryCarriesKey(url), true, url);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('finds parameters named like a credential when their names are encoded', () => {
    for (const q of ['api_key=x', 'api%5Fkey=x', 'API%255FKEY=x', 'a=1&%6B%65%79=x', 'x=1;apikey=2', 'access%2Dkey=z', '%61pi-key=q'])
      assert.equal(queryCarriesKey(`/keys?${q}`), true, q);
  });

  it('leaves ordinary queries alone', () => {
    for (const q of [
      'limit=10&rule=ssh-bruteforce',
      'entity=ip%3A100.64.1.1',
      'q=fg_short',
      'q=fg_abc',
      'subject=monkey',
      'keyword=x',
      'turkey=1',
      'since=2026-01-01T00%3A00%3A00Z',
      'name=a+b',
      'x=100%',
    ]) {
      assert.equal(queryCarriesKey(`/decisions?${q}`), false, q);
    }
    assert.equal(queryCarriesKey('/decisions'), false);
  });
});

describe('the gate refuses encoded keys in the query on a whole platform', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ captureLogs: true });
  });
  after(async () => t?.close());

  it('answers 400 api_key_in_query for percent-, double-, mixed-case- and %u-encoded keys, never logging them', async () => {
    const key = t.adminKey;
    const body = key.slice(2);
    const urls = [
      `/decisions?x=%66g${body}`,
      `/decisions?x=%46%47${body}`,
      `/decisions?x=%2566%2567${body.replace('_', '%255F')}`,
      `/decisions?x=${[...key].map((c) => hex(c, true)).join('')}`,
      `/decisions?x=${[...key].map((c, i) => (i % 2 ? hex(c, false) : hex(c, true))).join('')}`,
      `/decisions?x=%u0066%u0067${body}`,
      `/health/live?note=%66g${body}`,
    ];
    for (const url of urls) {
      const res = await t.app.inject({ url, headers: { 'x-api-key': key } });
      assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
      assert.equal(res.json().code, 'api_key_in_query');
    }
    assert.ok(authEvents(t.logs!).filter((l) => l.reason === 'key_in_query').length >= urls.length);
    assert.ok(!JSON.stringify(t.logs!.lines).includes(key.slice(16)), 'no secret in any log line');
    // The same request without the key in the URL is served.
    assert.equal((await t.app.inject({ url: '/decisions?limit=1', headers: { 'x-api-key': key } })).statusCode, 200);
  });
});
