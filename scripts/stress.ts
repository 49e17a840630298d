// Bounded stress run: `npm run stress -- [--duration 30s] [--rate N] [--cut redis|postgres|nats] [--tenants 8]`.
//
// Loopback only, and it stops by itself. It starts its own throwaway Redis, Postgres and NATS on
// free ports (never the machine's shared servers) and its own FrostGate (`frostgate serve` in a
// child process), measures the rate the server sustains (closed loop) and calls a tenth of that
// "normal". Then, for each dependency in turn (Redis, Postgres, NATS; --cut runs one), it drives
// 10x normal open loop for the duration with a mix of valid sensor events (/defend) and batches
// (/ingest) from random tenants, random invalid keys, missing keys, cross-tenant claims,
// oversized and malformed bodies; the dependency is cut at 30% of the run and restored at 60%.
// After each cut every batch answered 202 must be decided, and every decision (answered 200, or
// from a batch) is checked in the database and in its tenant's ledger (inclusion proof against a
// fresh checkpoint). Prints progress every second and a table per cut, and rewrites
// docs/STRESS_TEST_REPORT.md (scripts/stress-report.ts). Exit code 1 when a write was lost, an
// answer broke its expectation, or the server did not recover.
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/platform/duration.js';
import { ROOT } from '../test/helpers/cli.js';
import { freePort } from '../test/helpers/servers.js';
import {
  call,
  createTenants,
  findLostWrites,
  sensorEvent,
  settleBatches,
  sleep,
  spawnServer,
  startDependencies,
  unknownKey,
  type Dependencies,
  type LostWrite,
  type Outcome,
  type ServerProcess,
  type TenantClient,
} from '../test/chaos/harness.js';
import { fmt, quantile, renderReport, summarizeCut, type Calibration, type CutRun, type Dependency, type Kind, type Sample } from './stress-report.js';

const DEPENDENCIES: readonly Dependency[] = ['redis', 'postgres', 'nats'];

/** Share of each kind in the mix (sums to 1). */
const MIX: ReadonlyArray<[Kind, number]> = [
  ['valid', 0.65],
  ['valid_batch', 0.05],
  ['invalid_key', 0.1],
  ['no_key', 0.03],
  ['cross_tenant', 0.04],
  ['oversized', 0.04],
  ['malformed_json', 0.05],
  ['invalid_event', 0.04],
];

const BATCH_SIZE = 5;
const MAX_IN_FLIGHT = 512;

function pickKind(): Kind {
  let r = Math.random();
  for (const [kind, share] of MIX) {
    if (r < share) return kind;
    r -= share;
  }
  return 'valid';
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/** One request of the given kind; status 0 when no answer came. */
async function fire(baseUrl: string, kind: Kind, clients: readonly TenantClient[]): Promise<{ tenant: string; status: number; body: Record<string, unknown> }> {
  const client = pick(clients);
  const tenant = client.tenant;
  switch (kind) {
    case 'valid':
      return { tenant, ...(await call(baseUrl, 'POST', '/defend', client.key, sensorEvent())) };
    case 'valid_batch':
      return { tenant, ...(await call(baseUrl, 'POST', '/ingest', client.key, { events: Array.from({ length: BATCH_SIZE }, () => sensorEvent()) })) };
    case 'invalid_key':
      return { tenant, ...(await call(baseUrl, 'POST', '/defend', unknownKey(), sensorEvent())) };
    case 'no_key':
      return { tenant, ...(await call(baseUrl, 'POST', '/defend', undefined, sensorEvent())) };
    case 'cross_tenant': {
      const other = clients.find((c) => c.tenant !== tenant) ?? client;
      return { tenant, ...(await call(baseUrl, 'POST', '/defend', client.key, { ...sensorEvent(), tenant_id: other.tenant })) };
    }
    case 'oversized': {
      const event = sensorEvent();
      // Over the 64 KiB body limit of /defend, sometimes far over the server-wide limit.
      const size = Math.random() < 0.8 ? 70 * 1024 : 2 * 1024 * 1024;
      return {
        tenant,
        ...(await call(baseUrl, 'POST', '/defend', client.key, undefined, JSON.stringify({ ...event, payload: { user_agent: 'x'.repeat(size) } }))),
      };
    }
    case 'malformed_json':
      return {
        tenant,
        ...(await call(baseUrl, 'POST', '/defend', client.key, undefined, pick(['{"source":', '{"source":"x",}', 'not json', '[1,2', '{"a":"\\u12"}']))),
      };
    case 'invalid_event':
      return {
        tenant,
        ...(await call(
          baseUrl,
          'POST',
          '/defend',
          client.key,
          pick([
            { ...sensorEvent(), occurred_at: 'yesterday' },
            { ...sensorEvent(), payload: { src_ip: '999.1.1.1' } },
            { ...sensorEvent(), event_type: 'x' },
            { source: 'sshd' },
          ]),
        )),
      };
  }
}

/** Closed loop, `concurrency` valid requests at a time: the rate the server sustains. */
async function calibrate(baseUrl: string, clients: readonly TenantClient[], ms: number, concurrency: number): Promise<Calibration> {
  const latencies: number[] = [];
  const end = Date.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const t0 = performance.now();
        const res = await call(baseUrl, 'POST', '/defend', pick(clients).key, sensorEvent());
        if (res.status === 200) latencies.push(performance.now() - t0);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / (ms / 1000), p99: quantile(latencies, 0.99), concurrency, seconds: ms / 1000 };
}

