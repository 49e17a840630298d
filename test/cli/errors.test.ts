import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLI_ERRORS, CliError, UsageError, cliFailure, renderFailure, wantsJson } from '../../src/cli/errors.js';
import { ConfigError } from '../../src/config/config.js';
import { InvalidScopeError } from '../../src/platform/auth/scopes.js';
import { LabRuntimeError } from '../../src/forge/runtime/errors.js';
import { TemplateInvalidError } from '../../src/forge/templates/errors.js';
import { DatabaseUnavailableError, EmbeddedDatabaseLockedError } from '../../src/platform/db/database.js';
import { InvalidDurationError } from '../../src/platform/duration.js';
import { AppError, PROBLEMS, type ProblemCode } from '../../src/platform/http/problem.js';

const codeOf = (err: unknown) => cliFailure(err, 'keys').code;

describe('CLI failures are classified into the closed set', () => {
  it('each kind of error a command can raise gets its documented code', () => {
    assert.equal(codeOf(new UsageError('missing --tenant')), 'usage');
    assert.equal(codeOf(new CliError('database_locked', 'held')), 'database_locked');
    assert.equal(codeOf(new ConfigError(['FG_PORT: not a port'])), 'config_invalid');
    assert.deepEqual(cliFailure(new ConfigError(['FG_PORT: not a port'])).details, { problems: ['FG_PORT: not a port'] });
    assert.equal(codeOf(new EmbeddedDatabaseLockedError('in use by process 1')), 'database_locked');
    assert.equal(codeOf(new DatabaseUnavailableError('database did not answer')), 'unavailable');
    assert.equal(codeOf(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })), 'unavailable');
    assert.equal(codeOf(Object.assign(new Error('password authentication failed for user "fg"'), { code: '28P01' })), 'unavailable');
    assert.equal(codeOf(Object.assign(new Error('database "x" does not exist'), { code: '3D000' })), 'unavailable');
    assert.equal(codeOf(new InvalidScopeError('unknown scope(s) root')), 'invalid_input');
    assert.equal(codeOf(new InvalidDurationError('"9x" is not a duration')), 'invalid_input');
    assert.equal(codeOf(new LabRuntimeError('lab_not_found', 'no lab')), 'not_found');
    assert.equal(codeOf(new LabRuntimeError('lab_create_failed', 'ip link failed')), 'lab_failed');
    const template = cliFailure(new TemplateInvalidError('t.yaml', [{ path: 'id', message: 'is required' }]));
    assert.equal(template.code, 'invalid_file');
    assert.deepEqual(template.details, { problems: [{ path: 'id', message: 'is required' }] });
    assert.equal(codeOf(Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:8080'), { code: 'EADDRINUSE' })), 'port_in_use');
    assert.equal(codeOf(new TypeError("Cannot read properties of undefined (reading 'x')")), 'internal');
    assert.equal(codeOf('a thrown string'), 'internal');
  });

  it('every problem code of the API maps to a CLI code', () => {
    for (const code of Object.keys(PROBLEMS) as ProblemCode[]) assert.ok(Object.hasOwn(CLI_ERRORS, codeOf(new AppError(code, 'x'))), code);
    assert.equal(codeOf(new AppError('not_found', 'key key_x not found')), 'not_found');
    assert.equal(codeOf(new AppError('conflict', 'tenant acme already exists')), 'conflict');
    assert.equal(codeOf(new AppError('invalid_tenant', "'unknown' is not allowed")), 'invalid_input');
  });

  it('--json renders one JSON object; without it, error and fix lines (a stack only for internal errors)', () => {
    const failure = { code: 'database_locked', message: 'in use', fix: 'use the HTTP API' } as const;
    assert.deepEqual(JSON.parse(renderFailure(failure, true)), { error: { code: 'database_locked', message: 'in use', fix: 'use the HTTP API' } });
    assert.equal(renderFailure(failure, false, 'Error: in use\n    at x'), 'error: in use\nfix: use the HTTP API');
    assert.equal(renderFailure({ code: 'internal', message: 'boom' }, false, 'Error: boom\n    at y'), 'error: Error: boom\n    at y');
    assert.deepEqual(JSON.parse(renderFailure({ code: 'internal', message: 'boom' }, true, 'Error: boom\n    at y')), {
      error: { code: 'internal', message: 'boom' },
    });
  });

  it('--json counts only before --, where the lab command ends and its arguments begin', () => {
    assert.equal(wantsJson(['list', '--json']), true);
    assert.equal(wantsJson(['exec', 'scn_1', 'r1', '--', 'tool', '--json']), false);
    assert.equal(wantsJson(['exec', '--json', '--', 'tool']), true);
  });

  it('exit status: 2 for usage, 1 for every other code', () => {
    for (const [code, spec] of Object.entries(CLI_ERRORS)) assert.equal(spec.exit, code === 'usage' ? 2 : 1, code);
  });
});
