import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DockerLabRuntime, dockerAvailable } from '../src/forge/runtime/docker/driver.js';
import { NetnsLabRuntime } from '../src/forge/runtime/netns/driver.js';
import type { LabSpec } from '../src/forge/runtime/types.js';
import { cgroupDirs } from '../src/forge/runtime/netns/cgroup.js';
import { ospfLab } from '../test/forge/runtime/ospf.js';

/**
 * Lab runtime figures (netns driver): static-lab readiness and teardown, OSPF convergence, 20
 * labs at once, 100 labs running at once with memory per lab. Bounded to about 4 minutes
 * (sections are skipped past the budget) and removes every lab it made, even on failure.
 */
const BUDGET_MS = 4 * 60_000;

const net = (prefix: string) => (h: number) => (h === 0 ? `${prefix}.0/24` : `${prefix}.${h}`);

/** host a -- lan-a -- r (FRR, no routing protocol) -- lan-b -- host b. */
function staticLab(scenarioId: string): LabSpec {
  // Every lab may use the same subnets: each has its own bridges in its own switch namespace.
  const a = net('10.230.1');
  const b = net('10.230.2');
  return {
    scenarioId,
    networks: [
      { name: 'lan-a', cidr: a(0) },
      { name: 'lan-b', cidr: b(0) },
    ],
    devices: [
      { name: 'a', kind: 'host', interfaces: [{ network: 'lan-a', address: `${a(10)}/24` }], routes: [{ to: 'default', via: a(1) }] },
      { name: 'b', kind: 'host', interfaces: [{ network: 'lan-b', address: `${b(10)}/24` }], routes: [{ to: 'default', via: b(1) }] },
      {
        name: 'r',
        kind: 'router',
        interfaces: [
          { network: 'lan-a', address: `${a(1)}/24` },
          { network: 'lan-b', address: `${b(1)}/24` },
        ],
        frrConfig: 'frr defaults traditional\n',
      },
    ],
  };
}

