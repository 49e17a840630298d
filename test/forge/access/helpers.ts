import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { createAuthModule } from '../../../src/core/auth/module.js';
import { KeyStore } from '../../../src/core/auth/store.js';
import { copyRecordingTo } from '../../../src/forge/access/module.js';
import { createAccessModule } from '../../../src/forge/access/module.js';
import type { AccessModule } from '../../../src/forge/access/routes.js';
import { scoringGradingPort } from '../../../src/forge/access/grading.js';
import type { AccessLimits } from '../../../src/forge/access/limits.js';
import type { GradingPort } from '../../../src/forge/access/types.js';
import { createScoringModule } from '../../../src/forge/scoring/module.js';
import { FilesystemStorage } from '../../../src/platform/storage/filesystem.js';
import type { ObjectStorage } from '../../../src/platform/storage/types.js';
import { createLedgerModule } from '../../../src/ledger/module.js';
import { Orchestrator } from '../../../src/forge/orchestrator/service.js';
import { ScenarioStore, type Scenario } from '../../../src/forge/orchestrator/store.js';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { DatabaseReplayGuard } from '../../../src/forge/tokens/replay.js';
import { loadTokenSigningKey } from '../../../src/forge/tokens/signing-key.js';
import { ScenarioTokens } from '../../../src/forge/tokens/scenario-tokens.js';
import { loadTemplate, type LabTemplate } from '../../../src/forge/templates/load.js';
import { TemplateCatalog } from '../../../src/forge/templates/catalog.js';
import { buildServer, type App } from '../../../src/platform/http/server.js';
import { createPlatform, type Platform } from '../../../src/platform/platform.js';
import { testConfig } from '../../helpers/app.js';

export const NETPLUS_TEMPLATE = path.resolve(import.meta.dirname, '../../../templates/netplus-two-subnets.yaml');

export interface AccessRig {
  readonly platform: Platform;
  readonly app: App;
  readonly baseUrl: string;
  readonly origin: string;
  readonly orchestrator: Orchestrator;
  readonly runtime: NetnsLabRuntime;
  readonly tokens: ScenarioTokens;
  readonly catalog: TemplateCatalog;
  readonly access: AccessModule;
  readonly tenantId: string;
  readonly storageDir: string;
  /** Stops the server, removes the labs, the database and the directories. */
  close(): Promise<void>;
  /** Builds a lab from the template for this rig's tenant. */
  createLab(template: LabTemplate): Promise<Scenario>;
  /** An access token for the scenario (default: 30 minutes, subject learner-1). */
  issue(scenarioId: string, opts?: { ttlS?: number; subject?: string }): Promise<string>;
  /** A lab session token (what the fg_access cookie holds once a link was opened). */
  session(scenarioId: string, opts?: { ttlS?: number; subject?: string }): Promise<string>;
}

export interface RigOptions {
  readonly limits?: Partial<AccessLimits>;
  /** Grade through the real scoreboard module (FilesystemStorage on the rig's storage dir). */
  readonly grading?: boolean;
  readonly extendMinutes?: number;
  /** Another object store recordings are copied to (as to an S3 bucket). */
  readonly publishTo?: ObjectStorage;
}

/**
 * A server with the real auth gate and the access plugin on a free loopback port, scenarios in
 * an in-memory database, labs in Linux namespaces of this test's own runtime: all removed after.
 */
