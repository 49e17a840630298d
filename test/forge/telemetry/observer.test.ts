import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from 'nats';
import { ObserverHub, toLogLine } from '../../../src/forge/telemetry/hub.js';
import { PLATFORM_TENANT } from '../../../src/forge/telemetry/events.js';
import { createWorkerModule } from '../../../src/forge/worker/module.js';
import { startTestApp, testConfig } from '../../helpers/app.js';
import { freePort, startThrowawayNats } from '../../helpers/servers.js';
import { forgeTestEnv } from '../spawn/helpers.js';
import { TerminalClient, signIn, type AccessRig } from '../access/helpers.js';
import { createPlatform } from '../../../src/platform/platform.js';

/**
 * The observer hub on a real NATS server: a platform publishes lab lifecycle events, learner
 * terminal sessions, grading results and (a worker agent) heartbeats on fg.telemetry.<tenant>.<kind>;
 * the hub's real subscription turns each into one JSON log line labelled by tenant and scenario.
 */
test('the observer hub sees every telemetry kind from a running platform, as labelled JSON lines', { timeout: 180_000 }, async (t) => {
  const nats = await startThrowawayNats();
  const fx = forgeTestEnv({ FG_NATS_URL: nats.url, FG_WORKER_HEARTBEAT_MS: '200' });
  const nc = await connect({ servers: nats.url });
  const lines: Array<Record<string, unknown>> = [];
  const hub = new ObserverHub(nc, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  await hub.start();
  const app = await startTestApp({ env: fx.env });
  const workerPlatform = await createPlatform(testConfig({ ...fx.env, FG_WORKER_ID: 'obs-worker' }), { embeddedDir: 'memory' });
  t.after(async () => {
    await workerPlatform.close();
    await app.close();
    await hub.stop();
    await nc.close();
    await fx.cleanup();
    await nats.stop();
    await nats.dispose();
  });
  await createWorkerModule(workerPlatform);

  const port = await freePort();
  await app.app.listen({ host: '127.0.0.1', port });
  const base = `http://127.0.0.1:${port}`;
  const headers = { 'x-api-key': app.adminKey, 'content-type': 'application/json' };
  const ex = await fetch(`${base}/v1/entitlements/exchange`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ receipt: fx.receipt({ tenant: app.tenantId, subject: 'olga', track: 'netplus' }) }),
  });
  assert.equal(ex.status, 201, await ex.text());
  const spawned = await fetch(`${base}/v1/spawn`, {
    method: 'POST',
    headers: { ...headers, 'x-client-id': 'portal' },
    body: JSON.stringify({ track: 'netplus', subject: 'olga', request_id: 'obs-1' }),
  });
  const body = (await spawned.json()) as { scenario_id: string; access_token: string };
  assert.equal(spawned.status, 201, JSON.stringify(body));
  const scenarioId = body.scenario_id;

  // A learner's terminal: signed in with the access token, a shell on h1, ended by `exit`.
  const rig = { baseUrl: base, origin: base } as AccessRig;
  const cookie = await signIn(rig, scenarioId, body.access_token);
  const term = await TerminalClient.connect(rig, scenarioId, 'h1', cookie);
  await term.waitFor('ready', () => term.session);
  term.input('exit\n');
  await term.waitClosed(30_000);

  const graded = await fetch(`${base}/internal/scenario/${scenarioId}/complete`, { method: 'POST', headers, body: JSON.stringify({ reason: 'submit' }) });
  assert.equal(graded.status, 200, await graded.text());

  const seen = (pred: (l: Record<string, unknown>) => boolean) => lines.find(pred);
  const deadline = Date.now() + 30_000;
  const wanted: Array<[string, (l: Record<string, unknown>) => boolean]> = [
    ['lab provisioning', (l) => l.kind === 'lab' && l.event === 'provisioning' && l.scenario_id === scenarioId],
    ['lab running', (l) => l.kind === 'lab' && l.event === 'running' && l.scenario_id === scenarioId],
    ['lab scored', (l) => l.kind === 'lab' && l.event === 'scored' && l.scenario_id === scenarioId],
    ['session started', (l) => l.kind === 'session' && l.event === 'started' && l.scenario_id === scenarioId],
    ['session ended', (l) => l.kind === 'session' && l.event === 'ended' && l.scenario_id === scenarioId],
    ['grading', (l) => l.kind === 'grading' && l.event === 'graded' && l.scenario_id === scenarioId],
    ['heartbeat', (l) => l.kind === 'heartbeat' && l.worker_id === 'obs-worker'],
  ];
  while (wanted.some(([, p]) => !seen(p)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(
    wanted.filter(([, p]) => !seen(p)).map(([name]) => name),
    [],
    `events not seen; lines: ${JSON.stringify(lines.slice(-20))}`,
  );
  // Labels a log pipeline indexes: tenant and scenario (and track) on every scenario event.
  for (const l of lines.filter((x) => x.scenario_id === scenarioId)) {
    assert.equal(l.tenant_id, app.tenantId);
    assert.equal(l.logger, 'frostgate.telemetry');
    assert.match(String(l.time), /^\d{4}-\d\d-\d\dT/);
  }
  assert.equal(seen((l) => l.kind === 'grading')!.track, 'netplus');
  assert.equal((seen((l) => l.kind === 'grading')!.details as { percent: number }).percent, 100);
  assert.equal(seen((l) => l.kind === 'heartbeat')!.tenant_id, PLATFORM_TENANT);
  assert.equal(hub.rejected, 0);

  // Garbage and events claiming another tenant than their subject's are dropped, never written.
  nc.publish(`fg.telemetry.${app.tenantId}.lab`, Buffer.from('not json'));
  nc.publish(`fg.telemetry.${app.tenantId}.lab`, Buffer.from(JSON.stringify({ kind: 'lab', event: 'running', tenant_id: 'someone-else' })));
  await nc.flush();
  while (hub.rejected < 2 && Date.now() < deadline + 10_000) await new Promise((r) => setTimeout(r, 20));
  assert.equal(hub.rejected, 2);
  assert.deepEqual(
    lines.filter((l) => l.tenant_id === 'someone-else' || (l.tenant_id !== app.tenantId && l.kind !== 'heartbeat')),
    [],
  );
});

test('toLogLine files an event under its subject tenant and refuses a mismatch or a wrong kind', () => {
  const data = (o: object) => Buffer.from(JSON.stringify(o));
  const line = toLogLine(
    'fg.telemetry.acme.lab',
    data({ kind: 'lab', event: 'running', tenant_id: 'acme', scenario_id: 's1', track: 'ccna', at: '2026-01-01T00:00:00.000Z' }),
  );
  assert.deepEqual(JSON.parse(line!), {
    time: '2026-01-01T00:00:00.000Z',
    level: 'info',
    logger: 'frostgate.telemetry',
    msg: 'lab running',
    tenant_id: 'acme',
    kind: 'lab',
    event: 'running',
    scenario_id: 's1',
    track: 'ccna',
  });
  assert.equal(toLogLine('fg.telemetry.acme.lab', data({ kind: 'lab', event: 'running', tenant_id: 'other' })), undefined);
  assert.equal(toLogLine('fg.telemetry.acme.lab', data({ kind: 'grading', event: 'graded', tenant_id: 'acme' })), undefined);
});
