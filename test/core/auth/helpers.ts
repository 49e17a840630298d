import type { FastifyPluginAsync } from 'fastify';
import { createAuthModule } from '../../../src/core/auth/module.js';
import { ensureBootstrapAdmin } from '../../../src/core/auth/bootstrap.js';
import { SCOPES, type Scope } from '../../../src/platform/auth/scopes.js';
import type { AuthModule, AuthModuleOptions } from '../../../src/core/auth/module.js';
import type { BindTenant } from '../../../src/platform/auth/tenant.js';
import { buildServer, type App } from '../../../src/platform/http/server.js';
import { createPlatform, type Platform } from '../../../src/platform/platform.js';
import { LogCapture, testConfig } from '../../helpers/app.js';

/** A route per scope, `GET /probe/<scope with : as ->`, and a tenant-bound one; each counts its calls. */
export const probePath = (scope: Scope) => `/probe/${scope.replace(':', '-')}`;

/** Probe routes: one per scope and `GET /probe/tenant` (binds the tenant); each counts its calls in `calls`. */
export function probeRoutes(calls: Map<string, number>, bindTenant: BindTenant): FastifyPluginAsync {
  return async (app) => {
    for (const scope of SCOPES) {
      const path = probePath(scope);
      app.get(path, { config: { scopes: [scope] } }, async (request) => {
        calls.set(path, (calls.get(path) ?? 0) + 1);
        return { ok: true, tenant: request.principal?.tenantId ?? null, subject: request.principal?.subject ?? null };
      });
    }
    app.get('/probe/tenant', { config: { scopes: [] } }, async (request) => {
      calls.set('/probe/tenant', (calls.get('/probe/tenant') ?? 0) + 1);
      return { tenant: bindTenant(request) };
    });
  };
}

export interface AuthNode {
  readonly app: App;
  readonly platform: Platform;
  readonly auth: AuthModule;
  readonly logs: LogCapture;
  /** Handler invocations per probe path: proof of what reached a handler. */
  readonly calls: Map<string, number>;
  /** Admin key of the bootstrap tenant, when this node created it (the first node on a database). */
  readonly adminKey: string | undefined;
  readonly tenantId: string;
  failOpens: number;
  close(): Promise<void>;
}

export interface AuthNodeOptions {
  readonly env?: Record<string, string>;
  readonly keyCacheTtlMs?: number;
  /** Also mount the key and tenant routes (POST/GET/DELETE /keys ...). */
  readonly keyRoutes?: boolean;
  /** Build the server without the auth gate (benchmark baseline). */
  readonly noGate?: boolean;
}

/**
 * One platform node with the real auth module and probe routes, on its own config: several nodes
 * may share one database (FG_DB_URL) and one NATS (FG_NATS_URL), like processes in a deployment.
 * Logs are captured at info level.
 */
export async function startAuthNode(options: AuthNodeOptions = {}): Promise<AuthNode> {
  const logs = new LogCapture();
  const config = testConfig({ FG_LOG_LEVEL: 'info', ...options.env });
  const platform = await createPlatform(config, { embeddedDir: 'memory', logDestination: logs });
  try {
    const calls = new Map<string, number>();
    const node = { failOpens: 0 };
    const auth = createAuthModule(platform, {
      ...(options.keyCacheTtlMs !== undefined ? { keyCacheTtlMs: options.keyCacheTtlMs } : {}),
      onFailOpen: () => void node.failOpens++,
    });
    const probes = probeRoutes(calls, auth.bindTenant);
    const app = await buildServer(platform, {
      role: 'auth-test',
      version: '0.0.0-test',
      ...(options.noGate ? {} : { gate: auth.gate }),
      plugins: [...(options.keyRoutes ? [auth.routes] : []), { name: 'probes', plugin: probes }],
    });
    platform.onClose(() => app.close());
    const boot = await ensureBootstrapAdmin(platform.db, config.bootstrapTenant);
    return Object.assign(node, {
      app,
      platform,
      auth,
      logs,
      calls,
      adminKey: boot.key,
      tenantId: boot.tenantId,
      close: () => platform.close(),
    });
  } catch (err) {
    await platform.close();
    throw err;
  }
}

/** The value of one Prometheus sample in /metrics text, 0 when absent. */
export async function metricValue(app: App, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await app.inject({ url: '/metrics' })).body;
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
    if (got === want) return Number(m[3]);
  }
  return 0;
}

/** Security log lines about authentication. */
export function authEvents(logs: LogCapture): Array<Record<string, unknown>> {
  return logs.lines.filter((l) => l.logger === 'frostgate.security' && l.type === 'auth_event');
}

/** Polls `check` until it returns true or the deadline passes (no fixed sleeps). */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export type { AuthModuleOptions };
