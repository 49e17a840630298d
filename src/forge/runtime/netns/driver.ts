import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { buildSwitchRuleset } from '../egress/ruleset.js';
import { LabRuntimeError } from '../errors.js';
import { normaliseDevicePath, resolveLimits, validateLabSpec } from '../spec.js';
import type { DeviceHandle, DeviceKind, ExecOptions, ExecResult, LabHandle, LabRuntime, LabSpec, LabSummary, ShellCommand } from '../types.js';
import { cgroupPids, createCgroup, destroyCgroup, inCgroupArgv, killCgroupProcesses, listCgroups } from './cgroup.js';
import { deviceDirs, placeFile, prepareDeviceTree, prepareMountPoints, storageFstab } from './device-fs.js';
import { startDeviceInit } from './device-init.js';
import { startFrr, vtyshArgs } from './frr.js';
import { FRR_RUN_DIR, LabNames, PROBE_PREFIX, RUN_NETNS, SWITCH_SUFFIX, USERNS_DIR, instanceTag, legacyTag, parseNsName, scenarioHex } from './naming.js';
import { NAMESPACES_PINNED, STORAGE_MOUNTED, labNetworkScript } from './network-script.js';
import { SYSTEM_PATH, mountsUnder, mustRun, parentOf, runCommand } from './process.js';
import { probeScript, standInBatch } from './probe.js';
import { filtered, sandboxed } from './sandbox.js';
import { type LabRecord, listRecordHexes, readRecord, scenarioDir, writeRecord } from './state.js';
import { deviceAddresses, devicePorts } from './topology.js';

export interface NetnsRuntimeOptions {
  /** Where per-scenario state and device trees live, e.g. `<dataDir>/labs`. */
  readonly stateDir: string;
  /**
   * Compute egress rulesets without applying them. Dev only: the platform config refuses it
   * elsewhere at startup and readiness reports `dry_run` (audit finding #1).
   */
  readonly egressDryRun?: boolean;
  /** Deadline for one device's init to come up. */
  readonly deviceStartTimeoutMs?: number;
  /** Deadline for one startup command. */
  readonly startupTimeoutMs?: number;
  /**
   * create() resolves once every device is usable (network, egress, inits), while the routers'
   * FRR daemons finish starting; exec, spawnShell and copies on such a router through this
   * instance wait for them (and fail if they failed). Another process may find vtysh
   * unanswered for that moment (about 0.1 s). Default false: create() waits for FRR too.
   */
  readonly routersInBackground?: boolean;
  /** Called with the duration of each phase of create and destroy (for profiling, e.g. the bench). */
  readonly onPhase?: (phase: string, ms: number) => void;
}

const LEARNER_ENV = {
  PATH: SYSTEM_PATH,
  HOME: '/root',
  USER: 'root',
  LOGNAME: 'root',
  SHELL: '/bin/bash',
  LANG: 'C.UTF-8',
  TERM: 'xterm-256color',
};

/**
 * The Linux-namespace lab runtime (the default driver). See naming.ts for how every kernel
 * object is named, init-script.ts for a device's filesystem view, and egress/ for the
 * nftables policy each device gets.
 */
export class NetnsLabRuntime implements LabRuntime {
  readonly driver = 'netns';
  readonly stateDir: string;
  readonly tag: string;
  readonly egressDryRun: boolean;
  private readonly deviceStartTimeoutMs: number;
  private readonly startupTimeoutMs: number;
  private readonly onPhase: ((phase: string, ms: number) => void) | undefined;
  private readonly routersInBackground: boolean;
  /** FRR starts still running in the background, by `<scenarioId>\0<device>`. */
  private readonly routing = new Map<string, Promise<void>>();
  /** Probe namespaces being built, by name (built once per device, on first use; removed with the lab). */
  private readonly probes = new Map<string, Promise<void>>();
  /** The last probe run per device, so the next waits for it (the switch swap is not shared). */
  private readonly probeRuns = new Map<string, Promise<void>>();