async function cut(deps: Dependencies, which: Dependency): Promise<void> {
  if (which === 'redis') await deps.redis.stop();
  else if (which === 'postgres') await deps.postgres.stop();
  else await deps.nats.stop();
}

async function restore(deps: Dependencies, which: Dependency): Promise<void> {
  if (which === 'redis') await deps.redis.start();
  else if (which === 'postgres') await deps.postgres.start();
  else await deps.nats.start();
}

interface RunOptions {
  readonly durationMs: number;
  readonly rate: number | undefined;
  readonly cuts: readonly Dependency[];
  readonly out: string;
  readonly tenants: number;
}

function parseOptions(argv: string[]): RunOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '30s' },
      rate: { type: 'string' },
      cut: { type: 'string' },
      out: { type: 'string', default: path.join(ROOT, 'docs/STRESS_TEST_REPORT.md') },
      tenants: { type: 'string', default: '8' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(
      'Usage: npm run stress -- [--duration 30s] [--rate N] [--cut redis|postgres|nats] [--tenants 8] [--out docs/STRESS_TEST_REPORT.md]\n\nWithout --cut, Redis, Postgres and NATS are cut in turn, one run of --duration each.',
    );
    process.exit(0);
  }
  const durationMs = parseDuration(values.duration);
  if (durationMs > 10 * 60_000) throw new Error('--duration is at most 10m (the run is bounded)');
  if (values.cut !== undefined && !DEPENDENCIES.includes(values.cut as Dependency)) throw new Error(`--cut must be one of ${DEPENDENCIES.join(', ')}`);
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  if (rate !== undefined && !(rate > 0 && rate <= 20_000)) throw new Error('--rate must be a number of requests per second in (0, 20000]');
  const tenants = Number(values.tenants);
  if (!Number.isInteger(tenants) || tenants < 2 || tenants > 100) throw new Error('--tenants must be an integer in [2, 100]');
  return { durationMs, rate, cuts: values.cut ? [values.cut as Dependency] : DEPENDENCIES, out: path.resolve(values.out), tenants };
}

