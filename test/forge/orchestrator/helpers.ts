import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { KeyStore } from '../../../src/core/auth/store.js';
import { Orchestrator } from '../../../src/forge/orchestrator/service.js';
import { ScenarioStore } from '../../../src/forge/orchestrator/store.js';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { parseTemplate, type LabTemplate } from '../../../src/forge/templates/load.js';
import { TemplateCatalog } from '../../../src/forge/templates/catalog.js';
import { openDatabase, type Database } from '../../../src/platform/db/database.js';

export interface Rig {
  readonly db: Database;
  readonly runtime: NetnsLabRuntime;
  readonly store: ScenarioStore;
  readonly orchestrator: Orchestrator;
  readonly tenantId: string;
  /** The injected clock: tests move time with `clock.now = ...`. */
  readonly clock: { now: Date };
}

/** A migrated in-memory database, a tenant, a netns runtime on its own state dir; all removed after the test. */
export async function makeRig(t: TestContext): Promise<Rig> {
  const db = await openDatabase({ embeddedDir: 'memory', migrate: true });
  const stateDir = mkdtempSync(path.join(tmpdir(), 'fg-orch-'));
  const runtime = new NetnsLabRuntime({ stateDir });
  t.after(async () => {
    await runtime.reconcile(new Set());
    rmSync(stateDir, { recursive: true, force: true });
    await db.close();
  });
  const tenantId = `t-${randomBytes(4).toString('hex')}`;
  await new KeyStore(db).createTenant(tenantId);
  const clock = { now: new Date('2030-01-01T00:00:00Z') };
  const store = new ScenarioStore(db, () => clock.now);
  const orchestrator = new Orchestrator({ store, runtime, catalog: new TemplateCatalog(), clock: () => clock.now });
  return { db, runtime, store, orchestrator, tenantId, clock };
}

/** A one-network, two-host template: quick to build. */
export function tinyTemplate(id = 'tiny-lab'): LabTemplate {
  return parseTemplate(`id: ${id}
title: Tiny
track: netplus
tier: basic
ttl_minutes: 30
topology:
  networks: [{ name: lan, cidr: 10.77.0.0/24 }]
  devices:
    - { name: h1, kind: host, interfaces: [{ network: lan, address: 10.77.0.10/24 }] }
    - { name: h2, kind: host, interfaces: [{ network: lan, address: 10.77.0.11/24 }] }
tasks: [nothing]
successCriteria: [{ id: c1, description: d, points: 1, check: { type: command, device: h1, run: "true" } }]
`);
}

/** Namespaces of a scenario still present on the host. */
export function namespacesOf(runtime: NetnsLabRuntime, scenarioId: string): string[] {
  const prefix = runtime.namesFor(scenarioId).prefix;
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}
