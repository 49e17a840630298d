import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CLI_ERRORS } from '../../src/cli/errors.js';
import { COMMANDS } from '../../src/cli/main.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/servers.js';

describe('frostgate CLI errors with --json', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  /** One JSON object on stderr with a code from the closed set, nothing on stdout, the code's exit status. */
  const failsWith = async (args: string[], code: keyof typeof CLI_ERRORS, env: Record<string, string> = {}) => {
    const res = await runCli([...args, '--json'], env);
    const where = `frostgate ${args.join(' ')} --json`;
    assert.equal(res.stdout, '', `${where}: stdout stays empty`);
    let parsed: { error?: { code?: string; message?: string } };
    try {
      parsed = JSON.parse(res.stderr) as typeof parsed;
    } catch {
      throw new Error(`${where}: stderr is not one JSON object: ${res.stderr}`);
    }
    assert.ok(parsed.error?.code && Object.hasOwn(CLI_ERRORS, parsed.error.code), `${where}: ${res.stderr}`);
    assert.equal(parsed.error.code, code, `${where}: ${res.stderr}`);
    assert.ok(parsed.error.message, `${where}: a message`);
    assert.equal(res.code, CLI_ERRORS[code].exit, `${where}: exit status`);
    assert.notEqual(res.code, 0);
    return parsed.error as { code: string; message: string; fix?: string; problems?: unknown };
  };

  it('every command reports its failures as JSON on stderr with a stable code and a non-zero exit', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'fg-cli-err-'));
    dirs.push(dir);
    const env = { FG_DATA_DIR: dir };
    const closedPort = await freePort();
    const tried = new Set<string>();
    const check = async (args: string[], code: keyof typeof CLI_ERRORS, extraEnv: Record<string, string> = env) => {
      tried.add(args[0]!);
      return failsWith(args, code, extraEnv);
    };

    await check(['frobnicate'], 'usage');
    const refused = await check(['serve'], 'config_invalid', { FG_ENV: 'prod', FG_API_KEY: 'k' });
    assert.ok(Array.isArray(refused.problems) && refused.problems.some((p) => String(p).includes('FG_API_KEY')), 'the problems are listed');
    await check(['migrate'], 'unavailable', { FG_DB_URL: `postgres://fg@127.0.0.1:${closedPort}/fg` });
    await check(['config', 'frob'], 'usage');
    await check(['tenants', 'create', 'unknown'], 'invalid_input');
    assert.equal((await runCli(['tenants', 'create', 'acme'], env)).code, 0);
    await check(['tenants', 'create', 'acme'], 'conflict');
    await check(['keys', 'revoke', '--tenant', 'acme', 'key_abcdefghjkmn'], 'not_found');
    await check(['receipts', 'issue', '--tenant', 'acme', '--track', 'ccna', '--subject', 'alice'], 'forbidden', { ...env, BILLING_MODE: 'stripe' });
    await check(['observe', '--kind', 'nope'], 'usage');
    await check(['verify', '--tenant', 'acme', '--log', 'nope'], 'usage');
    await check(['verify-verdict', 'score.json'], 'usage');
    await check(['template', 'import', path.join(dir, 'missing.clab.yml')], 'invalid_file');
    const lab = await check(['lab', 'up', path.join(dir, 'missing.yaml')], 'invalid_file');
    assert.match(JSON.stringify(lab.problems), /cannot read/);
    await check(['lab', 'down', 'scn_abcdefghjkmn'], 'not_found');

    assert.deepEqual([...tried].filter((c) => c !== 'frobnicate').sort(), COMMANDS.map((c) => c.name).sort(), 'each command has its error path tried');
  });

  it('without --json the same failures stay human: error and fix lines, same exit status', async () => {
    const res = await runCli(['keys', 'list']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /^error: --tenant <id> is required for 'keys list'\nfix: see 'frostgate keys --help'\n$/);
    // Arguments after -- belong to the lab command, not to frostgate.
    const exec = await runCli(['lab', 'exec', '--', 'echo', '--json']);
    assert.equal(exec.code, 2);
    assert.match(exec.stderr, /^error: expected: frostgate lab exec/);
  });

  it('README documents the closed set of error codes, each with its exit status', async () => {
    const { readFile } = await import('node:fs/promises');
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const rows = [...readme.matchAll(/^\| `([a-z_]+)` \| (\d) \| [^|]+ \|$/gm)].map((m) => [m[1], Number(m[2])]);
    assert.deepEqual(
      rows.sort(),
      Object.entries(CLI_ERRORS)
        .map(([code, spec]) => [code, spec.exit])
        .sort(),
    );
  });
});
