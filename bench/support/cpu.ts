import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';

/**
 * CPU time (user + system, every thread) spent by the bench's parties during a measured run, from
 * /proc: the server under test, every local Postgres process (backends, WAL writer, checkpointer)
 * and this process (the load generator). It shows where a target's budget goes on this machine,
 * e.g. how many cores Postgres alone would need at the target rate. Linux only; elsewhere the
 * figures are absent.
 */
export interface CpuSplit {
  readonly serverS: number;
  readonly postgresS: number;
  readonly loadS: number;
  readonly wallS: number;
}

const TICKS_PER_S = 100; // USER_HZ: 100 on every Linux architecture Node runs on

function ticksOf(pid: number | string): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime
}

/** CPU ticks of every local Postgres process, by pid. */
function postgresTicks(): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') ticks.set(pid, ticksOf(pid));
    } catch {
      // exited between the listing and the read
    }
  }
  return ticks;
}

/**
 * Ticks Postgres spent between two readings: per process, so a backend that exits in between (a
 * pool closing an idle connection) takes only its own share away instead of making the sum
 * negative. What an exited backend spent after the first reading is not counted.
 */
function postgresTicksSince(before: Map<string, number>): number {
  let total = 0;
  for (const [pid, ticks] of postgresTicks()) total += ticks - (before.get(pid) ?? 0);
  return total;
}

/** Starts measuring; the returned function ends the measurement (undefined without /proc). */
export function startCpuMeter(serverPid: number | undefined): () => CpuSplit | undefined {
  if (serverPid === undefined) return () => undefined;
  let start: { server: number; postgres: Map<string, number>; load: NodeJS.CpuUsage; at: number };
  try {
    start = { server: ticksOf(serverPid), postgres: postgresTicks(), load: process.cpuUsage(), at: performance.now() };
  } catch {
    return () => undefined;
  }
  return () => {
    const load = process.cpuUsage(start.load);
    return {
      serverS: (ticksOf(serverPid) - start.server) / TICKS_PER_S,
      postgresS: postgresTicksSince(start.postgres) / TICKS_PER_S,
      loadS: (load.user + load.system) / 1e6,
      wallS: (performance.now() - start.at) / 1000,
    };
  };
}

/** "server 290 µs, Postgres 215 µs, load generator 70 µs per request (82% + 60% + 19% of 2 cores)" */
export function describeCpu(split: CpuSplit | undefined, count: number, unit: string, withPostgres: boolean): string {
  if (!split) return 'CPU split unavailable (no /proc)';
  const us = (s: number) => `${((s / count) * 1e6).toFixed(0)} µs`;
  const pct = (s: number) => `${((s / split.wallS) * 100).toFixed(0)}%`;
  const parts = [`server ${us(split.serverS)}`, ...(withPostgres ? [`Postgres ${us(split.postgresS)}`] : []), `load generator ${us(split.loadS)}`];
  const shares = [pct(split.serverS), ...(withPostgres ? [pct(split.postgresS)] : []), pct(split.loadS)];
  return `${parts.join(', ')} of CPU per ${unit} (${shares.join(' + ')} of ${cpus().length} cores)`;
}

/**
 * What the machine's cores allow per request at a target rate, against what a run spent: "at
 * 21,000 req/s the 2 cores give 95 µs of CPU per request; this run spent 330 µs".
 */
export function describeBudget(split: CpuSplit | undefined, count: number, unit: string, targetPerS: number): string | undefined {
  if (!split || count === 0) return undefined;
  const budgetUs = (cpus().length / targetPerS) * 1e6;
  const spentUs = ((split.serverS + split.postgresS + split.loadS) / count) * 1e6;
  return (
    `at ${Math.round(targetPerS).toLocaleString('en-US')} ${unit}s/s the ${cpus().length} cores give ` +
    `${budgetUs.toFixed(0)} µs of CPU per ${unit} in all; this run spent ${spentUs.toFixed(0)} µs`
  );
}
