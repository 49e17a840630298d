import assert from 'node:assert/strict';
import type { DemoUser } from '../../../src/core/console/embedded-idp.js';
import { createPlatform, type Platform } from '../../../src/platform/platform.js';
import { ensureBootstrapAdmin } from '../../../src/core/auth/bootstrap.js';
import { buildRole, type RunningRole } from '../../../src/roles.js';
import type { RoleName } from '../../../src/role-names.js';
import { LogCapture, testConfig } from '../../helpers/app.js';
import { createThrowawayDatabase } from '../../helpers/postgres.js';

/** A clock the sessions expire by, moved by the test. */
export class TestClock {
  private offsetMs = 0;
  readonly now = (): Date => new Date(Date.now() + this.offsetMs);
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export interface ConsoleRig {
  readonly baseUrl: string;
  readonly platform: Platform;
  readonly role: RunningRole;
  readonly adminKey: string;
  readonly tenantId: string;
  readonly clock: TestClock;
  readonly users: readonly DemoUser[];
  readonly logs: LogCapture;
  user(name: 'alice' | 'bob'): DemoUser;
  close(): Promise<void>;
}

/**
 * A whole FrostGate (role `all` unless named) listening on a free loopback port, with the embedded
 * OpenID provider and its demo users, on PGlite in memory or a throwaway Postgres database.
 */
export async function startConsoleRig(options: { env?: Record<string, string>; role?: RoleName; db?: 'embedded' | 'postgres' } = {}): Promise<ConsoleRig> {
  const pgdb = options.db === 'postgres' ? await createThrowawayDatabase() : undefined;
  const logs = new LogCapture();
  const config = testConfig({ FG_LOG_LEVEL: 'info', ...(pgdb ? { FG_DB_URL: pgdb.url } : {}), ...options.env });
  const clock = new TestClock();
  const platform = await createPlatform(config, { embeddedDir: 'memory', logDestination: logs });
  try {
    const role = await buildRole(platform, options.role ?? 'all', { consoleClock: clock.now });
    const boot = await ensureBootstrapAdmin(platform.db, config.bootstrapTenant, role.ledger.audit);
    const address = await role.app.listen({ host: '127.0.0.1', port: 0 });
    assert.ok(role.console, 'the role serves the console');
    const started = await role.console.start(address);
    const users = started.demoUsers;
    return {
      baseUrl: address,
      platform,
      role,
      adminKey: boot.key!,
      tenantId: boot.tenantId,
      clock,
      users,
      logs,
      user: (name) => users.find((u) => u.username === name)!,
      async close() {
        await platform.close();
        await pgdb?.drop();
      },
    };
  } catch (err) {
    await platform.close();
    await pgdb?.drop();
    throw err;
  }
}

/** Cookies per host, as a browser keeps them (paths and expiry ignored: each test is short). */
export class CookieJar {
  private readonly byHost = new Map<string, Map<string, string>>();
  /** Every Set-Cookie line seen, for attribute checks. */
  readonly setCookies: string[] = [];

  header(url: string): string | undefined {
    const jar = this.byHost.get(new URL(url).host);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  store(url: string, res: Response): void {
    const host = new URL(url).host;
    const jar = this.byHost.get(host) ?? new Map<string, string>();
    this.byHost.set(host, jar);
    for (const line of res.headers.getSetCookie()) {
      this.setCookies.push(line);
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || /max-age=0\b/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
  }

  get(url: string, name: string): string | undefined {
    return this.byHost.get(new URL(url).host)?.get(name);
  }
}

/** One request with the jar's cookies, redirects not followed. */
export async function send(jar: CookieJar, url: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
  const cookie = jar.header(url);
  const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), ...(cookie ? { cookie } : {}) } });
  jar.store(url, res);
  return res;
}

/**
 * Signs `user` in the way a browser does: /login, the IdP's login form, its redirects, the
 * callback. `headers` go with every request to FrostGate (not to the IdP). Returns the last
 * answer of FrostGate's callback and the jar.
 */
export async function signIn(
  rig: ConsoleRig,
  user: { username: string; password: string },
  headers: Record<string, string> = {},
): Promise<{ jar: CookieJar; callback: Response }> {
  const jar = new CookieJar();
  const ours = (url: string) => url.startsWith(rig.baseUrl);
  let res = await send(jar, `${rig.baseUrl}/login`, { headers });
  let url = new URL(res.headers.get('location')!, rig.baseUrl).href;
  for (let hop = 0; hop < 12; hop++) {
    if (ours(url)) {
      res = await send(jar, url, { headers });
      if (new URL(url).pathname === '/auth/callback') return { jar, callback: res };
    } else {
      res = await send(jar, url);
      if (res.status === 200 && /\/interaction\/[^/]+$/.test(new URL(url).pathname)) {
        // The IdP's login form: post the credentials as the browser would.
        res = await send(jar, `${url}/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ username: user.username, password: user.password }).toString(),
        });
        if (res.status !== 303) return { jar, callback: res };
      }
    }
    const location = res.headers.get('location');
    if (!location) return { jar, callback: res };
    url = new URL(location, url).href;
  }
  throw new Error('sign-in did not reach the callback');
}

/** An API call with the session's cookie (and its CSRF token when given). */
export async function call(
  rig: ConsoleRig,
  jar: CookieJar,
  method: string,
  path: string,
  body?: unknown,
  extra: Record<string, string> = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test reads whatever JSON the server answered
): Promise<{ status: number; json: any }> {
  const res = await send(jar, `${rig.baseUrl}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...extra },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

/** The session's CSRF token, as the console page reads it. */
export async function csrfOf(rig: ConsoleRig, jar: CookieJar): Promise<string> {
  const me = await call(rig, jar, 'GET', '/console/session');
  assert.equal(me.status, 200, JSON.stringify(me.json));
  return me.json.csrf_token as string;
}
