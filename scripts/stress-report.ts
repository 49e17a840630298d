// Figures and the markdown report of `npm run stress` (scripts/stress.ts): what each answer was
// expected to be, the per-cut tables, and docs/STRESS_TEST_REPORT.md with its remaining risks.
import type { LostWrite } from '../test/chaos/harness.js';

export type Dependency = 'redis' | 'postgres' | 'nats';

/** What a request is, and the answers it may get. Anything else is a failure of the run. */
export type Kind = 'valid' | 'valid_batch' | 'invalid_key' | 'no_key' | 'cross_tenant' | 'oversized' | 'malformed_json' | 'invalid_event';

export interface Sample {
  readonly kind: Kind;
  readonly tenant: string;
  readonly status: number;
  readonly ms: number;
  /** Epoch ms when it was sent and when its answer (or the failure) came. */
  readonly sentAt: number;
  readonly endedAt: number;
  /** Where the cut was when it was sent: before the stop, while down, after the restart began (in flight at the stop order counts as down). */
  readonly phase: 'before' | 'down' | 'after';
  readonly decisionId?: string;
  readonly ledgerIndex?: number;
  readonly batchId?: string;
  readonly eventCount?: number;
}

export interface Calibration {
  readonly rps: number;
  readonly p99: number;
  readonly concurrency: number;
  readonly seconds: number;
}

export interface Recovery {
  /** From "accepting connections" to the first /defend (/ingest) write accepted that was sent after it; undefined: never within 30 s. */
  readonly defendMs: number | undefined;
  readonly ingestMs: number | undefined;
  /** Valid writes sent after the dependency returned and still refused, and when the last of them was answered. */
  readonly refusedAfterReturn: number;
  readonly lastRefusalMs: number | undefined;
}

export interface CutRun {
  readonly cut: Dependency;
  readonly samples: readonly Sample[];
  readonly timeline: ReadonlyArray<{ at: number; event: string }>;
  readonly skipped: number;
  readonly elapsedS: number;
  readonly rate: number;
  readonly durationS: number;
  readonly recovery: Recovery;
  readonly lost: readonly LostWrite[];
  readonly acceptedDecisions: number;
  readonly defended: number;
  readonly batches: number;
  readonly batchDecisions: number;
}

/**
 * Expected answers per kind. While a dependency is down or coming back, valid writes may also get
 * 503 (fail closed), and the others may too where the check needs the dependency (the key lookup
 * needs the database; the rate limit, Redis). 429 for invalid keys is the brute-force guard: all
 * traffic comes from 127.0.0.1.
 */