  constructor(opts: NetnsRuntimeOptions) {
    this.stateDir = resolvePath(opts.stateDir);
    // Its paths go into generated shell scripts and mount tables: plain characters only.
    if (!/^[A-Za-z0-9._/+-]+$/.test(this.stateDir)) throw new Error(`lab state dir ${JSON.stringify(this.stateDir)} may only contain A-Z a-z 0-9 . _ / + -`);
    this.tag = instanceTag(this.stateDir);
    this.egressDryRun = opts.egressDryRun ?? false;
    this.deviceStartTimeoutMs = opts.deviceStartTimeoutMs ?? 15_000;
    this.startupTimeoutMs = opts.startupTimeoutMs ?? 30_000;
    this.onPhase = opts.onPhase;
    this.routersInBackground = opts.routersInBackground ?? false;
  }

  /** A stopwatch reporting the time since its previous lap to `onPhase`. */
  private stopwatch(): (phase: string) => void {
    let last = performance.now();
    return (phase) => {
      const now = performance.now();
      this.onPhase?.(phase, now - last);
      last = now;
    };
  }

  namesFor(scenarioId: string): LabNames {
    return new LabNames(this.tag, scenarioHex(scenarioId));
  }

  /** The network namespace of a device (for tests and trusted tooling). */
  netnsOf(scenarioId: string, device: string): string {
    return this.namesFor(scenarioId).deviceNs(device);
  }

  async create(spec: LabSpec): Promise<LabHandle> {
    const createStartedAt = performance.now();
    const lap = this.stopwatch();
    validateLabSpec(spec);
    const names = this.namesFor(spec.scenarioId);
    const dir = scenarioDir(this.stateDir, names.hex);
    if ((await readRecord(this.stateDir, names.hex)) || (await this.labEntries(RUN_NETNS, names)).length > 0) {
      throw new LabRuntimeError('lab_exists', `scenario ${spec.scenarioId} already has a lab`);
    }
    const createdAt = new Date().toISOString();
    const limits = resolveLimits(spec);
    await mkdir(this.stateDir, { recursive: true });
    await mkdir(USERNS_DIR, { recursive: true });
    await mkdir(FRR_RUN_DIR, { recursive: true, mode: 0o755 });
    // Recorded before any kernel object exists, so a crash mid-way leaves a claimable trail.
    await writeRecord(this.stateDir, { scenarioId: spec.scenarioId, hex: names.hex, status: 'provisioning', spec, createdAt });
    try {
      const ruleset = buildSwitchRuleset({ spec, table: names.nftTable(), ports: devicePorts(spec, names) });
      lap('create: validate, record');
      const initPids = await this.provision(spec, names, dir, ruleset, lap, createStartedAt);
      const handle: LabHandle = {
        scenarioId: spec.scenarioId,
        prefix: names.prefix,
        devices: spec.devices.map((d): DeviceHandle => ({
          name: d.name,
          kind: d.kind,
          addresses: deviceAddresses(spec, d.name),
          locator: names.deviceNs(d.name),
        })),
        egress: { dryRun: this.egressDryRun, rulesets: { switch: ruleset } },
        limits,
        createdAt,
      };
      const record: LabRecord = { scenarioId: spec.scenarioId, hex: names.hex, status: 'running', spec, createdAt, handle, initPids };
      await writeRecord(this.stateDir, record);
      await this.runStartup(spec);
      lap('create: record, startup commands');
      return handle;
    } catch (e) {
      await this.destroyLab(names).catch(() => undefined);
      if (e instanceof LabRuntimeError) throw e;
      throw new LabRuntimeError('lab_create_failed', `creating lab ${spec.scenarioId}: ${(e as Error).message}`, { cause: e });
    }
  }

