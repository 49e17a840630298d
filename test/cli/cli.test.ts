import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { COMMANDS } from '../../src/cli/main.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { freePort } from '../helpers/servers.js';

describe('frostgate CLI', () => {
  const dirs: string[] = [];
  const tempDir = async () => {
    const d = await mkdtemp(path.join(tmpdir(), 'fg-cli-'));
    dirs.push(d);
    return d;
  };
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('--help lists every command, and every command has complete help', async () => {
    const top = await runCli(['--help']);
    assert.equal(top.code, 0);
    for (const c of COMMANDS) assert.match(top.stdout, new RegExp(`\\n  ${c.name}\\s+\\S`));
    for (const c of COMMANDS) assert.equal((await c.load()).name, c.name, 'the list loads the command it names');
    for (const c of COMMANDS) {
      const res = await runCli([c.name, '--help']);
      assert.equal(res.code, 0, `${c.name} --help`);
      assert.match(res.stdout, new RegExp(`^Usage: frostgate ${c.name}`));
      assert.match(res.stdout, /-h, --help/);
    }
  });

  it('an unknown command or option names the fix', async () => {
    const res = await runCli(['frobnicate']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /unknown command "frobnicate"[\s\S]*fix: run 'frostgate --help'/);
    const opt = await runCli(['serve', '--rol', 'core']);
    assert.equal(opt.code, 2);
    assert.match(opt.stderr, /--rol[\s\S]*frostgate serve --help/);
    const role = await runCli(['serve', '--role', 'nope']);
    assert.equal(role.code, 2);
    assert.match(role.stderr, /unknown role "nope"; roles: all, core/);
  });

  it('config check prints the masked config and exits 1 on what production refuses', async () => {
    const ok = await runCli(['config', 'check', '--json'], { FG_ENV: 'dev', FG_API_KEY: 'dev-only-global-key-value' });
    assert.equal(ok.code, 0);
    const report = JSON.parse(ok.stdout);
    assert.equal(report.would_start, true);
    assert.equal(report.config.auth.globalKey, '****');
    assert.ok(report.production_problems.some((p: string) => p.includes('FG_API_KEY')));

    const prod = await runCli(['config', 'check'], { FG_ENV: 'prod', FG_REDIS_URL: 'redis://:hunter2hunter2@127.0.0.1:1' });
    assert.equal(prod.code, 1);
    assert.match(prod.stdout, /REFUSED: \d+ problem/);
    assert.match(prod.stdout, /embedded database/);
    assert.ok(!prod.stdout.includes('hunter2hunter2'), 'the Redis password is masked');
  });

  it('config docs prints every variable', async () => {
    const res = await runCli(['config', 'docs']);
    assert.equal(res.code, 0);
    for (const name of ['FG_ENV', 'FG_HOST', 'FG_PORT', 'FG_DATA_DIR', 'FG_DB_URL', 'FG_REDIS_URL', 'FG_NATS_URL'])
      assert.match(res.stdout, new RegExp(`\`${name}\``));
  });

  it('migrate applies once and then nothing, on the embedded database', async () => {
    const dir = await tempDir();
    const first = await runCli(['migrate', '--json'], { FG_DATA_DIR: dir });
    assert.equal(first.code, 0, first.stderr);
    const a = JSON.parse(first.stdout);
    assert.ok(a.applied.length >= 1);
    const second = await runCli(['migrate', '--json'], { FG_DATA_DIR: dir });
    assert.deepEqual(JSON.parse(second.stdout).applied, []);
  });

  it('serve refuses an unsafe production configuration, listing every problem, exit non-zero', async () => {
    const res = await runCli(['serve'], { FG_ENV: 'prod', FG_API_KEY: 'k', FG_EGRESS_DRY_RUN: 'true' });
    assert.equal(res.code, 1);
    for (const re of [/embedded database/, /FG_API_KEY/, /FG_EGRESS_DRY_RUN/, /FG_LEDGER_KEY_PATH/, /RECEIPT_HMAC_SECRET/]) assert.match(res.stderr, re);
  });

  it('tenants and keys commands create a tenant and a key that works, list without secrets, revoke', async () => {
    const dir = await tempDir();
    const env = { FG_DATA_DIR: dir };
    assert.equal((await runCli(['tenants', 'create', 'acme', '--name', 'Acme'], env)).code, 0);
    const bad = await runCli(['tenants', 'create', 'unknown'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /'unknown' is not allowed/);
    const created = await runCli(['keys', 'create', '--tenant', 'acme', '--scopes', 'decisions:read,defend:write', '--expires-in', '90d', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout);
    assert.match(key.key, /^fg_[a-z2-9]{12}_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(key.scopes, ['decisions:read', 'defend:write']);
    const listed = await runCli(['keys', 'list', '--tenant', 'acme', '--json'], env);
    assert.ok(!listed.stdout.includes(key.key.slice(16)), 'list never shows secrets');
    assert.equal(JSON.parse(listed.stdout).keys[0].id, key.id);
    const badScope = await runCli(['keys', 'create', '--tenant', 'acme', '--scopes', 'root'], env);
    assert.equal(badScope.code, 1);
    assert.match(badScope.stderr, /unknown scope\(s\) root; valid scopes: defend:write/);
    const revoked = await runCli(['keys', 'revoke', '--tenant', 'acme', key.id, '--json'], env);
    assert.equal(revoked.code, 0);
    assert.ok(JSON.parse(revoked.stdout).revoked_at);
  });

  it('serve starts embedded, prints the URL, data dir and a bootstrap key once, and exits 0 on SIGTERM', async (t) => {
    const dir = await tempDir();
    const port = await freePort();
    const start = async () => {
      // Its own object store too: a dev server publishes its verdict key and ledger checkpoints there.
      const child = spawnCli(['serve'], { FG_DATA_DIR: dir, FG_STORAGE_DIR: `${dir}/storage`, FG_PORT: String(port), FG_LOG_LEVEL: 'info' });
      // A failed assertion must not leave the server running (the test file would never end).
      t.after(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout!.resume();
      const deadline = Date.now() + 180_000; // a hang guard only: startup is slow on a loaded machine
      while (!stderr.includes('Stop with Ctrl-C')) {
        if (child.exitCode !== null) throw new Error(`serve exited early: ${stderr}`);
        if (Date.now() > deadline) throw new Error(`serve did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return { child, stderr: () => stderr };
    };
    const first = await start();
    assert.match(first.stderr(), new RegExp(`http://127\\.0\\.0\\.1:${port}`));
    assert.ok(first.stderr().includes(dir));
    const key = /\n {4}(fg_\S+)\n/.exec(first.stderr())?.[1];
    assert.ok(key, 'bootstrap key printed');
    const res = await fetch(`http://127.0.0.1:${port}/health/detailed`, { headers: { 'x-api-key': key } });
    assert.equal(res.status, 200);
    const exit = new Promise<number | null>((resolve) => first.child.once('exit', (code) => resolve(code)));
    first.child.kill('SIGTERM');
    assert.equal(await exit, 0);

    const second = await start();
    assert.ok(!/\n {4}fg_\S+\n/.test(second.stderr()), 'the key is shown only once');
    assert.match(second.stderr(), /was issued on an earlier start/);
    // The restart hint names the HTTP call, since the CLI cannot open the database this server holds...
    assert.ok(!second.stderr().includes('frostgate keys create'), second.stderr());
    const hint = /\n {4}(curl .*)\n/.exec(second.stderr())?.[1];
    assert.ok(hint, `a curl line is printed: ${second.stderr()}`);
    assert.match(second.stderr(), /POST \/keys/);
    // ...and that call, made as printed with the key of the first start, creates a key.
    const body = /-d '([^']+)'/.exec(hint)![1]!;
    const target = / (http:\/\/\S+)$/.exec(hint)![1]!;
    assert.equal(target, `http://127.0.0.1:${port}/keys`);
    assert.match(hint, /-H "X-API-Key: \$FG_ADMIN_KEY"/);
    const made = await fetch(target, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body });
    assert.equal(made.status, 201, await made.clone().text());
    assert.match(((await made.json()) as { key: string }).key, /^fg_/);
    // While the server holds the embedded database, every command that would open it says so, as JSON with --json.
    for (const args of [['keys', 'create', '--tenant', 'default', '--scopes', 'defend:write'], ['migrate']]) {
      const held = await runCli([...args, '--json'], { FG_DATA_DIR: dir });
      assert.equal(held.code, 1, `${args.join(' ')}: ${held.stderr}`);
      assert.equal(held.stdout, '', 'nothing on stdout');
      const { error } = JSON.parse(held.stderr) as { error: { code: string; message: string; fix: string } };
      assert.equal(error.code, 'database_locked', args.join(' '));
      assert.match(error.message, /in use by process \d+/);
      assert.match(error.fix, /HTTP API/);
    }
    const exit2 = new Promise<number | null>((resolve) => second.child.once('exit', (code) => resolve(code)));
    second.child.kill('SIGINT');
    assert.equal(await exit2, 0);
  });
});

describe('README', () => {
  it('starts with the two commands and carries the configuration table of every variable, as config docs prints it', async () => {
    const { readFile } = await import('node:fs/promises');
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const firstBlocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].slice(0, 2).map((m) => m[1]!.trim());
    assert.deepEqual(firstBlocks, ['npm ci && npm start', 'npm test']);
    const docs = await runCli(['config', 'docs']);
    assert.ok(readme.includes(docs.stdout.trim()), 'README configuration table is out of date: paste the output of frostgate config docs');
    assert.ok(readme.indexOf('## Configuration') < readme.indexOf('## Command line'), 'configuration comes right after the quick start');
  });
});
