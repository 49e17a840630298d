import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { NetnsLabRuntime, type LabSpec } from '../src/forge/runtime/index.js';
import { cgroupDirs } from '../src/forge/runtime/netns/cgroup.js';
import { fullNeighbours, ospfLab } from '../test/forge/runtime/ospf.js';

const net = (prefix: string) => (h: number) => (h === 0 ? `${prefix}.0/24` : `${prefix}.${h}`);

function staticLab(scenarioId: string, i: number): LabSpec {
  const a = net(`10.230.${(2 * i) % 256}`);
  const b = net(`10.230.${(2 * i + 1) % 256}`);
  return {
    scenarioId,
    networks: [{ name: 'lan-a', cidr: a(0) }, { name: 'lan-b', cidr: b(0) }],
    devices: [
      { name: 'a', kind: 'host', interfaces: [{ network: 'lan-a', address: `${a(10)}/24` }], routes: [{ to: 'default', via: a(1) }] },
      { name: 'b', kind: 'host', interfaces: [{ network: 'lan-b', address: `${b(10)}/24` }], routes: [{ to: 'default', via: b(1) }] },
      { name: 'r', kind: 'router', interfaces: [{ network: 'lan-a', address: `${a(1)}/24` }, { network: 'lan-b', address: `${b(1)}/24` }], frrConfig: 'frr defaults traditional\n' },
    ],
  };
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

const ms = (v: number): string => `${v.toFixed(0)} ms`;

async function until(deadlineMs: number, probe: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error('deadline passed');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function run(): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'fg-bench-labs-'));
  const rt = new NetnsLabRuntime({ stateDir });
  try {
    // 1. Static 3-device lab (2 networks, one FRR router): create() resolves when ready.
    const ready: number[] = [];
    const teardown: number[] = [];
    for (let i = 0; i < 20; i++) {
      const id = `bench-static-${i}`;
      const t0 = performance.now();
      await rt.create(staticLab(id, i));
      ready.push(performance.now() - t0);
      const t1 = performance.now();
      await rt.destroy(id);
      teardown.push(performance.now() - t1);
    }
    console.log(`static 3-device lab ready: p50 ${ms(pct(ready, 50))}, p95 ${ms(pct(ready, 95))} (20 runs)`);
    console.log(`teardown: p50 ${ms(pct(teardown, 50))}, p95 ${ms(pct(teardown, 95))}`);

    // 2. 3-router OSPF lab: created, neighbours Full, end-to-end ping.
    const converged: number[] = [];
    for (let i = 0; i < 5; i++) {
      const id = `bench-ospf-${i}`;
      const n23 = net(`10.231.${2 * i + 1}`);
      const t0 = performance.now();
      await rt.create(ospfLab(id, net(`10.231.${2 * i}`), n23));
      await until(20_000, async () => fullNeighbours((await rt.exec(id, 'r2', ['vtysh', '-c', 'show ip ospf neighbor json'])).stdout) >= 2);
      await until(20_000, async () => (await rt.exec(id, 'r1', ['ping', '-c', '1', '-W', '1', n23(3)])).exitCode === 0);
      converged.push(performance.now() - t0);
      await rt.destroy(id);
    }
    console.log(`3-router OSPF lab converged (ping r1->r3): p50 ${ms(pct(converged, 50))}, p95 ${ms(pct(converged, 95))} (5 runs)`);

    // 3. 20 labs created concurrently.
    const ids = Array.from({ length: 20 }, (_, i) => `bench-conc-${i}`);
    const t0 = performance.now();
    await Promise.all(ids.map((id, i) => rt.create(staticLab(id, 40 + i))));
    const total = performance.now() - t0;
    let mem = 0;
    for (const id of ids) {
      const memDir = cgroupDirs(rt.namesFor(id).cgroupName())[0]!;
      const { readFileSync } = await import('node:fs');
      mem += Number(readFileSync(`${memDir}/memory.usage_in_bytes`, 'utf8'));
    }
    console.log(`20 labs concurrently: ${ms(total)} total; memory ${(mem / 2 ** 20).toFixed(1)} MiB (${(mem / 20 / 2 ** 20).toFixed(1)} MiB per lab, cgroup usage incl. page cache)`);
    const t1 = performance.now();
    await Promise.all(ids.map((id) => rt.destroy(id)));
    console.log(`20 labs torn down concurrently: ${ms(performance.now() - t1)}`);
  } finally {
    await rt.reconcile(new Set());
    rmSync(stateDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
