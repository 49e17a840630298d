import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertSafeRegex, compileSafeRegex, MAX_REGEX_INPUT } from '../../../src/core/engine/safe-regex.js';
import { UnsafeRegexError } from '../../../src/core/engine/errors.js';

const REFUSED: Array<[string, RegExp]> = [
  ['(a+)+', /nested quantifiers/],
  ['(.*)*', /nested quantifiers/],
  ['(a?)*b', /nested quantifiers/],
  ['(?:\\w+\\s?){3}x', /nested quantifiers/],
  ['(a|a)*', /alternatives under a repeated group/],
  ['(a|ab)+c', /alternatives under a repeated group/],
  ['(?:x|)*', /empty string|alternatives/],
  ['.*a.*b', /two unbounded quantifiers/],
  ['\\d+\\d+', /two unbounded quantifiers/],
  ['a*a*', /two unbounded quantifiers/],
  ['\\w+\\d*\\w+', /two unbounded quantifiers/],
  ['(a)\\1', /backreferences/],
  ['(?<n>a)\\k<n>', /named groups/],
  ['\\k<n>', /named backreferences/],
  ['foo(?=bar)', /lookaround/],
  ['foo(?!bar)', /lookaround/],
  ['(?<=a)b', /lookaround/],
  ['(?<!a)b', /lookaround/],
  ['\\p{L}', /escape \\p/],
  ['a**', /quantifier cannot follow/],
  ['*a', /nothing to repeat/],
  ['a{2', /must start a quantifier/],
  ['a{5,2}', /out of order/],
  ['a{1001}', /above 1000/],
  ['(ab', /unterminated group/],
  ['ab)', /unmatched/],
  ['[abc', /unterminated character class/],
  ['', /empty pattern/],
  ['x'.repeat(513), /above the limit of 512/],
];

const ACCEPTED = [
  '\\d+\\.\\d+',
  '\\w+@\\w+\\.[a-z]{2,}',
  'union\\s+select',
  '(\\d{1,3}\\.){3}\\d{1,3}',
  '(?:[a-f0-9]{2})+',
  '\\b(?:sqlmap|sqlninja|nikto|nmap)\\b',
  '^/api/v\\d+/users/[^/]+$',
  'select\\s.+\\sfrom',
  '(?:\\s|%20)+or(?:\\s|%20)+',
  '[\\]\\-a-z]',
  '\\x41\\u0042',
];

describe('safe regex subset', () => {
  for (const [pattern, reason] of REFUSED) {
    it(`refuses /${pattern.length > 30 ? `${pattern.slice(0, 30)}...` : pattern}/`, () => {
      assert.throws(
        () => assertSafeRegex(pattern),
        (err: unknown) => err instanceof UnsafeRegexError && err.code === 'unsafe_regex' && reason.test(err.message),
      );
    });
  }
  for (const pattern of ACCEPTED) {
    it(`accepts /${pattern}/`, () => {
      assert.doesNotThrow(() => assertSafeRegex(pattern));
    });
  }

  it('folds case into the ambiguity check (a+A+ is ambiguous only with i)', () => {
    assert.doesNotThrow(() => assertSafeRegex('a+A+'));
    assert.throws(() => assertSafeRegex('a+A+', true), /two unbounded quantifiers/);
  });

  it('matches like a RegExp on the first MAX_REGEX_INPUT characters only', () => {
    const re = compileSafeRegex('sqlmap', true);
    assert.equal(re.test('Mozilla sqlmap/1.0'), true);
    assert.equal(re.test('SQLMAP'), true);
    assert.equal(re.test('curl/8'), false);
    assert.equal(re.test(`${'x'.repeat(MAX_REGEX_INPUT - 6)}sqlmap`), true);
    assert.equal(re.test(`${'x'.repeat(MAX_REGEX_INPUT)}sqlmap`), false);
  });
});
