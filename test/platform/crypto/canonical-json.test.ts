import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalBytes, canonicalize, CanonicalJsonError } from '../../../src/platform/crypto/canonical-json.js';

/** The IEEE 754 double with this big-endian bit pattern. */
function double(bits: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${bits}`));
  return view.getFloat64(0);
}

function rejects(value: unknown, path: string): void {
  assert.throws(
    () => canonicalize(value),
    (err: unknown) => err instanceof CanonicalJsonError && err.code === 'canonical_json_unsupported' && err.path === path,
  );
}

describe('canonicalize (RFC 8785)', () => {
  it('reproduces the section 3.2.2 example and its section 3.2.4 UTF-8 bytes', () => {
    const input = String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`;
    const value: unknown = JSON.parse(input);
    assert.equal(
      canonicalize(value),
      String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
    );
    const rfcHex =
      '7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72 75 65 2c 66 61 6c 73 65 5d 2c 22 6e ' +
      '75 6d 62 65 72 73 22 3a 5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31 65 2b 33 30 ' +
      '2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37 5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 ' +
      '5c 75 30 30 30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d';
    assert.equal(canonicalBytes(value).toString('hex'), rfcHex.replace(/ /g, ''));
  });

  it('sorts member names by UTF-16 code units (section 3.2.3 example)', () => {
    const input = String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`;
    const out = canonicalize(JSON.parse(input));
    const names = Object.keys(JSON.parse(out) as Record<string, unknown>);
    // JSON.parse keeps insertion order for non-index names and puts "1" first; read the order
    // from the text instead.
    const order = [...out.matchAll(/"([^"]*)":"([^"]*)"/g)].map((m) => m[2]);
    assert.deepEqual(order, [
      'Carriage Return',
      'One',
      'Control',
      'Latin Small Letter O With Diaeresis',
      'Euro Sign',
      'Emoji: Grinning Face',
      'Hebrew Letter Dalet With Dagesh',
    ]);
    assert.equal(names.length, 7);
    // The astral character (surrogates D83D DE00) sorts before U+FB33, unlike a code point sort.
    assert.ok(out.indexOf('\u{1F600}') < out.indexOf('\uFB33'));
  });

  it('serialises every finite number of Appendix B like ECMAScript', () => {
    const vectors: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [bits, text] of vectors) assert.equal(canonicalize(double(bits)), text, bits);
  });

  it('rejects the non-finite numbers of Appendix B and other non-JSON values with their path', () => {
    rejects(double('7fffffffffffffff'), '$');
    rejects(double('7ff0000000000000'), '$');
    rejects({ a: [1, Number.NEGATIVE_INFINITY] }, '$.a[1]');
    rejects([1, undefined], '$[1]');
    // eslint-disable-next-line no-sparse-arrays -- a hole is the input under test
    rejects([1, , 3], '$[1]');
    rejects({ f: () => 1 }, '$.f');
    rejects({ n: 10n }, '$.n');
    rejects({ s: Symbol('x') }, '$.s');
    rejects(undefined, '$');
    rejects({ 'odd key': { m: new Map() } }, '$["odd key"].m');
    rejects({ lone: 'a\uD800b' }, '$.lone');
    rejects({ '\uDC00': 1 }, '$["\\udc00"]');
  });

  it('rejects circular structures but accepts shared ones', () => {
    const shared = { x: 1 };
    assert.equal(canonicalize({ a: shared, b: shared }), '{"a":{"x":1},"b":{"x":1}}');
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    rejects(loop, '$.self');
  });

  it('serialises deep nesting (past the unchecked fast pass) and finds a cycle deep down', () => {
    let deep: unknown = { leaf: [1, 'two'] };
    for (let i = 0; i < 200; i++) deep = i % 2 ? { n: deep } : [deep];
    assert.equal(canonicalize(deep), JSON.stringify(deep));
    const loop: Record<string, unknown> = {};
    let inner: Record<string, unknown> = loop;
    for (let i = 0; i < 100; i++) inner = inner.c = {};
    inner.back = loop;
    assert.throws(
      () => canonicalize(loop),
      (err: unknown) => err instanceof CanonicalJsonError && /circular reference at \$(\.c){100}\.back$/.test(err.message),
    );
  });

  it('omits undefined members, honours toJSON, and keeps strings as they are', () => {
    assert.equal(canonicalize({ b: undefined, a: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)) }), '{"a":"2024-01-02T03:04:05.000Z"}');
    assert.equal(canonicalize(Object.assign(Object.create(null) as object, { z: 1, y: [] })), '{"y":[],"z":1}');
    // No Unicode normalisation: NFC and NFD spellings stay different (section 3.1).
    assert.notEqual(canonicalize('\u00e9'), canonicalize('e\u0301'));
    assert.equal(canonicalize('\u2028<>&'), '"\u2028<>&"');
    assert.equal(canonicalize('\u0000\u001f\u007f'), '"\\u0000\\u001f\u007f"');
  });

  it('writes any JSON value as a plain reference serialiser does (the fast pass changes nothing)', () => {
    const reference = (v: unknown): string => {
      if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
      if (v !== null && typeof v === 'object') {
        const o = v as Record<string, unknown>;
        return `{${Object.keys(o)
          .sort()
          .filter((k) => o[k] !== undefined)
          .map((k) => `${JSON.stringify(k)}:${reference(o[k])}`)
          .join(',')}}`;
      }
      return JSON.stringify(v);
    };
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (v) => canonicalize(v) === reference(v)),
      { numRuns: 500 },
    );
  });

  it('gives the same bytes whatever the member order', () => {
    const a = { tenant: 't1', decision: { level: 'high', rules: ['r2', 'r1'], score: 0.75 } };
    const b = { decision: { score: 0.75, rules: ['r2', 'r1'], level: 'high' }, tenant: 't1' };
    assert.deepEqual(canonicalBytes(a), canonicalBytes(b));
    assert.equal(canonicalize(a), '{"decision":{"level":"high","rules":["r2","r1"],"score":0.75},"tenant":"t1"}');
  });
});