/** Waits until the server says every dependency is back (between cuts), failing after the deadline. */
async function untilReady(baseUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await call(baseUrl, 'GET', '/health/ready', undefined)).status !== 200) {
    if (Date.now() > deadline) throw new Error(`the server did not report ready within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

/**
 * First accepted write of `path` sent at or after `since` (epoch ms), probing with one write every
 * 100 ms until the deadline: how long after the dependency returned the server took it again.
 */
async function probeAccepted(
  baseUrl: string,
  client: TenantClient,
  path: '/defend' | '/ingest',
  since: number,
  timeoutMs: number,
): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res =
      path === '/defend'
        ? await call(baseUrl, 'POST', '/defend', client.key, sensorEvent())
        : await call(baseUrl, 'POST', '/ingest', client.key, { events: [sensorEvent()] });
    if (res.status === (path === '/defend' ? 200 : 202)) return Date.now() - since;
    await sleep(100);
  }
  return undefined;
}

/** One cut: 10x normal for the duration, `which` stopped at 30% and restarted at 60%, then every accepted write checked. */
async function runCut(
  baseUrl: string,
  deps: Dependencies,
  clients: readonly TenantClient[],
  which: Dependency,
  rate: number,
  opts: RunOptions,
): Promise<CutRun> {
  const samples: Sample[] = [];
  let inFlight = 0;
  let skipped = 0;
  let sent = 0;
  let phase: Sample['phase'] = 'before';
  const timeline: Array<{ at: number; event: string }> = [];
  const started = Date.now();
  const cutAt = started + opts.durationMs * 0.3;
  const restoreAt = started + opts.durationMs * 0.6;
  const endAt = started + opts.durationMs;
  const pending = new Set<Promise<void>>();
  let restoredAt: number | undefined;

  const sendOne = () => {
    const kind = pickKind();
    const sentAt = Date.now();
    const t0 = performance.now();
    const phaseAtSend = phase;
    inFlight++;
    sent++;
    const p = fire(baseUrl, kind, clients)
      .then((res) => {
        const ms = performance.now() - t0;
        samples.push({
          kind,
          tenant: res.tenant,
          status: res.status,
          ms,
          sentAt,
          endedAt: Date.now(),
          // In flight when the stop order came: its answer may depend on the cut like one sent after it.
          phase: phaseAtSend === 'before' && phase !== 'before' ? 'down' : phaseAtSend,
          ...(res.status === 200 && kind === 'valid' ? { decisionId: String(res.body.decision_id), ledgerIndex: Number(res.body.ledger_index) } : {}),
          ...(res.status === 202 && kind === 'valid_batch' ? { batchId: String(res.body.batch_id), eventCount: Number(res.body.event_count) } : {}),
        });
      })
      .finally(() => {
        inFlight--;
        pending.delete(p);
      });
    pending.add(p);
  };

  let lastReport = started;
  let reportedSamples = 0;
  let cutting: Promise<void> | undefined;
  let restoring: Promise<void> | undefined;
  while (Date.now() < endAt) {
    const now = Date.now();
    if (phase === 'before' && now >= cutAt) {
      phase = 'down';
      timeline.push({ at: now - started, event: `stopping ${which}` });
      cutting = cut(deps, which).then(() => void timeline.push({ at: Date.now() - started, event: `${which} stopped` }));
    } else if (phase === 'down' && now >= restoreAt) {
      await cutting;
      phase = 'after';
      timeline.push({ at: Date.now() - started, event: `restarting ${which}` });
      restoring = restore(deps, which).then(() => {
        restoredAt = Date.now();
        timeline.push({ at: restoredAt - started, event: `${which} accepting connections` });
      });
    }
    // Open loop: as many as the schedule says by now, bounded by the in-flight cap.
    const due = Math.floor(((now - started) / 1000) * rate) - sent - skipped;
    for (let i = 0; i < due; i++) {
      if (inFlight >= MAX_IN_FLIGHT) skipped++;
      else sendOne();
    }
    if (now - lastReport >= 1000) {
      const recent = samples.slice(reportedSamples);
      reportedSamples = samples.length;
      const by = (pred: (s: Sample) => boolean) => String(recent.filter(pred).length);
      const state = phase === 'down' ? `[${which} DOWN]` : phase === 'after' && restoredAt === undefined ? `[${which} STARTING]` : '';
      console.log(
        `  ${which.padEnd(8)} t=${fmt((now - started) / 1000).padStart(3)}s ${state.padEnd(20)} answered ${String(recent.length).padStart(5)}/s  200 ${by((s) => s.status === 200).padStart(5)}  202 ${by((s) => s.status === 202).padStart(4)}  503 ${by((s) => s.status === 503).padStart(4)}  other 4xx ${by((s) => s.status >= 400 && s.status < 500).padStart(4)}  no answer ${by((s) => s.status === 0)}  in flight ${inFlight}${skipped ? `  not sent ${skipped}` : ''}`,
      );
      lastReport = now;
    }
    await sleep(5);
  }
  console.log(`stress: ${which}: load stopped; waiting for ${inFlight} requests in flight`);
  await Promise.all(pending);
  if (phase === 'down') {
    // A run shorter than the schedule still restores.
    await cutting;
    restoring = restore(deps, which).then(() => void (restoredAt = Date.now()));
  }
  await restoring;
  const elapsedS = (Date.now() - started) / 1000;

  // Recovery: writes of both kinds must be accepted again without restarting FrostGate. Taken from
  // the load when it recovered before the run ended, else probed now.
  const since = restoredAt!;
  const firstAccepted = (kind: Kind, status: number) => {
    const after = samples.filter((s) => s.kind === kind && s.status === status && s.sentAt >= since).map((s) => s.endedAt - since);
    return after.length > 0 ? Math.min(...after) : undefined;
  };
  const defendMs = firstAccepted('valid', 200) ?? (await probeAccepted(baseUrl, clients[0]!, '/defend', since, 30_000));
  const ingestMs = firstAccepted('valid_batch', 202) ?? (await probeAccepted(baseUrl, clients[0]!, '/ingest', since, 30_000));
  const refusedAfter = samples.filter(
    (s) => (s.kind === 'valid' || s.kind === 'valid_batch') && s.sentAt >= since && s.status !== (s.kind === 'valid' ? 200 : 202),
  );
  const recovery = {
    defendMs,
    ingestMs,
    refusedAfterReturn: refusedAfter.length,
    lastRefusalMs: refusedAfter.length > 0 ? Math.max(...refusedAfter.map((s) => s.endedAt - since)) : undefined,
  };
  console.log(
    `stress: ${which}: /defend accepted again ${defendMs === undefined ? 'NEVER (30 s)' : `${fmt(defendMs)} ms`}, /ingest ${ingestMs === undefined ? 'NEVER (30 s)' : `${fmt(ingestMs)} ms`} after ${which} accepted connections`,
  );

  console.log(`stress: ${which}: checking every accepted write in the database and the ledger`);
  // Batches answered 202 are decided asynchronously: wait for each, then check its decisions too.
  const batchOutcomes: Outcome[] = samples
    .filter((s) => s.batchId)
    .map((s) => ({ path: 'ingest', tenant: s.tenant, status: 202, startedAt: s.sentAt, endedAt: s.endedAt, batchId: s.batchId!, eventCount: s.eventCount! }));
  const batches = await settleBatches(baseUrl, clients, batchOutcomes, 120_000);
  const defended = samples.filter((s) => s.decisionId).map((s) => ({ tenant: s.tenant, decisionId: s.decisionId!, ledgerIndex: s.ledgerIndex! }));
  const lost: LostWrite[] = [...batches.lost, ...(await findLostWrites(baseUrl, clients, [...defended, ...batches.decisions]))];
  return {
    cut: which,
    samples,
    timeline,
    skipped,
    elapsedS,
    rate,
    durationS: opts.durationMs / 1000,
    recovery,
    lost,
    acceptedDecisions: defended.length + batches.decisions.length,
    defended: defended.length,
    batches: batchOutcomes.length,
    batchDecisions: batches.decisions.length,
  };
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const args = process.argv.slice(2).join(' ');
  const command = process.env.npm_lifecycle_event === 'stress' ? `npm run stress${args ? ` -- ${args}` : ''}` : `npx tsx scripts/stress.ts ${args}`.trim();
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memGiB: os.totalmem() / 2 ** 30,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    load: os.loadavg()[0]!,
  };
  console.log(`stress: ${machine.cpu}, ${machine.cores} cores, ${fmt(machine.memGiB, 1)} GiB, Node ${machine.node}, load average ${fmt(machine.load, 2)}`);

  let deps: Dependencies | undefined;
  let server: ServerProcess | undefined;
  const stopAll = async () => {
    await server?.kill('SIGKILL');
    await deps?.dispose();
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  // Bounded whatever happens: a hung dependency or check cannot keep the run (or its servers) alive.
  const watchdog = setTimeout(
    () => {
      console.error('stress: watchdog: the run took far longer than its duration; stopping everything');
      void stopAll().then(() => process.exit(1));
    },
    opts.cuts.length * (opts.durationMs + 4 * 60_000) + 3 * 60_000,
  );
  watchdog.unref();
  try {
    console.log('stress: starting throwaway Redis, Postgres and NATS on free loopback ports');
    deps = await startDependencies();
    console.log(`stress: Redis :${deps.redis.port}, Postgres :${deps.postgres.port}, NATS :${deps.nats.port}; starting frostgate serve`);
    server = await spawnServer(await freePort(), { ...deps.env, FG_LOG_LEVEL: 'silent' });
    const baseUrl = server.baseUrl;
    if (!server.adminKey) throw new Error('the server did not print a bootstrap admin key');
    const clients = await createTenants(baseUrl, server.adminKey, opts.tenants, 'stress');
    console.log(`stress: FrostGate at ${baseUrl}, ${clients.length} tenants`);

    console.log('stress: calibrating (5 s closed loop, 32 concurrent valid POST /defend)');
    const calibration = await calibrate(baseUrl, clients, 5_000, 32);
    const normal = calibration.rps / 10;
    const rate = opts.rate ?? normal * 10;
    console.log(
      `stress: sustained ${fmt(calibration.rps)} req/s (p99 ${fmt(calibration.p99, 1)} ms) -> normal rate ${fmt(normal, 1)} req/s; driving ${fmt(rate)} req/s for ${opts.durationMs / 1000} s per cut: ${opts.cuts.join(', ')}`,
    );

    const runs: CutRun[] = [];
    for (const which of opts.cuts) {
      await untilReady(baseUrl, 60_000);
      console.log(
        `\nstress: cut ${runs.length + 1}/${opts.cuts.length}: ${which} (stopped at ${fmt((opts.durationMs * 0.3) / 1000)} s, restarted at ${fmt((opts.durationMs * 0.6) / 1000)} s)`,
      );
      const run = await runCut(baseUrl, deps, clients, which, rate, opts);
      runs.push(run);
      const summary = summarizeCut(run, MIX);
      console.log(`\n${summary.table}`);
    }

    const markdown = renderReport({
      command,
      machine,
      opts,
      calibration,
      normal,
      rate,
      rateFromFlag: opts.rate !== undefined,
      runs,
      mix: MIX,
      batchSize: BATCH_SIZE,
      maxInFlight: MAX_IN_FLIGHT,
      date: new Date().toISOString(),
    });
    await writeFile(opts.out, markdown);
    console.log(`\nstress: wrote ${path.relative(process.cwd(), opts.out)}`);
    const failures = runs.flatMap((r) => {
      const s = summarizeCut(r, MIX);
      return [
        ...(r.lost.length > 0 ? [`${r.cut}: ${r.lost.length} lost writes`] : []),
        ...(s.unexpected > 0 ? [`${r.cut}: ${s.unexpected} unexpected answers`] : []),
        ...(r.recovery.defendMs === undefined || r.recovery.ingestMs === undefined ? [`${r.cut}: did not recover`] : []),
      ];
    });
    console.log(failures.length === 0 ? 'stress: PASS' : `stress: FAIL (${failures.join('; ')})`);
    return failures.length === 0 ? 0 : 1;
  } finally {
    await stopAll();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`stress: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