export async function makeAccessRig(opts: RigOptions = {}): Promise<AccessRig> {
  const platform = await createPlatform(testConfig(), { embeddedDir: 'memory' });
  const stateDir = mkdtempSync(path.join(tmpdir(), 'fg-access-labs-'));
  const storageDir = mkdtempSync(path.join(tmpdir(), 'fg-access-storage-'));
  const runtime = new NetnsLabRuntime({ stateDir });
  const tenantId = `t-${randomBytes(4).toString('hex')}`;
  await new KeyStore(platform.db).createTenant(tenantId);
  const store = new ScenarioStore(platform.db);
  const catalog = new TemplateCatalog();
  const orchestrator = new Orchestrator({ store, runtime, catalog });
  const key = await loadTokenSigningKey({ keyPath: undefined, dataDir: undefined });
  const tokens = new ScenarioTokens(key, new DatabaseReplayGuard(platform.db));
  const auth = createAuthModule(platform);
  let grading: GradingPort | undefined;
  if (opts.grading) {
    const ledger = await createLedgerModule(platform);
    const scoring = await createScoringModule(platform, {
      bindTenant: auth.bindTenant,
      audit: ledger.audit,
      ledger: ledger.ledger,
      catalog,
      runtime,
      storage: new FilesystemStorage(storageDir),
    });
    grading = scoringGradingPort(scoring.scoring);
  }
  const access = createAccessModule({
    tokens,
    scenarios: orchestrator,
    runtime,
    templates: catalog,
    storageDir,
    ...(grading ? { grading } : {}),
    ...(opts.extendMinutes !== undefined ? { extendMinutes: opts.extendMinutes } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.publishTo ? { publishRecording: copyRecordingTo(opts.publishTo, storageDir) } : {}),
  });
  let app: App | undefined;
  const close = async () => {
    await app?.close();
    await runtime.reconcile(new Set());
    await platform.close();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(storageDir, { recursive: true, force: true });
  };
  try {
    app = await buildServer(platform, { role: 'test', version: 'test', gate: auth.gate, plugins: [{ name: 'forge-access', plugin: access.plugin }] });
    await app.listen({ host: '127.0.0.1', port: 0 });
  } catch (err) {
    await close();
    throw err;
  }
  const port = (app.server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    platform,
    app: app,
    baseUrl,
    origin: baseUrl,
    orchestrator,
    runtime,
    tokens,
    catalog,
    access,
    tenantId,
    storageDir,
    close,
    createLab: (template) => orchestrator.create(tenantId, template, 'learner-1'),
    issue: async (scenarioId, o = {}) => {
      const issued = await tokens.issue('access', { tenant: tenantId, subject: o.subject ?? 'learner-1', scenarioId, track: 'netplus' }, o.ttlS);
      return issued.token;
    },
    session: async (scenarioId, o = {}) => {
      const issued = await tokens.issue('session', { tenant: tenantId, subject: o.subject ?? 'learner-1', scenarioId, track: 'netplus' }, o.ttlS);
      return issued.token;
    },
  };
}

export async function netplusTemplate(): Promise<LabTemplate> {
  return loadTemplate(NETPLUS_TEMPLATE);
}

/** Follows the access link like a browser's first load; returns the cookie pair it set. */
export async function signIn(rig: AccessRig, scenarioId: string, token: string): Promise<string> {
  const res = await fetch(`${rig.baseUrl}/v1/access/${scenarioId}?token=${encodeURIComponent(token)}`, { redirect: 'manual' });
  if (res.status !== 303) throw new Error(`sign-in answered ${res.status}: ${await res.text()}`);
  const cookie = res.headers.get('set-cookie');
  if (!cookie) throw new Error('no cookie set');
  return cookie.split(';')[0]!;
}

/** A terminal client over the real WebSocket protocol, collecting output and control messages. */
export class TerminalClient {
  readonly controls: Array<Record<string, unknown>> = [];
  output = '';
  closed: { code: number; reason: string } | undefined;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.output += Buffer.from(data as Buffer).toString('utf8');
      else this.controls.push(JSON.parse(Buffer.from(data as Buffer).toString('utf8')) as Record<string, unknown>);
    });
    ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString() }));
  }

  static connect(
    rig: AccessRig,
    scenarioId: string,
    device: string,
    cookie: string | undefined,
    opts: { session?: string; origin?: string; cols?: number; rows?: number } = {},
  ): Promise<TerminalClient> {
    const q = new URLSearchParams({ cols: String(opts.cols ?? 100), rows: String(opts.rows ?? 30) });
    if (opts.session) q.set('session', opts.session);
    const ws = new WebSocket(`${rig.baseUrl.replace('http', 'ws')}/v1/access/${scenarioId}/terminal/${device}?${q.toString()}`, {
      headers: { ...(cookie ? { cookie } : {}), origin: opts.origin ?? rig.origin },
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new TerminalClient(ws)));
      ws.once('unexpected-response', (_req, res) => reject(new UpgradeRefused(res.statusCode ?? 0)));
      ws.once('error', reject);
    });
  }

  get session(): string | undefined {
    return this.controls.find((c) => c.type === 'ready')?.session as string | undefined;
  }

  input(data: string): void {
    this.ws.send(JSON.stringify({ type: 'input', data }));
  }

  async waitFor<T>(what: string, probe: () => T | undefined, deadlineMs = 15_000): Promise<T> {
    const end = Date.now() + deadlineMs;
    for (;;) {
      const v = probe();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > end)
        throw new Error(
          `timed out waiting for ${what}; output so far: ${JSON.stringify(this.output.slice(-500))}, ` +
            `controls ${JSON.stringify(this.controls)}, closed ${JSON.stringify(this.closed)}`,
        );
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  waitOutput(pattern: RegExp, deadlineMs?: number): Promise<RegExpMatchArray> {
    return this.waitFor(`output ${pattern}`, () => this.output.match(pattern) ?? undefined, deadlineMs);
  }

  waitClosed(deadlineMs?: number): Promise<{ code: number; reason: string }> {
    return this.waitFor('close', () => this.closed, deadlineMs);
  }
}

export class UpgradeRefused extends Error {
  constructor(readonly status: number) {
    super(`upgrade refused with HTTP ${status}`);
  }
}

/** Polls until `probe` yields a value or the deadline passes. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, deadlineMs = 15_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