  private async provision(
    spec: LabSpec,
    names: LabNames,
    dir: string,
    ruleset: string,
    lap: (phase: string) => void,
    createStartedAt: number,
  ): Promise<Record<string, number>> {
    const limits = resolveLimits(spec);
    const uid = names.learnerUid();
    const cgroup = names.cgroupName();
    await createCgroup(cgroup, limits);
    lap('create: cgroup');
    const dirsOf = new Map(spec.devices.map((dev) => [dev.name, deviceDirs(dir, dev.name, names.frrDir(dev.name))]));
    const storage = spec.devices.map((dev) => ({ dirs: dirsOf.get(dev.name)!, router: dev.kind === 'router' }));
    await Promise.all(storage.map(({ dirs, router }) => prepareMountPoints(dirs, router)));
    await writeFile(`${dir}/storage.fstab`, storageFstab(storage, limits.diskBytes), { mode: 0o600 });
    // The network script mounts the devices' tmpfs first, then pins every namespace (with
    // egress in force before any link exists), then wires the switch and the devices; the
    // device trees are written once their tmpfs is mounted, device inits start as soon as the
    // namespaces are pinned and the trees are written, while the wiring goes on.
    let mounted!: () => void;
    let pinned!: () => void;
    const storageMounted = new Promise<void>((resolve) => (mounted = resolve));
    const namespacesPinned = new Promise<void>((resolve) => (pinned = resolve));
    const script = labNetworkScript({
      spec,
      names,
      egressRuleset: this.egressDryRun ? undefined : ruleset,
      fstabPath: `${dir}/namespaces.fstab`,
      storageFstabPath: `${dir}/storage.fstab`,
    });
    let stdout = '';
    // --norc: bash sources ~/.bashrc when stdin is a socket (libuv's stdio pipes are).
    const network = mustRun(inCgroupArgv(cgroup, ['/bin/bash', '--norc', '--noprofile', '-c', script]), {
      timeoutMs: 30_000,
      onStdout: (text) => {
        stdout += text;
        if (stdout.includes(STORAGE_MOUNTED)) mounted();
        if (stdout.includes(NAMESPACES_PINNED)) pinned();
      },
    });
    network.catch(() => undefined); // awaited below; this only keeps an early failure handled
    const trees = Promise.race([storageMounted, network]).then(() =>
      Promise.all(
        spec.devices.map(async (dev) => {
          const dirs = dirsOf.get(dev.name)!;
          await prepareDeviceTree(dirs, uid, dev.kind === 'router', dev.name);
          for (const file of dev.files ?? []) await placeFile(dirs, file, uid);
        }),
      ),
    );
    await Promise.race([namespacesPinned, network]);
    await trees;
    lap('create: storage, namespaces || device trees');

    const initPids: Record<string, number> = {};
    const inits = spec.devices.map(async (dev) => {
      const t0 = performance.now();
      const input = {
        netns: names.deviceNs(dev.name),
        cgroup,
        deviceDir: dirsOf.get(dev.name)!.base,
        hostname: dev.name,
        router: dev.kind === 'router',
        timeoutMs: this.deviceStartTimeoutMs,
      };
      const init = await startDeviceInit(input);
      initPids[dev.name] = init;
      this.onPhase?.('  device init (each device)', performance.now() - t0);
      return init;
    });
    const routers = spec.devices.map(async (dev, d) => {
      const init = await inits[d]!;
      if (dev.kind !== 'router' || dev.frrConfig === undefined) return;
      const frrConfig = dev.frrConfig;
      const t0 = performance.now();
      await startFrr({
        frrDir: names.frrDir(dev.name),
        config: frrConfig,
        hostname: dev.name,
        wrap: (argv) => inCgroupArgv(cgroup, ['nsenter', '-t', String(init), '--net', '--uts', ...filtered(argv)]),
      });
      this.onPhase?.('  FRR daemons (each router)', performance.now() - t0);
    });
    // For profiling: when learners could already work (network, egress, every init up), before
    // the routers' FRR daemons have all read their configs.
    Promise.all([network, ...inits]).then(
      () => this.onPhase?.('milestone: devices usable, FRR still starting (since create began)', performance.now() - createStartedAt),
      () => undefined,
    );
    if (this.routersInBackground) {
      spec.devices.forEach((dev, d) => {
        const key = `${spec.scenarioId}\0${dev.name}`;
        const started = routers[d]!.finally(() => this.routing.delete(key));
        started.catch(() => undefined); // surfaced by the next exec on that router
        if (dev.kind === 'router') this.routing.set(key, started);
      });
      await Promise.all([network, ...inits]);
    } else {
      await Promise.all([network, ...inits, ...routers]);
    }
    lap('create: wiring || device inits, FRR');
    return initPids;
  }

