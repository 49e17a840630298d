import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pointerToken, pointerTokens } from '../../src/platform/json-pointer.js';

describe('JSON pointers', () => {
  it('splits a pointer into unescaped tokens; the empty pointer has none', () => {
    assert.deepEqual(pointerTokens(''), []);
    assert.deepEqual(pointerTokens('/rules/3/when'), ['rules', '3', 'when']);
    assert.deepEqual(pointerTokens('/a~1b/m~0n/~01'), ['a/b', 'm~n', '~1']);
    assert.deepEqual(pointerTokens('/'), ['']);
  });

  it('escapes a member name so that it reads back as one token', () => {
    for (const name of ['plain', 'a/b', '~', '~1', '/~0/']) {
      assert.deepEqual(pointerTokens(`/x/${pointerToken(name)}`), ['x', name]);
    }
    assert.equal(pointerToken('a/b~c'), 'a~1b~0c');
  });
});
