import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DatabaseUnavailableError } from '../../src/platform/db/database.js';
import { isDependencyUnavailable } from '../../src/platform/dependency-errors.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('isDependencyUnavailable', () => {
  it('recognises lost or refused connections of pg, pg-pool, ioredis and our own stores', () => {
    for (const err of [
      new DatabaseUnavailableError('database did not answer within 2000 ms'),
      withCode('correlation window update failed', 'window_store_unavailable'),
      withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
      withCode('read ECONNRESET', 'ECONNRESET'),
      withCode('terminating connection due to administrator command', '57P01'),
      withCode('the database system is starting up', '57P03'),
      withCode('connection failure', '08006'),
      withCode('the decisions log of tenant t grew from 4 to 9 since the group was read', '40001'),
      withCode('deadlock detected', '40P01'),
      new Error('Connection terminated unexpectedly'),
      new Error('Client has encountered a connection error and is not queryable'),
      new Error('timeout exceeded when trying to connect'),
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      new Error('wrapped', { cause: withCode('connect ECONNREFUSED 127.0.0.1:6379', 'ECONNREFUSED') }),
    ]) {
      assert.equal(isDependencyUnavailable(err), true, err.message);
    }
  });

  it('leaves bugs and request errors alone', () => {
    for (const err of [
      new Error('Cannot read properties of undefined'),
      withCode('duplicate key value violates unique constraint', '23505'),
      withCode('permission denied for table decisions', '42501'),
      withCode('invalid input syntax', '22P02'),
      new TypeError('x is not a function'),
    ]) {
      assert.equal(isDependencyUnavailable(err), false, err.message);
    }
    assert.equal(isDependencyUnavailable('ECONNREFUSED'), false, 'not an Error');
  });
});
