import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { signReceipt } from '../../src/forge/spawn/receipts.js';
import { ROOT } from '../helpers/cli.js';
import { freePort } from '../helpers/servers.js';

/**
 * `npm run test:deploy`: the compose stack for real. A private dockerd (its data root cached under
 * FG_DEPLOY_CACHE, default ~/.cache/frostgate/deploy, so the mmdebstrap bases are built once), the
 * images built by deploy/image/build-services.sh and build.sh, a copy of deploy/ brought up on
 * free loopback ports with deploy/bootstrap.sh (secrets, migrations, the orchestrator's key), every
 * role's /health/ready awaited, one /defend through core and one lab spawned through spawn, built
 * by the worker container. Torn down always (docker-compose down -v), failure or not. Prints the
 * time of each step. Not part of `npm test`: CI runs it when the image inputs change (.ci/run).
 */

const run = promisify(execFile);
const CACHE = process.env.FG_DEPLOY_CACHE ?? path.join(homedir(), '.cache', 'frostgate', 'deploy');
const started = Date.now();
const timings: Array<[string, number]> = [];
let mark = started;
function step(name: string): void {
  const now = Date.now();
  timings.push([name, (now - mark) / 1000]);
  mark = now;
  console.log(`== ${name} done in ${((now - started) / 1000).toFixed(0)} s since start`);
}

