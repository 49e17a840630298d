import { spawn, type ChildProcess } from 'node:child_process';
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
      child = spawn(cmd, args, { stdio: 'ignore' });
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
  const server = throwaway(port, `redis://${auth}127.0.0.1:${port}`, () => ['redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(password ? ['--requirepass', password] : [])]]);
  await server.start();
  return server;
}

/** A NATS server with JetStream of the test's own on a free port. */
export async function startThrowawayNats(): Promise<ThrowawayServer> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'fg-nats-'));
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
  } as ThrowawayServer;
}