  private async runStartup(spec: LabSpec): Promise<void> {
    await Promise.all(
      spec.devices.map(async (dev) => {
        for (const line of dev.startup ?? []) {
          const res = await this.exec(spec.scenarioId, dev.name, ['/bin/sh', '-c', line], { asLearner: true, timeoutMs: this.startupTimeoutMs });
          if (res.exitCode !== 0) {
            throw new LabRuntimeError('lab_command_failed', `startup on ${dev.name} (${line}) exited ${res.exitCode}: ${res.stderr.trim().slice(0, 500)}`);
          }
        }
      }),
    );
  }

  /** Read from disk each time: another instance (a restarted orchestrator) may have removed it. */
  private async record(scenarioId: string): Promise<LabRecord> {
    const rec = await readRecord(this.stateDir, scenarioHex(scenarioId));
    if (!rec || rec.scenarioId !== scenarioId || rec.status !== 'running') {
      throw new LabRuntimeError('lab_not_found', `no running lab for scenario ${scenarioId}`);
    }
    return rec;
  }

  private async device(scenarioId: string, device: string): Promise<{ rec: LabRecord; names: LabNames; init: number; router: boolean; kind: DeviceKind }> {
    const rec = await this.record(scenarioId);
    const routing = this.routing.get(`${scenarioId}\0${device}`);
    if (routing) {
      await routing.catch((e: unknown) => {
        throw new LabRuntimeError('lab_command_failed', `FRR on ${device} failed to start: ${(e as Error).message}`, { cause: e });
      });
    }
    const dev = rec.spec.devices.find((d) => d.name === device);
    const init = rec.initPids?.[device];
    if (!dev || init === undefined) throw new LabRuntimeError('device_not_found', `scenario ${scenarioId} has no device ${device}`);
    return { rec, names: this.namesFor(scenarioId), init, router: dev.kind === 'router', kind: dev.kind };
  }

  /**
   * argv that runs a command as the learner: the device's mount, UTS, IPC, PID and network
   * namespaces (as host root, which may enter them), then the device's user namespace, where
   * nsenter becomes uid/gid 0, i.e. the learner's unprivileged host uid. Root there has every
   * capability over the namespaces that user namespace owns (the device's network namespace)
   * and none over the others (mounts, hostname, processes, the switch, the host). The sandbox
   * then narrows those capabilities to the device kind's and applies the seccomp filter.
   */
  private learnerArgv(names: LabNames, device: string, kind: DeviceKind, init: number, argv: readonly string[]): string[] {
    return inCgroupArgv(names.cgroupName(), [
      'nsenter',
      '-t',
      String(init),
      '--mount',
      '--uts',
      '--ipc',
      '--net',
      '--pid',
      '--root',
      '--wdns=/root',
      `--user=${names.usernsFile(device)}`,
      '--setuid=0',
      '--setgid=0',
      '--',
      ...sandboxed(kind, argv),
    ]);
  }

  async exec(scenarioId: string, device: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new LabRuntimeError('lab_command_failed', 'empty argv');
    const { rec, names, init, router, kind } = await this.device(scenarioId, device);
    let full: string[];
    let env: Record<string, string> | undefined;
    if (opts.asLearner) {
      full = this.learnerArgv(names, device, kind, init, argv);
      env = LEARNER_ENV;
    } else if (opts.enter === 'probe') {
      return this.probeExec(rec, names, device, argv, opts.timeoutMs ?? 30_000);
    } else if (opts.enter === 'mount') {
      full = inCgroupArgv(names.cgroupName(), ['nsenter', '-t', String(init), '--mount', '--root', '--wdns=/', ...argv]);
    } else {
      // Trusted: host binaries and host filesystem, only the device's network namespace.
      // `vtysh` is pointed at the device's own FRR sockets.
      const cmd = [...argv];
      if (router && (cmd[0] === 'vtysh' || cmd[0] === '/usr/bin/vtysh')) {
        cmd.splice(1, 0, ...vtyshArgs(names.frrDir(device)));
      }
      full = inCgroupArgv(names.cgroupName(), ['nsenter', `--net=${RUN_NETNS}/${names.deviceNs(device)}`, ...cmd]);
    }
    const runOpts = {
      ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
      ...(env ? { env } : {}),
      timeoutMs: opts.timeoutMs ?? 30_000,
    };
    return runCommand(full, runOpts);
  }

