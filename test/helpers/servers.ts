import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port, polling with a deadline. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ThrowawayServer {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function throwaway(port: number, url: string, argv: () => [string, string[]], cleanup?: () => Promise<void>): ThrowawayServer {
  let child: ChildProcess | undefined;
  return {
    port,
    url,
    async start() {
      const [cmd, args] = argv();
      child = trackChild(spawn(cmd, args, { stdio: 'ignore' }));
      await waitForPort(port);
    },
    async stop() {
      await stopChild(child);
      child = undefined;
      await cleanup?.();
    },
  };
}

/** A Redis of the test's own on a free port (so stopping it disturbs nobody). */
export async function startThrowawayRedis(password?: string): Promise<ThrowawayServer> {
  const port = await freePort();
  const auth = password ? `:${encodeURIComponent(password)}@` : '';
  const server = throwaway(port, `redis://${auth}127.0.0.1:${port}`, () => [
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(password ? ['--requirepass', password] : [])],
  ]);
  await server.start();
  return server;
}

/** A NATS server with JetStream of the test's own on a free port. */
export async function startThrowawayNats(): Promise<ThrowawayServer & { dispose(): Promise<void> }> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'fg-nats-'));
  // Kept across stop()/start() (a restarted server finds its streams); gone when the test
  // process ends, whether or not the test called dispose().
  exitHooks.add(() => rmSync(dir, { recursive: true, force: true }));
  const base = throwaway(port, `nats://127.0.0.1:${port}`, () => ['nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir]]);
  await base.start();
  return {
    ...base,
    async stop() {
      await base.stop();
    },
    async start() {
      await base.start();
    },
    // keep the store dir for restarts; removed by dispose()
    ...{ dispose: () => rm(dir, { recursive: true, force: true }) },
  };
}

/**
 * Children started by these helpers, killed when the test process exits however it exits
 * (a failed assertion, an uncaught error): a chaos test must leave no server behind.
 */
const liveChildren = new Set<ChildProcess>();
const exitHooks = new Set<() => void>();
function killLeftovers(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
  for (const hook of exitHooks) hook();
}
process.once('exit', killLeftovers);
// A runner that cancels a test file sends SIGTERM, which skips 'exit': clean up, then die by it.
for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
  if (process.listenerCount(signal) === 0) {
    process.once(signal, () => {
      killLeftovers();
      process.kill(process.pid, signal);
    });
  }
}

/** Tracks a child so it dies with the test process; untracked again once it exits. */
export function trackChild(child: ChildProcess): ChildProcess {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}

function postgresBin(name: string): string {
  const root = '/usr/lib/postgresql';
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', name)))
    .sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error(`no ${name} under ${root}/*/bin (apt-get install postgresql)`);
  return path.join(root, versions[0]!, 'bin', name);
}

/** Runs a Postgres binary as the postgres user when we are root (initdb and postgres refuse root). */
function asPostgresUser(bin: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = trackChild(spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim()}`))));
  });
}

export interface ThrowawayPostgres extends ThrowawayServer {
  /** Stops the server and deletes its data directory. */
  dispose(): Promise<void>;
}

/**
 * A Postgres cluster of the test's own (initdb in a temp directory, trust auth, 127.0.0.1 on a
 * free port). stop() is an immediate shutdown, like a crash: clients lose their connections at
 * once and the next start() runs crash recovery on the same data, so committed rows survive.
 */
export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'fg-pg-'));
  const dataDir = path.join(dir, 'data');
  if (process.getuid?.() === 0) await run('chown', ['postgres:postgres', dir]);
  await run(...asPostgresUser(postgresBin('initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']));
  const pgCtl = postgresBin('pg_ctl');
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c full_page_writes=off -c max_connections=200`;
  let running = false;
  const stopNow = () => {
    // Synchronous on process exit: the postmaster's pid is in its pid file.
    try {
      const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // not running
    }
  };
  const leftover = () => {
    stopNow();
    rmSync(dir, { recursive: true, force: true });
  };
  exitHooks.add(leftover);
  const server: ThrowawayPostgres = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      await run(...asPostgresUser(pgCtl, ['-D', dataDir, '-o', options, '-l', path.join(dir, 'log'), '-w', '-t', '30', 'start']));
      running = true;
      await waitForPort(port);
    },
    async stop() {
      if (!running) return;
      running = false;
      await run(...asPostgresUser(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop']));
    },
    async dispose() {
      await server.stop().catch(() => stopNow());
      exitHooks.delete(leftover);
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await server.start();
  } catch (err) {
    await server.dispose();
    throw err;
  }
  return server;
}
