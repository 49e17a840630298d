import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { generateKey, keyIdOf } from '../../src/core/auth/key-format.js';
import { ID_ALPHABET, ID_LENGTHS, idPattern, newId, randomIdBody, type IdPrefix } from '../../src/platform/ids.js';

const PREFIXES = Object.keys(ID_LENGTHS) as IdPrefix[];

/** Pearson's chi-square of character counts against the uniform distribution over ID_ALPHABET. */
function chiSquare(text: string): number {
  const counts = new Map<string, number>([...ID_ALPHABET].map((c) => [c, 0]));
  for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
  const expected = text.length / ID_ALPHABET.length;
  let chi = 0;
  for (const n of counts.values()) chi += (n - expected) ** 2 / expected;
  return chi;
}

/** 32 degrees of freedom at p = 1e-6 (Wilson–Hilferty): a uniform source exceeds it once in a million runs. */
const CHI_SQUARE_LIMIT = 86;
const DRAWN_CHARACTERS = 400_000;

describe('platform/ids', () => {
  it('every prefix: `<prefix>_` and its length of alphabet characters', () => {
    for (const prefix of PREFIXES) {
      for (let i = 0; i < 200; i++) {
        const id = newId(prefix);
        assert.match(id, idPattern(prefix));
        assert.equal(id.length, prefix.length + 1 + ID_LENGTHS[prefix]);
      }
    }
    assert.equal(new Set(ID_ALPHABET).size, ID_ALPHABET.length, 'no character twice');
    assert.doesNotMatch(ID_ALPHABET, /[01l]/, 'no look-alikes');
  });

  it('ids still pass the patterns that parse them: routes, the API key format, request ids', () => {
    for (let i = 0; i < 200; i++) {
      assert.match(newId('chg'), /^chg_[a-z0-9]{20}$/); // governance routes
      assert.match(newId('scn'), /^scn_[A-Za-z0-9_]{8,100}$/); // orchestrator and scoring routes
      assert.match(newId('scn'), /^scn_[A-Za-z0-9_-]{1,80}$/); // access routes
      assert.match(newId('term'), /^term_[A-Za-z0-9_-]{10,40}$/); // terminal reattach
      assert.match(newId('req'), /^req_[A-Za-z0-9_-]{16}$/); // x-request-id
      assert.match(newId('dec'), /^dec_[a-z0-9]{24}$/); // decision routes (issue 22 adopts newId)
      assert.match(newId('ing'), /^ing_[a-z0-9]{24}$/);
      const key = generateKey();
      assert.match(key.id, idPattern('key'));
      assert.equal(keyIdOf(key.key), key.id, 'the key parses back to its row id');
    }
  });

  it('characters are uniform: chi-square over 400 000 draws stays under the p = 1e-6 bound', () => {
    const chi = chiSquare(randomIdBody(DRAWN_CHARACTERS));
    assert.ok(chi < CHI_SQUARE_LIMIT, `chi-square ${chi.toFixed(1)} ≥ ${CHI_SQUARE_LIMIT}`);
  });

  it('the same test catches modulo bias (byte % 33, as the hand-written generators did)', () => {
    let biased = '';
    const bytes = randomBytes(DRAWN_CHARACTERS);
    for (const b of bytes) biased += ID_ALPHABET[b % ID_ALPHABET.length];
    assert.ok(chiSquare(biased) > CHI_SQUARE_LIMIT * 5);
  });

  it('every position is uniform too (no character position favoured)', () => {
    const ids = Array.from({ length: 20_000 }, () => newId('chg').slice(4));
    for (const position of [0, 9, 19]) {
      const column = ids.map((id) => id[position]).join('');
      // 20 000 draws per column: the same p = 1e-6 bound.
      assert.ok(chiSquare(column) < CHI_SQUARE_LIMIT, `position ${position}`);
    }
  });

  it('unique: 200 000 request ids (the shortest, 80 bits) never repeat', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200_000; i++) seen.add(newId('req'));
    assert.equal(seen.size, 200_000);
  });
});