  /** The grader's probe namespace standing in for `device` (probe.ts), built on first use. */
  private async probeNs(rec: LabRecord, names: LabNames, device: string): Promise<string> {
    const ns = names.probeNs(device);
    let building = this.probes.get(ns);
    if (!building) {
      building = (async () => {
        if ((await readdir(RUN_NETNS).catch(() => [] as string[])).includes(ns)) return;
        const links = await mustRun(['ip', '-n', names.deviceNs(device), '-j', 'link', 'show'], { timeoutMs: 10_000 });
        const byName = new Map((JSON.parse(links.stdout) as Array<{ ifname: string; address?: string }>).map((l) => [l.ifname, l.address]));
        const dev = rec.spec.devices.find((d) => d.name === device)!;
        const macs = dev.interfaces.map((_, i) => byName.get(`eth${i}`) ?? '');
        await mustRun(['/bin/bash', '--norc', '--noprofile', '-c', probeScript(rec.spec, names, device, macs)], { timeoutMs: 15_000 });
      })();
      this.probes.set(ns, building);
      building.catch(() => this.probes.delete(ns));
    }
    await building;
    return ns;
  }

  /**
   * Runs argv in the probe while it stands in for the device (its ports unplugged for that
   * time, and plugged back whatever the command does). One probe run per device at a time.
   */
  private async probeExec(rec: LabRecord, names: LabNames, device: string, argv: readonly string[], timeoutMs: number): Promise<ExecResult> {
    const ns = await this.probeNs(rec, names, device);
    const key = `${names.prefix}\0${device}`;
    const previous = this.probeRuns.get(key) ?? Promise.resolve();
    const run = previous.then(async () => {
      const swap = (probeIn: boolean) =>
        mustRun(['ip', '-n', names.switchNs(), '-batch', '-'], { stdin: standInBatch(rec.spec, names, device, probeIn), timeoutMs: 10_000 });
      await swap(true);
      try {
        return await runCommand(inCgroupArgv(names.cgroupName(), ['nsenter', `--net=${RUN_NETNS}/${ns}`, ...argv]), { timeoutMs });
      } finally {
        await swap(false);
      }
    });
    this.probeRuns.set(
      key,
      run.then(
        () => undefined,
        () => undefined,
      ),
    );
    return run;
  }

  async spawnShell(scenarioId: string, device: string): Promise<ShellCommand> {
    const { names, init, kind } = await this.device(scenarioId, device);
    const [file, ...args] = this.learnerArgv(names, device, kind, init, ['/bin/bash', '--login']);
    return { file: file!, args, env: LEARNER_ENV };
  }

  /**
   * Copies run with the learner's rights inside the device's own filesystem view: a symlink
   * planted by the learner can only lead to what the learner could read or write anyway.
   */
  async copyIn(scenarioId: string, device: string, hostPath: string, devicePath: string): Promise<void> {
    const path = normaliseDevicePath(devicePath);
    if (!path) throw new LabRuntimeError('lab_path_refused', `device path ${devicePath} must be absolute without ..`);
    const content = await readFile(hostPath);
    const res = await this.exec(scenarioId, device, ['/bin/sh', '-c', 'cat > "$1"', 'fg-copy', path], { asLearner: true, stdin: content, timeoutMs: 30_000 });
    if (res.exitCode !== 0) throw new LabRuntimeError('lab_command_failed', `copy into ${device}:${path} failed: ${res.stderr.trim()}`);
  }

  async copyOut(scenarioId: string, device: string, hostPath: string, devicePath: string): Promise<void> {
    const path = normaliseDevicePath(devicePath);
    if (!path) throw new LabRuntimeError('lab_path_refused', `device path ${devicePath} must be absolute without ..`);
    const { names, init, kind } = await this.device(scenarioId, device);
    // base64 keeps binary content intact through the text-collecting runner.
    const res = await runCommand(this.learnerArgv(names, device, kind, init, ['/usr/bin/base64', '-w0', '--', path]), { env: LEARNER_ENV, timeoutMs: 30_000 });
    if (res.exitCode !== 0) throw new LabRuntimeError('lab_command_failed', `copy from ${device}:${path} failed: ${res.stderr.trim()}`);
    await writeFile(hostPath, Buffer.from(res.stdout, 'base64'));
  }