export function expected(kind: Kind, disturbed: boolean): readonly number[] {
  const unavailable = disturbed ? [503] : [];
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

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export const fmt = (n: number, digits = 0) => n.toFixed(digits);
const ms = (v: number | undefined) => (v === undefined ? 'not within 30 s' : `${fmt(v)} ms`);
const label = (status: number) => (status === 0 ? 'no answer' : String(status));

function textTable(h: string[], r: string[][]): string {
  const widths = h.map((c, i) => Math.max(c.length, ...r.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(h), widths.map((w) => '-'.repeat(w)).join('  '), ...r.map(line)].join('\n');
}

function mdTable(h: string[], r: string[][]): string {
  return [`| ${h.join(' | ')} |`, `|${h.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`, ...r.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

export interface CutSummary {
  readonly table: string;
  readonly markdown: string;
  readonly unexpected: number;
  readonly unexpectedExamples: string[];
  /** Valid writes (/defend and /ingest) refused, by status. */
  readonly refusedValid: Record<string, number>;
  readonly acceptedWrites: number;
  readonly validWrites: number;
  readonly downP99: number;
  readonly errors: number;
}

export function summarizeCut(run: CutRun, mix: ReadonlyArray<[Kind, number]>): CutSummary {
  const samples = run.samples;
  const statuses = [...new Set(samples.map((s) => s.status))].sort((a, b) => a - b);
  const rows: string[][] = [];
  let unexpected = 0;
  const unexpectedExamples: string[] = [];
  for (const [kind] of mix) {
    const of = samples.filter((s) => s.kind === kind);
    const lat = of.map((s) => s.ms).sort((a, b) => a - b);
    const bad = of.filter((s) => !expected(kind, s.phase !== 'before').includes(s.status));
    unexpected += bad.length;
    for (const b of bad.slice(0, 3)) unexpectedExamples.push(`${kind} answered ${label(b.status)} (${b.phase})`);
    rows.push([
      kind,
      String(of.length),
      ...statuses.map((st) => String(of.filter((s) => s.status === st).length)),
      fmt(quantile(lat, 0.5), 1),
      fmt(quantile(lat, 0.99), 1),
      String(bad.length),
    ]);
  }
  const all = samples.map((s) => s.ms).sort((a, b) => a - b);
  rows.push([
    'all',
    String(samples.length),
    ...statuses.map((st) => String(samples.filter((s) => s.status === st).length)),
    fmt(quantile(all, 0.5), 1),
    fmt(quantile(all, 0.99), 1),
    String(unexpected),
  ]);
  const header = ['kind', 'requests', ...statuses.map(label), 'p50 ms', 'p99 ms', 'unexpected'];

  const valid = samples.filter((s) => s.kind === 'valid' || s.kind === 'valid_batch');
  const isAccepted = (s: Sample) => s.status === (s.kind === 'valid' ? 200 : 202);
  const phaseRows = (['before', 'down', 'after'] as const).map((p) => {
    const of = valid.filter((s) => s.phase === p);
    const lat = of.map((s) => s.ms).sort((a, b) => a - b);
    const name = p === 'down' ? `${run.cut} down` : p === 'after' ? `${run.cut} restarting and back` : 'before the cut';
    return [
      name,
      String(of.length),
      String(of.filter(isAccepted).length),
      String(of.filter((s) => s.status === 503).length),
      String(of.filter((s) => !isAccepted(s) && s.status !== 503).length),
      fmt(quantile(lat, 0.99), 1),
    ];
  });
  const phaseHeader = ['phase (valid writes)', 'sent', 'accepted', '503', 'other', 'p99 ms'];
  const refusedValid: Record<string, number> = {};
  for (const s of valid.filter((x) => !isAccepted(x))) refusedValid[label(s.status)] = (refusedValid[label(s.status)] ?? 0) + 1;
  // How long a client waits to be told 503 while the dependency is down.
  const downLat = valid
    .filter((s) => s.phase === 'down' && s.status === 503)
    .map((s) => s.ms)
    .sort((a, b) => a - b);
  const errors = samples.filter((s) => s.status === 0 || (s.status >= 500 && s.status !== 503)).length;
  const timeline = run.timeline.map((t) => `${fmt(t.at / 1000, 1)} s ${t.event}`).join('; ');
  const facts = [
    `offered ${fmt(run.rate)} req/s for ${run.durationS} s, answered ${fmt(samples.length / run.elapsedS)} req/s; not sent (in-flight cap): ${run.skipped}`,
    `timeline: ${timeline}`,
    `recovery after ${run.cut} accepted connections: /defend ${ms(run.recovery.defendMs)}, /ingest ${ms(run.recovery.ingestMs)}; valid writes refused after that: ${run.recovery.refusedAfterReturn}${run.recovery.lastRefusalMs !== undefined ? ` (the last answered at ${fmt(run.recovery.lastRefusalMs)} ms)` : ''}`,
    `accepted writes checked: ${run.acceptedDecisions} decisions (${run.defended} answered 200 by /defend, ${run.batchDecisions} from ${run.batches} batches answered 202 by /ingest); lost: ${run.lost.length}`,
    `errors (no answer, or 5xx other than 503): ${errors}; unexpected answers: ${unexpected}`,
  ];
  return {
    table: `${run.cut}:\n${textTable(header, rows)}\n\n${textTable(phaseHeader, phaseRows)}\n\n${facts.join('\n')}`,
    markdown: `${mdTable(header, rows)}\n\n${mdTable(phaseHeader, phaseRows)}\n\n${facts.map((f) => `- ${f}`).join('\n')}${unexpectedExamples.length > 0 ? `\n- unexpected answers (first ones): ${unexpectedExamples.join('; ')}` : ''}${
      run.lost.length > 0
        ? `\n- lost writes (first ones): ${run.lost
            .slice(0, 10)
            .map((l) => `${l.tenant}/${l.decisionId}: ${l.why}`)
            .join('; ')}`
        : ''
    }`,
    unexpected,
    unexpectedExamples,
    refusedValid,
    acceptedWrites: valid.filter(isAccepted).length,
    validWrites: valid.length,
    downP99: quantile(downLat, 0.99),
    errors,
  };
}

const WHAT_THE_CUT_DOES: Record<Dependency, string> = {
  redis: 'rate limits (and correlation windows) live in Redis: every authenticated request needs it, so valid writes fail closed with 503 while it is down',
  postgres:
    'keys, decisions and the ledger live in Postgres: every write and every key lookup needs it, so everything but unauthenticated refusals fails closed with 503',
  nats: '/ingest batches are queued in JetStream: /ingest fails closed with 503 while NATS is down; /defend does not need it and keeps deciding',
};

export interface ReportInput {
  readonly command: string;
  readonly machine: { cpu: string; cores: number; memGiB: number; node: string; os: string; load: number };
  readonly opts: { durationMs: number; tenants: number };
  readonly calibration: Calibration;
  readonly normal: number;
  readonly rate: number;
  readonly rateFromFlag: boolean;
  readonly runs: readonly CutRun[];
  readonly mix: ReadonlyArray<[Kind, number]>;
  readonly batchSize: number;
  readonly maxInFlight: number;
  readonly date: string;
}

/** Risks the figures of this run show, then the ones no run of this harness can show. */
function remainingRisks(input: ReportInput, summaries: ReadonlyMap<Dependency, CutSummary>): string[] {
  const risks: string[] = [];
  for (const run of input.runs) {
    const s = summaries.get(run.cut)!;
    const refused =
      Object.entries(s.refusedValid)
        .map(([st, n]) => `${n} × ${st}`)
        .join(', ') || 'none';
    if (run.lost.length > 0)
      risks.push(
        `**Lost writes during the ${run.cut} cut (${run.lost.length})**: an accepted write was not found afterwards. This is a defect to fix before anything else.`,
      );
    if (run.recovery.defendMs === undefined || run.recovery.ingestMs === undefined)
      risks.push(`**No recovery after the ${run.cut} cut within 30 s**: FrostGate had to be restarted.`);
    else if (Math.max(run.recovery.defendMs, run.recovery.ingestMs) > 5_000)
      risks.push(
        `**Slow recovery after the ${run.cut} cut**: ${fmt(Math.max(run.recovery.defendMs, run.recovery.ingestMs))} ms until writes were accepted again.`,
      );
    if (s.downP99 > 1_000)
      risks.push(
        `**Slow refusals while ${run.cut} is down**: the 503 answers to valid writes took ${fmt(s.downP99)} ms at p99 (refused: ${refused}); clients with short timeouts see timeouts rather than 503.`,
      );
    if (run.skipped > 0)
      risks.push(
        `**Backlog during the ${run.cut} cut**: the generator reached its cap of ${input.maxInFlight} requests in flight and did not send ${run.skipped}; a real client fleet would have queued or timed out.`,
      );
    if (s.errors > 0) risks.push(`**Errors during the ${run.cut} cut**: ${s.errors} requests got no answer or a 5xx other than 503.`);
  }
  if (input.machine.load > input.machine.cores * 2) {
    risks.push(
      `**Figures from a busy machine**: the load average was ${fmt(input.machine.load, 1)} on ${input.machine.cores} cores when the run started (other work shares it), so the capacity, the latencies and the recovery times above are pessimistic; lost writes, unexpected answers and recovery without a restart do not depend on it.`,
    );
  }
  risks.push(
    '**Redis and Postgres are single points of failure for availability** (by design: FrostGate fails closed). While either is down, every authenticated write is refused with 503, as the cuts above show; sensors must retry or buffer on their side. Only the acknowledged fail-open switches change that, and they let unchecked requests through (docs/runbooks/rate-limit-store-down.md).',
    '**/ingest needs JetStream**: with `FG_NATS_URL` set, batches are refused while NATS is down (no local spool); /defend is unaffected.',
    '**A Redis restarted without persistence forgets the rate-limit counters and the invalid-key budgets**: after the restart every key and every source address starts with a full budget (the throwaway Redis here runs without persistence).',
    '**Only process death is injected**: no network partition, added latency or packet loss, slow disk, full disk or clock skew; a dependency that hangs rather than refusing connections is bounded only by the client timeouts (Postgres pool wait, Redis command timeout).',
    '**One node, one machine**: the load generator, FrostGate and the three dependencies share the same cores, so "10x normal" is the capacity of this setup, not of a production node; several FrostGate nodes on one database (group commit across processes, revocations over the bus) are covered by the chaos tests (test/chaos), not by this run.',
  );
  return risks;
}

export function renderReport(input: ReportInput): string {
  const summaries = new Map(input.runs.map((r) => [r.cut, summarizeCut(r, input.mix)] as const));
  const { calibration: cal } = input;
  const summaryRows = input.runs.map((r) => {
    const s = summaries.get(r.cut)!;
    const refused =
      Object.entries(s.refusedValid)
        .map(([st, n]) => `${n} × ${st}`)
        .join(', ') || 'none';
    return [
      r.cut,
      `${fmt(r.rate)} (${fmt(r.rate / input.normal, 1)}x)`,
      String(r.samples.length),
      `${s.acceptedWrites} of ${s.validWrites}`,
      refused,
      String(r.lost.length),
      `/defend ${ms(r.recovery.defendMs)}, /ingest ${ms(r.recovery.ingestMs)}`,
      String(s.unexpected),
    ];
  });
  const summaryHeader = [
    'cut',
    'offered req/s',
    'requests',
    'valid writes accepted',
    'valid writes refused (count × status)',
    'lost accepted writes',
    'recovery after the dependency returned',
    'unexpected answers',
  ];
  return `# Stress test report

Written by \`scripts/stress.ts\` from the run below; every figure is from that run. Rerun with
the same command to reproduce (figures vary with the machine and its load).

- Command: \`${input.command}\`
- Date: ${input.date}
- Machine: ${input.machine.cpu}, ${input.machine.cores} cores, ${input.machine.memGiB.toFixed(1)} GiB RAM, ${input.machine.os}, Node ${input.machine.node}; load average ${fmt(input.machine.load, 2)} at the start (the machine is shared)
- Setup: FrostGate \`serve\` (role all, profile test) in its own process on 127.0.0.1, with a
  throwaway Redis (password), Postgres cluster and NATS (JetStream) of the run's own on free
  loopback ports. The load generator runs in the harness process on the same machine (they share
  the cores).
- Cuts, in turn on the same server: ${input.runs.map((r) => `**${r.cut}**`).join(', ')}; each run lasts ${input.opts.durationMs / 1000} s, the dependency is
  stopped at 30% of it and restarted at 60% (Postgres: immediate shutdown, like a crash; Redis and
  NATS: SIGKILL). The server is not restarted between cuts.

## What "normal rate" means here

FrostGate has no production traffic to call normal, so the run defines it from the node's own
capacity: the harness first measures the rate this server sustains on this machine, ${cal.seconds} s
closed loop with ${cal.concurrency} concurrent valid \`POST /defend\` requests: **${fmt(cal.rps)} req/s** (p99
${fmt(cal.p99, 1)} ms). The **normal rate is a tenth of that, ${fmt(input.normal, 1)} req/s**: a node running
at 10% of its capacity. Each cut then offers ${input.rateFromFlag ? `**${fmt(input.rate)} req/s (set by --rate, ${fmt(input.rate / input.normal, 1)}x normal)**` : `**10x normal, ${fmt(input.rate)} req/s**`} open loop
(requests are sent on schedule whether or not earlier ones were answered, up to ${input.maxInFlight} in
flight), so the server is saturated on purpose while a dependency goes away and comes back.

## Summary

${mdTable(summaryHeader, summaryRows)}

"Valid writes" are \`POST /defend\` events and \`POST /ingest\` batches with a valid key; accepted
means 200 (/defend) or 202 (/ingest); a request still in flight when the stop order came counts
as sent while the dependency was down. "Lost accepted writes" must be 0. "Recovery" is the time
from the moment the restarted dependency accepted connections to the first write of that kind,
sent after that moment, being accepted, its own latency included (the server itself is never
restarted).

## Per cut
${input.runs
  .map(
    (r) => `
### ${r.cut}

What the cut takes away: ${WHAT_THE_CUT_DOES[r.cut]}.

${summaries.get(r.cut)!.markdown}
`,
  )
  .join('')}
## Mix and expected answers

${input.mix.map(([k, share]) => `- ${k}: ${(share * 100).toFixed(0)}%`).join('\n')}

Valid requests are sensor events of random tenants (${input.opts.tenants} tenants, one key each) on
\`POST /defend\`, and batches of ${input.batchSize} such events on \`POST /ingest\` (valid_batch). Invalid keys
are random well-formed \`fg_\` keys; all traffic comes from 127.0.0.1, so the brute-force guard
refuses them with 429 once the source's budget is spent, while valid keys from the same address
go on. Oversized bodies are 70 KiB (over the 64 KiB limit of /defend) or 2 MiB. Expected answers:
valid 200 and valid_batch 202; invalid key 401/429; no key 401; cross-tenant claim 403;
oversized 413; malformed JSON 400; invalid event 400/422. From the stop of a dependency on, 503
is also expected for every kind but "no key" (a check that needs the dependency fails closed).
Any other answer counts as unexpected.

## How lost writes are checked

After each cut, every batch answered 202 must be decided completely (\`GET /ingest/batches/{id}\`
completed, one decision per event). Each decision, answered 200 by /defend or produced by such a
batch: \`GET /decisions/{id}\` finds it (with the ledger index /defend answered), the tenant's
ledger has it at that index, and an inclusion proof against a freshly signed checkpoint verifies.

## Remaining risks

Most severe first: what this run's figures show, then what no run of this harness can show.

${remainingRisks(input, summaries)
  .map((r, i) => `${i + 1}. ${r}`)
  .join('\n')}
`;
}
