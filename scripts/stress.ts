// Bounded stress run: `npm run stress -- [--duration 30s] [--rate N] [--cut redis|postgres|nats]`.
//
// Loopback only, and it stops by itself. It starts its own throwaway Redis, Postgres and NATS and
// its own FrostGate (`frostgate serve` in a child process), measures the rate the server sustains
// (closed loop), calls a tenth of that "normal", then drives 10x normal open loop for the duration
// with a mix of valid sensor events (/defend) and batches (/ingest) from random tenants, random
// invalid keys, missing keys, cross-tenant claims, oversized and malformed bodies. One dependency
// is cut at 30% of the run and restored at 60%. Afterwards every batch answered 202 must be
// decided, and every decision (answered 200, or from a batch) is checked in the database and in
// its tenant's ledger (inclusion proof against a fresh checkpoint). Prints a table and writes
// docs/STRESS_TEST_REPORT.md. Exit code 1 when a write was lost or an answer broke its expectation.
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/platform/duration.js';
import { ROOT } from '../test/helpers/cli.js';
import { freePort } from '../test/helpers/servers.js';
import { call, createTenants, findLostWrites, sensorEvent, settleBatches, sleep, spawnServer, startDependencies, unknownKey, type Dependencies, type Outcome, type ServerProcess, type TenantClient } from '../test/chaos/harness.js';

type Dependency = 'redis' | 'postgres' | 'nats';
const DEPENDENCIES: readonly Dependency[] = ['redis', 'postgres', 'nats'];

/** What a request is, and the answers it may get. Anything else is a failure of the run. */
type Kind = 'valid' | 'valid_batch' | 'invalid_key' | 'no_key' | 'cross_tenant' | 'oversized' | 'malformed_json' | 'invalid_event';

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

/**
 * Expected answers per kind. While a dependency is down valid requests may also get 503 (fail
 * closed), and the others may too where the check needs the dependency (the key lookup needs the
 * database). 429 for invalid keys is the brute-force guard: all traffic comes from 127.0.0.1.
 */
function expected(kind: Kind, down: boolean): readonly number[] {
  const unavailable = down ? [503] : [];
  switch (kind) {
    case 'valid':
      return [200, ...unavailable];
    case 'valid_batch':
      return [202, ...unavailable];
    case 'invalid_key':
      return [401, 429, ...unavailable];
    case 'no_key':
      return [401];
    case 'cross_tenant':
      return [403, ...unavailable];
    case 'oversized':
      return [413, ...unavailable];
    case 'malformed_json':
      return [400, ...unavailable];
    case 'invalid_event':
      return [400, 422, ...unavailable];
  }
}

interface Sample {
  readonly kind: Kind;
  readonly tenant: string;
  readonly status: number;
  readonly ms: number;
  readonly sentAt: number;
  readonly phase: Phase;
  readonly decisionId?: string;
  readonly ledgerIndex?: number;
  readonly batchId?: string;
  readonly eventCount?: number;
}

type Phase = 'before' | 'down' | 'after';

function pickKind(): Kind {
  let r = Math.random();
  for (const [kind, share] of MIX) {
    if (r < share) return kind;
    r -= share;
  }
  return 'valid';
}

const BATCH_SIZE = 5;

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
      return { tenant, ...(await call(baseUrl, 'POST', '/defend', client.key, undefined, JSON.stringify({ ...event, payload: { user_agent: 'x'.repeat(size) } }))) };
    }
    case 'malformed_json':
      return { tenant, ...(await call(baseUrl, 'POST', '/defend', client.key, undefined, pick(['{"source":', '{"source":"x",}', 'not json', '[1,2', '{"a":"\\u12"}']))) };
    case 'invalid_event':
      return { tenant, ...(await call(baseUrl, 'POST', '/defend', client.key, pick([{ ...sensorEvent(), occurred_at: 'yesterday' }, { ...sensorEvent(), payload: { src_ip: '999.1.1.1' } }, { ...sensorEvent(), event_type: 'x' }, { source: 'sshd' }]))) };
  }
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const fmt = (n: number, digits = 0) => n.toFixed(digits);