  async destroy(scenarioId: string): Promise<void> {
    await this.destroyLab(this.namesFor(scenarioId));
  }

  /** The entries of `dir` (network namespaces, user namespaces, FRR run dirs) named for this lab. */
  private async labEntries(dir: string, names: LabNames): Promise<string[]> {
    const all = await readdir(dir).catch(() => [] as string[]);
    return all.filter((f) => parseNsName(names.tag, f)?.hex === names.hex);
  }

  /**
   * Removes everything of one scenario, whatever state it is in: processes (through the
   * cgroup, plus recorded inits), namespaces (taking their veths and bridges with them, and
   * the nftables tables inside), cgroups and the device trees. Idempotent.
   */
  private async destroyLab(names: LabNames): Promise<void> {
    const lap = this.stopwatch();
    for (const ns of [...this.probes.keys()].filter((n) => n.startsWith(`${names.prefix}-`))) this.probes.delete(ns);
    for (const key of [...this.probeRuns.keys()].filter((k) => k.startsWith(`${names.prefix}\0`))) this.probeRuns.delete(key);
    const rec = await readRecord(this.stateDir, names.hex);
    // Everything but the device inits (and their unshare parents) first, so orphans are reaped
    // inside the lab; then the inits, whose exit takes down their PID namespaces.
    const inits = Object.values(rec?.initPids ?? {});
    const spare = new Set(inits);
    for (const pid of inits) {
      const ppid = await parentOf(pid);
      if (ppid !== undefined) spare.add(ppid);
    }
    await killCgroupProcesses(names.cgroupName(), spare);
    lap('destroy: kill lab processes');
    // Only pids still in the scenario's cgroup: a recorded pid may have been reused.
    const members = new Set(await cgroupPids(names.cgroupName()));
    for (const pid of inits.filter((p) => members.has(p))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    // Each unshare parent reaps its init and exits by itself; the rest is killed below.
    const end = Date.now() + 2000;
    while (Date.now() < end && (await cgroupPids(names.cgroupName())).some((p) => spare.has(p))) await new Promise((r) => setTimeout(r, 5));
    lap('destroy: kill device inits');
    await destroyCgroup(names.cgroupName());
    await this.killFrrOf(names);
    lap('destroy: cgroup');
    const namespaces = await this.labEntries(RUN_NETNS, names);
    const userns = (await this.labEntries(USERNS_DIR, names)).map((f) => `${USERNS_DIR}/${f}`);
    const frrDirs = (await this.labEntries(FRR_RUN_DIR, names)).map((f) => `${FRR_RUN_DIR}/${f}`);
    const storage = [...(await mountsUnder(scenarioDir(this.stateDir, names.hex))), ...frrDirs];
    if (namespaces.length > 0 || userns.length > 0 || storage.length > 0) {
      // One spawn: unpin the network namespaces (taking veths, bridges and nft tables with
      // them) and the user namespaces, and unmount the devices' tmpfs.
      const script =
        "ip -force -batch - <<'FG_END'\n" +
        namespaces.map((ns) => `netns del ${ns}`).join('\n') +
        '\nFG_END\nfor f in "$@"; do umount -l "$f" 2>/dev/null; [ -d "$f" ] || rm -f "$f"; done\n';
      await runCommand(['/bin/bash', '--norc', '--noprofile', '-c', script, 'fg-teardown', ...userns, ...storage], { timeoutMs: 15_000 });
    }
    lap('destroy: namespaces');
    for (const f of await this.labEntries(FRR_RUN_DIR, names)) await rm(`${FRR_RUN_DIR}/${f}`, { recursive: true, force: true });
    await rm(scenarioDir(this.stateDir, names.hex), { recursive: true, force: true });
    lap('destroy: directories');
  }

  /** FRR daemons that escaped the cgroup (never expected): found by their recorded pid files. */
  private async killFrrOf(names: LabNames): Promise<void> {
    for (const name of await this.labEntries(FRR_RUN_DIR, names)) {
      const frr = `${FRR_RUN_DIR}/${name}`;
      const files = await readdir(frr).catch(() => [] as string[]);
      for (const f of files.filter((n) => n.endsWith('.pid'))) {
        const pid = Number((await readFile(`${frr}/${f}`, 'utf8').catch(() => '')).trim());
        if (!Number.isInteger(pid) || pid <= 1) continue;
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        // Only a process that still runs with this device's frr dir is ours to kill.
        if (cmdline.includes(frr)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
    }
  }

  async list(): Promise<LabSummary[]> {
    const byHex = new Map<string, { devices: ReadonlySet<string>; rec?: LabRecord }>();
    for (const [hex, devices] of await this.objectsOnHost(this.tag)) byHex.set(hex, { devices });
    for (const hex of await listRecordHexes(this.stateDir)) {
      const rec = await readRecord(this.stateDir, hex);
      if (rec) byHex.set(hex, { devices: byHex.get(hex)?.devices ?? new Set(), rec });
    }
    const out: LabSummary[] = [];
    for (const [hex, e] of byHex) {
      const expected = e.rec?.spec.devices.map((d) => d.name) ?? [];
      const complete = e.rec?.status === 'running' && expected.every((d) => e.devices.has(d));
      out.push({
        ...(e.rec ? { scenarioId: e.rec.scenarioId, createdAt: e.rec.createdAt } : {}),
        prefix: new LabNames(this.tag, hex).prefix,
        devices: [...e.devices].sort(),
        status: complete ? 'running' : 'partial',
      });
    }
    return out;
  }

  async reconcile(keepScenarioIds: ReadonlySet<string>): Promise<{ removed: string[] }> {
    const keep = new Set([...keepScenarioIds].map(scenarioHex));
    const removed = await this.removeLegacyLabs();
    for (const lab of await this.list()) {
      const hex = lab.prefix.slice(lab.prefix.lastIndexOf('-') + 1);
      if (keep.has(hex)) continue;
      await this.destroyLab(new LabNames(this.tag, hex));
      removed.push(lab.scenarioId ?? lab.prefix);
    }
    return { removed };
  }

  /**
   * Labs built before instance tags grew to 32 bits carry the first 16 bits of the same hash.
   * Nothing reaches them under the current names, so those whose records are in this state dir
   * (ours for certain, whatever another instance's tag shares with ours) are removed whole.
   */
  private async removeLegacyLabs(): Promise<string[]> {
    const tag = legacyTag(this.tag);
    const found = await this.objectsOnHost(tag);
    const removed: string[] = [];
    if (found.size === 0) return removed;
    for (const hex of await listRecordHexes(this.stateDir)) {
      if (!found.has(hex)) continue;
      const names = new LabNames(tag, hex);
      const rec = await readRecord(this.stateDir, hex);
      await this.destroyLab(names);
      removed.push(rec?.scenarioId ?? names.prefix);
    }
    return removed;
  }

  /**
   * Every scenario with kernel objects named under `tag` (namespaces, user namespaces, FRR dirs,
   * cgroups), with the devices whose network namespaces exist.
   */
  private async objectsOnHost(tag: string): Promise<Map<string, Set<string>>> {
    const byHex = new Map<string, Set<string>>();
    const devicesOf = (hex: string): Set<string> => {
      let devices = byHex.get(hex);
      if (!devices) byHex.set(hex, (devices = new Set()));
      return devices;
    };
    for (const ns of await readdir(RUN_NETNS).catch(() => [] as string[])) {
      const parsed = parseNsName(tag, ns);
      if (parsed) {
        const devices = devicesOf(parsed.hex);
        if (parsed.device !== SWITCH_SUFFIX && !parsed.device.startsWith(PROBE_PREFIX)) devices.add(parsed.device);
      }
    }
    for (const dir of [USERNS_DIR, FRR_RUN_DIR]) {
      for (const f of await readdir(dir).catch(() => [] as string[])) {
        const parsed = parseNsName(tag, f);
        if (parsed) devicesOf(parsed.hex);
      }
    }
    for (const cg of await listCgroups(tag)) devicesOf(cg.slice(tag.length + 1));
    return byHex;
  }
}