async function dockerAnswers(env: NodeJS.ProcessEnv): Promise<boolean> {
  try {
    await run('docker', ['info', '--format', '{{.ServerVersion}}'], { env, timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** A dockerd of our own on a private socket, no iptables, bridge or forwarding: the host's networking is untouched. */
async function startDockerd(): Promise<{ env: NodeJS.ProcessEnv; stop(): Promise<void> }> {
  mkdirSync(CACHE, { recursive: true });
  const exec = mkdtempSync(path.join(tmpdir(), 'fg-deploy-exec-'));
  const socket = path.join(exec, 'docker.sock');
  const env = { ...process.env, DOCKER_HOST: `unix://${socket}` };
  const log: string[] = [];
  const daemon: ChildProcess = spawn(
    '/usr/sbin/dockerd',
    [
      '--host',
      `unix://${socket}`,
      '--data-root',
      path.join(CACHE, 'root'),
      '--exec-root',
      exec,
      '--pidfile',
      path.join(exec, 'dockerd.pid'),
      '--iptables=false',
      '--ip6tables=false',
      '--ip-forward=false',
      '--ip-masq=false',
      '--bridge=none',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  daemon.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
  daemon.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  const stop = async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      const exited = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      const killer = setTimeout(() => daemon.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(killer);
    }
    // dockerd leaves its default network namespace mounted under the exec root.
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(`${exec}/`));
    for (const m of mounts.reverse()) await run('umount', ['-l', m]).catch(() => undefined);
    rmSync(exec, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  while (!(await dockerAnswers(env))) {
    if (daemon.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`dockerd did not start (a data root in ${CACHE} is used by one daemon at a time):\n${log.join('').slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250)); // waiting on the daemon's start
  }
  return { env, stop };
}

/** Runs a command with its output shown, prefixed; rejects with the tail of it on failure. */
function shown(label: string, cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      for (const line of d.toString().split('\n')) if (line.trim()) process.stdout.write(`  [${label}] ${line}\n`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${label}: ${cmd} ${args.join(' ')} exited ${code ?? signal}\n${out.slice(-4000)}`));
    });
  });
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, detail: () => Promise<string> = async () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} (${lastError})\n${await detail()}`);
    await new Promise((r) => setTimeout(r, 1000)); // polling containers that start on their own
  }
}

const ROLES = { core: 8080, admin: 8081, spawn: 8082, orchestrator: 8083, worker: 8084, scoreboard: 8086 } as const;
const PUBLISHED = ['core', 'admin', 'spawn', 'scoreboard'] as const;

test('the compose stack: built here, up on loopback, every role ready, a decision and a lab through it, torn down', { timeout: 60 * 60_000 }, async (t) => {
  assert.ok(existsSync('/usr/sbin/dockerd') || process.env.DOCKER_HOST, 'needs docker.io (dockerd) or DOCKER_HOST');
  // An existing daemon named by DOCKER_HOST is used as it is; otherwise a private one.
  const ours = process.env.DOCKER_HOST && (await dockerAnswers(process.env)) ? undefined : await startDockerd();
  const env: NodeJS.ProcessEnv = ours ? ours.env : { ...process.env };
  const project = `fgdeploy${randomBytes(4).toString('hex')}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'fg-deploy-'));
  const stack = path.join(dir, 'deploy');
  const compose = (...args: string[]) =>
    run('docker-compose', ['--compatibility', '-p', project, '-f', 'compose.yml', ...args], { cwd: stack, env, maxBuffer: 64 << 20 });
  t.after(async () => {
    // Always: the stack, its volumes and networks, then our daemon and the copy; each step whatever the others did.
    if (existsSync(path.join(stack, 'compose.yml'))) {
      const down = await compose('down', '-v', '--remove-orphans', '-t', '10').catch((err: Error) => ({ stdout: '', stderr: err.message }));
      console.log(`== teardown: ${down.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    }
    await ours?.stop().catch((err: Error) => console.log(`== stopping dockerd: ${err.message}`));
    rmSync(dir, { recursive: true, force: true });
    console.log(`== test:deploy took ${((Date.now() - started) / 1000).toFixed(0)} s: ${timings.map(([n, s]) => `${n} ${s.toFixed(0)} s`).join(', ')}`);
  });
  step('docker daemon');

  await shown('services image', 'bash', ['deploy/image/build-services.sh'], { cwd: ROOT, env, timeoutMs: 45 * 60_000 });
  await shown('frostgate image', 'bash', ['deploy/image/build.sh'], { cwd: ROOT, env, timeoutMs: 45 * 60_000 });
  step('images');

  // The bundle as an operator gets it: no secrets, free ports, their IdP's settings.
  cpSync(path.join(ROOT, 'deploy'), stack, { recursive: true });
  for (const f of readdirSync(path.join(stack, 'secrets'))) if (f !== 'generate.sh' && f !== '.gitignore') rmSync(path.join(stack, 'secrets', f));
  writeFileSync(path.join(stack, 'secrets', 'FG_OIDC_CLIENT_SECRET'), randomBytes(24).toString('hex'));
  const ports: Record<string, number> = {};
  for (const role of PUBLISHED) ports[role] = await freePort();
  Object.assign(env, {
    COMPOSE_PROJECT_NAME: project,
    CORE_PORT: String(ports.core),
    ADMIN_PORT: String(ports.admin),
    SPAWN_PORT: String(ports.spawn),
    SCOREBOARD_PORT: String(ports.scoreboard),
    PROMETHEUS_PORT: String(await freePort()),
    // The console's IdP: only its settings are needed to start (discovery happens at sign-in,
    // which the console's browser tests cover); nothing here contacts it.
    OIDC_ISSUER: 'https://idp.example.test',
    OIDC_CLIENT_ID: 'frostgate-console',
  });
  await shown('bootstrap', 'bash', ['bootstrap.sh'], { cwd: stack, env, timeoutMs: 15 * 60_000 });
  step('bootstrap and up');

  const logsOf = async (service: string) => (await compose('logs', '--no-color', '--tail', '40', service).catch((e: Error) => ({ stdout: e.message }))).stdout;
  const statusOf = async () => (await compose('ps').catch((e: Error) => ({ stdout: e.message }))).stdout;
  for (const role of Object.keys(ROLES) as Array<keyof typeof ROLES>) {
    await until(
      `${role} /health/ready`,
      10 * 60_000,
      async () => {
        if ((PUBLISHED as readonly string[]).includes(role)) {
          const res = await fetch(`http://127.0.0.1:${ports[role]}/health/ready`, { signal: AbortSignal.timeout(5000) });
          return res.status === 200 ? true : undefined;
        }
        // Not published: asked from inside its own container.
        await compose('exec', '-T', role, 'curl', '-fsS', '-m', '5', `http://127.0.0.1:${ROLES[role]}/health/ready`);
        return true;
      },
      async () => `${await statusOf()}\n${await logsOf(role)}`,
    );
    console.log(`  ${role} ready`);
  }
  step('every role ready');

  // A key for the bootstrap tenant, minted as an operator would.
  const minted = await compose(
    'run',
    '--rm',
    'migrate',
    'keys',
    'create',
    '--tenant',
    'default',
    '--scopes',
    'defend:write,decisions:read,forge:spawn,forge:operate',
    '--json',
  );
  const key = /"key":\s*"(fg_[^"]+)"/.exec(minted.stdout)?.[1];
  assert.ok(key, minted.stdout);
  const call = async (role: (typeof PUBLISHED)[number], method: string, url: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${ports[role]}${url}`, {
      method,
      headers: { 'x-api-key': key, ...(body ? { 'content-type': 'application/json' } : {}), 'x-client-id': 'test-deploy' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
  };

  // A key minted by another process is known to core once its key index refreshes.
  await until(
    'core to know the minted key',
    60_000,
    async () => ((await call('core', 'GET', '/decisions?limit=1')).status === 200 ? true : undefined),
    async () => `${JSON.stringify((await call('core', 'GET', '/decisions?limit=1')).body)}\n${await logsOf('core')}`,
  );
  const minute = Date.now() - 60_000;
  let decision: Record<string, unknown> = {};
  for (let s = 0; s < 6; s++) {
    const res = await call('core', 'POST', '/defend', {
      source: 'sshd',
      event_type: 'auth.failure',
      occurred_at: new Date(minute + s * 1000).toISOString(),
      payload: { service: 'ssh', src_ip: '100.64.99.1', username: `u${s}` },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    decision = res.body;
  }
  assert.match(String(decision.decision_id), /^dec_/);
  assert.ok(Number.isInteger(decision.ledger_index));
  const listed = await call('core', 'GET', `/decisions/${String(decision.decision_id)}`);
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  assert.equal((listed.body.integrity as { status: string }).status, 'match');
  step('a decision through core');

  const receiptSecret = readFileSync(path.join(stack, 'secrets', 'RECEIPT_HMAC_SECRET'), 'utf8').trim();
  const receipt = signReceipt(
    {
      receipt_id: `rcp_${randomBytes(6).toString('hex')}`,
      tenant: 'default',
      subject: 'deploy-learner',
      track: 'netplus',
      tier: 'pro',
      credits: 1,
      expires_at: Math.floor(Date.now() / 1000) + 3600,
    },
    receiptSecret,
  );
  const exchanged = await call('spawn', 'POST', '/v1/entitlements/exchange', { receipt });
  assert.equal(exchanged.status, 201, JSON.stringify(exchanged.body));
  const spawned = await call('spawn', 'POST', '/v1/spawn', { track: 'netplus', subject: 'deploy-learner', request_id: project });
  assert.equal(spawned.status, 201, JSON.stringify(spawned.body));
  const scenarioId = String(spawned.body.scenario_id);
  const running = await until(
    `lab ${scenarioId} running`,
    10 * 60_000,
    async () => {
      const res = await call('spawn', 'GET', `/v1/scenarios/${scenarioId}`);
      if (res.body.state === 'failed') throw new Error(`the lab failed: ${JSON.stringify(res.body)}`);
      return res.body.state === 'running' ? res.body : undefined;
    },
    async () => `${await logsOf('worker')}\n${await logsOf('orchestrator')}`,
  );
  assert.equal(running.state, 'running');
  step('a lab spawned and running');
});