function pct(values: readonly number[], p: number): number {
  const s = [...values].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

const ms = (v: number): string => `${v.toFixed(0)} ms`;
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

async function until(deadlineMs: number, probe: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error('deadline passed');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Runs `task` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

/**
 * Memory charged to a lab's cgroup: `usage` (memory.usage_in_bytes: user pages, page cache and
 * the kernel memory its processes allocated, e.g. namespaces and veths, `kmem`), `rss`
 * (anonymous pages; most of it is zebra). Measured per lab because the host's free memory
 * moves with whatever else runs on the machine.
 */
function labMemory(rt: NetnsLabRuntime, id: string): { usage: number; rss: number; kmem: number } {
  const dir = cgroupDirs(rt.namesFor(id).cgroupName())[0]!;
  const stat = readFileSync(`${dir}/memory.stat`, 'utf8');
  return {
    usage: Number(readFileSync(`${dir}/memory.usage_in_bytes`, 'utf8')),
    rss: Number(/^total_rss (\d+)/m.exec(stat)?.[1] ?? 0),
    kmem: Number(readFileSync(`${dir}/memory.kmem.usage_in_bytes`, 'utf8')),
  };
}

function memorySummary(charged: ReadonlyArray<{ usage: number; rss: number; kmem: number }>): string {
  const avg = (f: (c: { usage: number; rss: number; kmem: number }) => number): string => mib(charged.reduce((sum, c) => sum + f(c), 0) / charged.length);
  return `${avg((c) => c.usage)} per lab charged to its cgroup (rss ${avg((c) => c.rss)}, kernel ${avg((c) => c.kmem)})`;
}

/** CPU time used by every process that ever ran in the lab's cgroup (cpuacct). */
function labCpuMs(rt: NetnsLabRuntime, id: string): number {
  return Number(readFileSync(`${cgroupDirs(rt.namesFor(id).cgroupName())[4]!}/cpuacct.usage`, 'utf8')) / 1e6;
}

function labProcesses(rt: NetnsLabRuntime, id: string): number {
  return Number(readFileSync(`${cgroupDirs(rt.namesFor(id).cgroupName())[1]!}/pids.current`, 'utf8'));
}

export async function run(): Promise<void> {
  const began = Date.now();
  const overBudget = (section: string): boolean => {
    if (Date.now() - began < BUDGET_MS) return false;
    console.log(`(skipped: ${section}, past the ${BUDGET_MS / 60_000} min budget)`);
    return true;
  };
  const stateDir = mkdtempSync(join(tmpdir(), 'fg-bench-labs-'));
  const phases = new Map<string, number[]>();
  let recording = false;
  const rt = new NetnsLabRuntime({
    stateDir,
    onPhase: (phase, v) => {
      if (!recording) return;
      const list = phases.get(phase) ?? [];
      list.push(v);
      phases.set(phase, list);
    },
  });
  console.log(
    `machine: ${cpus().length} cores, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at start (other work on the machine inflates every wall-clock figure)`,
  );
  try {
    // 1. Static 3-device lab, created and destroyed 20 times in a row.
    console.log(
      "\nready = create() resolved: namespaces pinned, switch egress ruleset loaded, veths/bridges/addresses/routes set, every device init up (learner exec works), the router's FRR daemons (zebra, staticd) have read their config",
    );
    await rt.create(staticLab('bench-warmup'));
    await rt.destroy('bench-warmup');
    const ready: number[] = [];
    const teardown: number[] = [];
    const cpu: number[] = [];
    recording = true;
    for (let i = 0; i < 20; i++) {
      const id = `bench-static-${i}`;
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      await rt.create(staticLab(id));
      ready.push(performance.now() - t0);
      const own = process.cpuUsage(c0);
      cpu.push((own.user + own.system) / 1000 + labCpuMs(rt, id));
      const t1 = performance.now();
      await rt.destroy(id);
      teardown.push(performance.now() - t1);
    }
    recording = false;
    console.log(`static 3-device lab ready: p50 ${ms(pct(ready, 50))}, p95 ${ms(pct(ready, 95))} (20 runs)`);
    const usable = phases.get('milestone: devices usable, FRR still starting (since create began)') ?? [];
    console.log(`  of which devices usable (network, egress, inits; FRR still starting): p50 ${ms(pct(usable, 50))}, p95 ${ms(pct(usable, 95))}`);
    console.log(`  CPU time spent per create (the lab's processes + this process; independent of other load): p50 ${ms(pct(cpu, 50))}`);
    console.log(`teardown: p50 ${ms(pct(teardown, 50))}, p95 ${ms(pct(teardown, 95))}`);
    console.log('where the time goes (p50 per phase; indented lines run in parallel inside the phase above them):');
    for (const [phase, values] of phases) if (!phase.startsWith('milestone')) console.log(`  ${phase.padEnd(44)} ${ms(pct(values, 50)).padStart(7)}`);

    // 1b. The same with routersInBackground: create() resolves when the devices are usable.
    if (!overBudget('static lab, routers in background')) {
      const bg = new NetnsLabRuntime({ stateDir, routersInBackground: true });
      const readyBg: number[] = [];
      for (let i = 0; i < 20; i++) {
        const id = `bench-static-bg-${i}`;
        const t0 = performance.now();
        await bg.create(staticLab(id));
        readyBg.push(performance.now() - t0);
        await bg.exec(id, 'r', ['true']); // waits for the router's FRR, so runs do not overlap
        await bg.destroy(id);
      }
      console.log(
        `with routersInBackground (ready = devices usable; FRR finishes starting in the background, exec on the router waits for it): p50 ${ms(pct(readyBg, 50))}, p95 ${ms(pct(readyBg, 95))} (20 runs)`,
      );
    }

    // 1c. The same lab as docker containers (only when a docker daemon answers).
    if (!overBudget('static lab on the docker driver') && (await dockerAvailable())) {
      const dk = new DockerLabRuntime({ stateDir: join(stateDir, 'docker') });
      try {
        await dk.create(staticLab('bench-dk-warmup')); // builds the base image once
        await dk.destroy('bench-dk-warmup');
        const readyDk: number[] = [];
        const teardownDk: number[] = [];
        for (let i = 0; i < 5; i++) {
          const id = `bench-dk-${i}`;
          const t0 = performance.now();
          await dk.create(staticLab(id));
          readyDk.push(performance.now() - t0);
          const t1 = performance.now();
          await dk.destroy(id);
          teardownDk.push(performance.now() - t1);
        }
        console.log(
          `docker driver, same lab (ready = containers started, routes set, FRR up): p50 ${ms(pct(readyDk, 50))}, p95 ${ms(pct(readyDk, 95))}; teardown p50 ${ms(pct(teardownDk, 50))} (5 runs)`,
        );
      } finally {
        await dk.reconcile(new Set());
      }
    }

    // 2. 3-router OSPF lab: from create() to an end-to-end ping r1 -> r3 (through r2's OSPF routes).
    if (!overBudget('OSPF convergence')) {
      const converged: number[] = [];
      for (let i = 0; i < 10; i++) {
        const id = `bench-ospf-${i}`;
        const n23 = net('10.231.2');
        const t0 = performance.now();
        await rt.create(ospfLab(id, net('10.231.1'), n23, { helloMultiplier: 4 }));
        await until(20_000, async () => (await rt.exec(id, 'r1', ['ping', '-c', '1', '-W', '1', n23(3)])).exitCode === 0);
        converged.push(performance.now() - t0);
        await rt.destroy(id);
      }
      console.log(
        `\n3-router OSPF lab converged (create to first ping r1 -> r3 answered; hellos every 250 ms, dead interval 1 s, retransmit 1 s): p50 ${ms(pct(converged, 50))}, p95 ${ms(pct(converged, 95))} (10 runs)`,
      );
    }

    // 3. 20 labs created at once.
    if (!overBudget('20 concurrent labs')) {
      const ids = Array.from({ length: 20 }, (_, i) => `bench-conc-${i}`);
      const t0 = performance.now();
      await Promise.all(ids.map((id) => rt.create(staticLab(id))));
      const total = performance.now() - t0;
      console.log(`\n20 labs created concurrently: ${ms(total)} total (${ms(total / 20)} per lab)`);
      console.log(`  memory: ${memorySummary(ids.map((id) => labMemory(rt, id)))}`);
      const t1 = performance.now();
      await Promise.all(ids.map((id) => rt.destroy(id)));
      console.log(`20 labs torn down concurrently: ${ms(performance.now() - t1)}`);
    }

    // 4. 100 labs running at once, each proven working by a ping across its router.
    if (!overBudget('100 labs at once')) {
      const ids = Array.from({ length: 100 }, (_, i) => `bench-many-${i}`);
      const t0 = performance.now();
      await pool(ids, 10, async (id) => {
        await rt.create(staticLab(id));
      });
      const created = performance.now() - t0;
      let working = 0;
      await pool(ids, 10, async (id) => {
        const res = await rt.exec(id, 'a', ['ping', '-c', '1', '-W', '2', '10.230.2.10'], { asLearner: true });
        if (res.exitCode === 0) working++;
      });
      const procs = ids.reduce((s, id) => s + labProcesses(rt, id), 0);
      console.log(`\n100 labs running at once (created 10 at a time in ${ms(created)}; ${working}/100 answered a ping host a -> host b across the router)`);
      console.log(
        `  memory: ${memorySummary(ids.map((id) => labMemory(rt, id)))}; ${(procs / 100).toFixed(1)} tasks (threads) per lab: 3 device inits and their unshare parents, zebra, staticd`,
      );
      const t1 = performance.now();
      await pool(ids, 10, (id) => rt.destroy(id));
      console.log(`100 labs torn down (10 at a time): ${ms(performance.now() - t1)}`);
    }
  } finally {
    await rt.reconcile(new Set());
    rmSync(stateDir, { recursive: true, force: true });
    console.log(
      `\n(bench took ${((Date.now() - began) / 1000).toFixed(0)} s; load average now ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')})`,
    );
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