/** Closed loop, `concurrency` valid requests at a time: the rate the server sustains. */
async function calibrate(baseUrl: string, clients: readonly TenantClient[], ms: number, concurrency: number): Promise<{ rps: number; p99: number }> {
  const latencies: number[] = [];
  const end = Date.now() + ms;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < end) {
      const t0 = performance.now();
      const res = await call(baseUrl, 'POST', '/defend', pick(clients).key, sensorEvent());
      if (res.status === 200) latencies.push(performance.now() - t0);
    }
  }));
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / (ms / 1000), p99: quantile(latencies, 0.99) };
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
  readonly cut: Dependency;
  readonly out: string;
  readonly tenants: number;
  readonly maxInFlight: number;
}

function parseOptions(argv: string[]): RunOptions {
  const { values } = parseArgs({
    args: argv,
    options: { duration: { type: 'string', default: '30s' }, rate: { type: 'string' }, cut: { type: 'string', default: 'redis' }, out: { type: 'string', default: path.join(ROOT, 'docs/STRESS_TEST_REPORT.md') }, tenants: { type: 'string', default: '8' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log('Usage: npm run stress -- [--duration 30s] [--rate N] [--cut redis|postgres|nats] [--tenants 8] [--out docs/STRESS_TEST_REPORT.md]');
    process.exit(0);
  }
  const durationMs = parseDuration(values.duration!);
  if (durationMs > 10 * 60_000) throw new Error('--duration is at most 10m (the run is bounded)');
  if (!DEPENDENCIES.includes(values.cut as Dependency)) throw new Error(`--cut must be one of ${DEPENDENCIES.join(', ')}`);
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  if (rate !== undefined && !(rate > 0 && rate <= 20_000)) throw new Error('--rate must be a number of requests per second in (0, 20000]');
  return { durationMs, rate, cut: values.cut as Dependency, out: path.resolve(values.out!), tenants: Math.max(2, Number(values.tenants)), maxInFlight: 512 };
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const args = process.argv.slice(2).join(' ');
  const command = process.env.npm_lifecycle_event === 'stress' ? `npm run stress${args ? ` -- ${args}` : ''}` : `npx tsx scripts/stress.ts ${args}`.trim();
  const machine = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memGiB: os.totalmem() / 2 ** 30, node: process.version, os: `${os.type()} ${os.release()}` };
  console.log(`stress: ${machine.cpu}, ${machine.cores} cores, ${fmt(machine.memGiB, 1)} GiB, Node ${machine.node}`);

  let deps: Dependencies | undefined;
  let server: ServerProcess | undefined;
  const stopAll = async () => {
    await server?.kill('SIGKILL');
    await deps?.dispose();
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  // Bounded whatever happens: a hung dependency or check cannot keep the run (or its servers) alive.
  const watchdog = setTimeout(() => {
    console.error('stress: watchdog: the run took far longer than its duration; stopping everything');
    void stopAll().then(() => process.exit(1));
  }, opts.durationMs + 5 * 60_000);
  watchdog.unref();
  try {
    console.log('stress: starting throwaway Redis, Postgres and NATS on loopback');
    deps = await startDependencies();
    server = await spawnServer(await freePort(), { ...deps.env, FG_LOG_LEVEL: 'silent' });
    const baseUrl = server.baseUrl;
    if (!server.adminKey) throw new Error('the server did not print a bootstrap admin key');
    const clients = await createTenants(baseUrl, server.adminKey, opts.tenants, 'stress');
    console.log(`stress: FrostGate at ${baseUrl}, ${clients.length} tenants`);

    console.log('stress: calibrating (5 s closed loop, 32 concurrent valid requests)');
    const calibration = await calibrate(baseUrl, clients, 5_000, 32);
    const normal = calibration.rps / 10;
    const rate = opts.rate ?? normal * 10;
    console.log(`stress: sustained ${fmt(calibration.rps)} req/s (p99 ${fmt(calibration.p99, 1)} ms) -> normal ${fmt(normal, 1)} req/s; driving ${fmt(rate)} req/s for ${opts.durationMs / 1000} s, cutting ${opts.cut}`);

    const samples: Sample[] = [];
    let inFlight = 0;
    let skipped = 0;
    let sent = 0;
    let phase: Phase = 'before';
    const timeline: Array<{ at: number; event: string }> = [];
    const started = Date.now();
    const cutAt = started + opts.durationMs * 0.3;
    const restoreAt = started + opts.durationMs * 0.6;
    const endAt = started + opts.durationMs;
    const pending = new Set<Promise<void>>();

    const sendOne = () => {
      const kind = pickKind();
      const sentAt = Date.now();
      const t0 = performance.now();
      const phaseAtSend = phase;
      inFlight++;
      sent++;
      const p = fire(baseUrl, kind, clients).then((res) => {
        const ms = performance.now() - t0;
        samples.push({ kind, tenant: res.tenant, status: res.status, ms, sentAt, phase: phaseAtSend === 'before' && phase !== 'before' ? phase : phaseAtSend, ...(res.status === 200 && kind === 'valid' ? { decisionId: String(res.body.decision_id), ledgerIndex: Number(res.body.ledger_index) } : {}), ...(res.status === 202 && kind === 'valid_batch' ? { batchId: String(res.body.batch_id), eventCount: Number(res.body.event_count) } : {}) });
      }).finally(() => {
        inFlight--;
        pending.delete(p);
      });
      pending.add(p);
    };

    let lastReport = started;
    let reportedSamples = 0;
    let cutting: Promise<void> | undefined;
    while (Date.now() < endAt) {
      const now = Date.now();
      if (phase === 'before' && now >= cutAt) {
        phase = 'down';
        timeline.push({ at: now - started, event: `stopping ${opts.cut}` });
        cutting = cut(deps, opts.cut).then(() => void timeline.push({ at: Date.now() - started, event: `${opts.cut} stopped` }));
      } else if (phase === 'down' && now >= restoreAt) {
        await cutting;
        phase = 'after';
        timeline.push({ at: now - started, event: `restarting ${opts.cut}` });
        const d = deps;
        void restore(d, opts.cut).then(() => timeline.push({ at: Date.now() - started, event: `${opts.cut} accepting connections` }));
      }
      // Open loop: as many as the schedule says by now, bounded by the in-flight cap.
      const due = Math.floor(((now - started) / 1000) * rate) - sent - skipped;
      for (let i = 0; i < due; i++) {
        if (inFlight >= opts.maxInFlight) skipped++;
        else sendOne();
      }
      if (now - lastReport >= 1000) {
        const recent = samples.slice(reportedSamples);
        reportedSamples = samples.length;
        const by = (pred: (s: Sample) => boolean) => recent.filter(pred).length;
        console.log(
          `  t=${fmt((now - started) / 1000).padStart(3)}s ${phase === 'down' ? `[${opts.cut} DOWN]` : '            '.slice(0, opts.cut.length + 7)} answered ${String(recent.length).padStart(5)}/s  200 ${String(by((s) => s.status === 200)).padStart(5)}  503 ${String(by((s) => s.status === 503)).padStart(4)}  4xx ${String(by((s) => s.status >= 400 && s.status < 500)).padStart(4)}  no answer ${by((s) => s.status === 0)}  in flight ${inFlight}${skipped ? `  skipped ${skipped}` : ''}`,
        );
        lastReport = now;
      }
      await sleep(5);
    }
    console.log(`stress: load stopped; waiting for ${inFlight} requests in flight`);
    await Promise.all(pending);
    if (phase === 'down') await restore(deps, opts.cut); // a run shorter than the schedule still restores
    const elapsedS = (Date.now() - started) / 1000;

    // Recovery: a valid request must succeed again without restarting FrostGate.
    const recoveryStart = Date.now();
    let recovered = false;
    while (Date.now() - recoveryStart < 20_000) {
      if ((await call(baseUrl, 'POST', '/defend', clients[0]!.key, sensorEvent())).status === 200) {
        recovered = true;
        break;
      }
      await sleep(100);
    }

    console.log('stress: checking every accepted decision in the database and the ledger');
    // Batches answered 202 are decided asynchronously: wait for each, then check its decisions too.
    const batchOutcomes: Outcome[] = samples.filter((s) => s.batchId).map((s) => ({ path: 'ingest', tenant: s.tenant, status: 202, startedAt: s.sentAt, endedAt: s.sentAt, batchId: s.batchId!, eventCount: s.eventCount! }));
    const batches = await settleBatches(baseUrl, clients, batchOutcomes, 120_000);
    const accepted = [...samples.filter((s) => s.decisionId).map((s) => ({ tenant: s.tenant, decisionId: s.decisionId!, ledgerIndex: s.ledgerIndex! })), ...batches.decisions];
    const lost = [...batches.lost, ...(await findLostWrites(baseUrl, clients, accepted))];

    const report = summarize(samples, { rate, rateFromFlag: opts.rate !== undefined, normal, calibration, skipped, elapsedS, lost: lost.length, accepted: accepted.length, batches: batchOutcomes.length, recovered, cut: opts.cut, timeline });
    console.log('\n' + report.table);
    const markdown = renderReport({ command, machine, opts, report, lost, date: new Date().toISOString() });
    await writeFile(opts.out, markdown);
    console.log(`\nstress: wrote ${path.relative(process.cwd(), opts.out)}`);
    const ok = lost.length === 0 && report.unexpected === 0 && recovered;
    console.log(ok ? 'stress: PASS' : `stress: FAIL (lost writes ${lost.length}, unexpected answers ${report.unexpected}, recovered ${recovered})`);
    return ok ? 0 : 1;
  } finally {
    await stopAll();
  }
}

interface Summary {
  readonly table: string;
  readonly markdownTable: string;
  readonly unexpected: number;
  readonly facts: Record<string, string>;
  readonly unexpectedExamples: string[];
}

function summarize(samples: readonly Sample[], run: { rate: number; rateFromFlag: boolean; normal: number; calibration: { rps: number; p99: number }; skipped: number; elapsedS: number; lost: number; accepted: number; batches: number; recovered: boolean; cut: Dependency; timeline: Array<{ at: number; event: string }> }): Summary {
  const statuses = [...new Set(samples.map((s) => s.status))].sort((a, b) => a - b);
  const kinds = MIX.map(([k]) => k);
  const rows: string[][] = [];
  let unexpected = 0;
  const unexpectedExamples: string[] = [];
  for (const kind of kinds) {
    const of = samples.filter((s) => s.kind === kind);
    const lat = of.map((s) => s.ms).sort((a, b) => a - b);
    const bad = of.filter((s) => !expected(kind, s.phase !== 'before').includes(s.status));
    unexpected += bad.length;
    for (const b of bad.slice(0, 3)) unexpectedExamples.push(`${kind} answered ${b.status} (${b.phase})`);
    rows.push([kind, String(of.length), ...statuses.map((st) => String(of.filter((s) => s.status === st).length)), fmt(quantile(lat, 0.5), 1), fmt(quantile(lat, 0.99), 1), String(bad.length)]);
  }
  const all = samples.map((s) => s.ms).sort((a, b) => a - b);
  rows.push(['all', String(samples.length), ...statuses.map((st) => String(samples.filter((s) => s.status === st).length)), fmt(quantile(all, 0.5), 1), fmt(quantile(all, 0.99), 1), String(unexpected)]);
  const header = ['kind', 'requests', ...statuses.map((s) => (s === 0 ? 'no answer' : String(s))), 'p50 ms', 'p99 ms', 'unexpected'];

  const phaseRows = (['before', 'down', 'after'] as const).map((p) => {
    const of = samples.filter((s) => s.phase === p && s.kind === 'valid');
    const lat = of.map((s) => s.ms).sort((a, b) => a - b);
    return [p === 'down' ? `${run.cut} down (from the stop order)` : p, String(of.length), String(of.filter((s) => s.status === 200).length), String(of.filter((s) => s.status === 503).length), fmt(quantile(lat, 0.99), 1)];
  });
  const phaseHeader = ['phase (valid requests)', 'requests', '200', '503', 'p99 ms'];

  const errors = samples.filter((s) => s.status === 0 || (s.status >= 500 && s.status !== 503)).length;
  const facts: Record<string, string> = {
    'sustained rate (calibration, closed loop, 32 concurrent)': `${fmt(run.calibration.rps)} req/s, p99 ${fmt(run.calibration.p99, 1)} ms`,
    'normal rate (sustained / 10)': `${fmt(run.normal, 1)} req/s`,
    [run.rateFromFlag ? 'driven rate (set by --rate)' : 'driven rate (10x normal)']: `${fmt(run.rate)} req/s offered (${fmt(run.rate / run.normal, 1)}x normal), ${fmt(samples.length / run.elapsedS)} req/s answered`,
    'not sent (in-flight cap of 512 reached)': String(run.skipped),
    'errors (no answer, or 5xx other than 503)': String(errors),
    'accepted writes checked': `${run.accepted} decisions (${samples.filter((s) => s.decisionId).length} answered 200 by /defend, ${run.accepted - samples.filter((s) => s.decisionId).length} from ${run.batches} batches answered 202 by /ingest)`,
    'lost writes (200/202 not decided, not in DB or not provably in the ledger)': String(run.lost),
    'unexpected answers': String(unexpected),
    'recovered without restart': run.recovered ? 'yes' : 'NO',
    'timeline': run.timeline.map((t) => `${fmt(t.at / 1000, 1)} s ${t.event}`).join('; '),
  };
  const text = (h: string[], r: string[][]) => {
    const widths = h.map((c, i) => Math.max(c.length, ...r.map((row) => row[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    return [line(h), widths.map((w) => '-'.repeat(w)).join('  '), ...r.map(line)].join('\n');
  };
  const md = (h: string[], r: string[][]) => [`| ${h.join(' | ')} |`, `|${h.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`, ...r.map((row) => `| ${row.join(' | ')} |`)].join('\n');
  const factsText = Object.entries(facts).map(([k, v]) => `${k}: ${v}`).join('\n');
  return {
    table: `${text(header, rows)}\n\n${text(phaseHeader, phaseRows)}\n\n${factsText}`,
    markdownTable: `${md(header, rows)}\n\n${md(phaseHeader, phaseRows)}`,
    unexpected,
    facts,
    unexpectedExamples,
  };
}

function renderReport(r: { command: string; machine: { cpu: string; cores: number; memGiB: number; node: string; os: string }; opts: RunOptions; report: Summary; lost: ReadonlyArray<{ tenant: string; decisionId: string; why: string }>; date: string }): string {
  const facts = Object.entries(r.report.facts).map(([k, v]) => `| ${k} | ${v} |`).join('\n');
  return `# Stress test report

Written by \`scripts/stress.ts\` from the run below; every figure is from that run. Rerun with
the same command to reproduce (figures vary with the machine and its load).

- Command: \`${r.command}\`
- Date: ${r.date}
- Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memGiB.toFixed(1)} GiB RAM, ${r.machine.os}, Node ${r.machine.node}
- Setup: FrostGate \`serve\` (role all, profile test) in its own process on 127.0.0.1, with a throwaway
  Redis (password), Postgres cluster and NATS of the run's own on loopback ports. The load
  generator runs in the harness process on the same machine (they share the cores).
- Dependency cut: **${r.opts.cut}**, stopped at 30% of the ${r.opts.durationMs / 1000} s run and restarted at 60%
  (Postgres: immediate shutdown, like a crash; Redis and NATS: SIGKILL).

## What "normal" means here

The harness first measures the rate this server sustains on this machine: 5 s closed loop, 32
concurrent valid \`POST /defend\` requests. *Normal* is a tenth of that, a node running at 10% of
its capacity. The run then offers 10x normal (the measured capacity) open loop, so the server is
saturated on purpose while a dependency goes away and comes back.

## Mix

${MIX.map(([k, share]) => `- ${k}: ${(share * 100).toFixed(0)}%`).join('\n')}

Valid requests are sensor events of random tenants (${r.opts.tenants} tenants, one key each) on \`POST /defend\`,
and batches of ${BATCH_SIZE} such events on \`POST /ingest\` (valid_batch). Invalid keys are
random well-formed \`fg_\` keys; all traffic comes from 127.0.0.1, so the brute-force guard refuses
them with 429 once the source's budget is spent, while valid keys from the same address go on.
Oversized bodies are 70 KiB (over the 64 KiB limit of /defend) or 2 MiB. Expected answers:
valid 200 and valid_batch 202 (503 while the cut dependency is down or recovering); invalid key
401/429 (503 while the database is down: the key cannot be looked up); no key 401;
cross-tenant claim 403; oversized 413; malformed JSON 400; invalid event 400/422; 503 is
accepted for the non-valid kinds only while a dependency is down. Any other answer counts as
unexpected.

## Results

${r.report.markdownTable}

| figure | value |
| --- | --- |
${facts}
${r.report.unexpectedExamples.length > 0 ? `\nUnexpected answers (first ones): ${r.report.unexpectedExamples.join('; ')}\n` : ''}${r.lost.length > 0 ? `\nLost writes (first ones): ${r.lost.slice(0, 10).map((l) => `${l.tenant}/${l.decisionId}: ${l.why}`).join('; ')}\n` : ''}
"Lost writes" checks every write accepted during the run. Each batch answered 202 must be
decided completely (\`GET /ingest/batches/{id}\` completed, one decision per event). Each decision,
answered 200 by /defend or produced by such a batch: \`GET /decisions/{id}\` finds it (with the
ledger index /defend answered), the tenant's ledger has it at that index, and an inclusion proof
against a freshly signed checkpoint verifies. It must be 0.
`;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`stress: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
