import { chmod, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { applyEgressRuleset } from '../../egress/apply.js';
import { buildDeviceRuleset } from '../../egress/ruleset.js';
import { LabRuntimeError } from '../errors.js';
import { normaliseDevicePath, resolveLimits, validateLabSpec } from '../spec.js';
import type {
  DeviceHandle,
  ExecOptions,
  ExecResult,
  LabHandle,
  LabRuntime,
  LabSpec,
  LabSummary,
  ShellCommand,
} from '../types.js';
import { createCgroup, destroyCgroup, inCgroupArgv, listCgroups } from './cgroup.js';
import { deviceDirs, placeFile, prepareDeviceTree } from './device-fs.js';
import { startDeviceInit } from './device-init.js';
import { startFrr, vtyshArgs } from './frr.js';
import { LabNames, SWITCH_SUFFIX, instanceTag, parseNsName, scenarioHex } from './naming.js';
import { SYSTEM_PATH, killTree, mustRun, runCommand } from './process.js';
import { type LabRecord, listRecordHexes, readRecord, scenarioDir, writeRecord } from './state.js';
import { deviceAddresses, deviceBatch, namespacesBatch, switchBatch } from './topology.js';

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
}

const RUN_NETNS = '/run/netns';
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

  constructor(opts: NetnsRuntimeOptions) {
    this.stateDir = resolvePath(opts.stateDir);
    this.tag = instanceTag(this.stateDir);
    this.egressDryRun = opts.egressDryRun ?? false;
    this.deviceStartTimeoutMs = opts.deviceStartTimeoutMs ?? 15_000;
    this.startupTimeoutMs = opts.startupTimeoutMs ?? 30_000;
  }

  namesFor(scenarioId: string): LabNames {
    return new LabNames(this.tag, scenarioHex(scenarioId));
  }

  /** The network namespace of a device (for tests and trusted tooling). */
  netnsOf(scenarioId: string, device: string): string {
    return this.namesFor(scenarioId).deviceNs(device);
  }

  async create(spec: LabSpec): Promise<LabHandle> {
    validateLabSpec(spec);
    const names = this.namesFor(spec.scenarioId);
    const dir = scenarioDir(this.stateDir, names.hex);
    if ((await readRecord(this.stateDir, names.hex)) || (await this.namespacesOf(names.hex)).length > 0) {
      throw new LabRuntimeError('lab_exists', `scenario ${spec.scenarioId} already has a lab`);
    }
    const createdAt = new Date().toISOString();
    const limits = resolveLimits(spec);
    // The state dir must be traversable by the frr user (FRR drops privileges).
    await mkdir(this.stateDir, { recursive: true });
    await chmod(this.stateDir, 0o711);
    // Recorded before any kernel object exists, so a crash mid-way leaves a claimable trail.
    await writeRecord(this.stateDir, { scenarioId: spec.scenarioId, hex: names.hex, status: 'provisioning', spec, createdAt });
    try {
      const initPids = await this.provision(spec, names, dir);
      const rulesets: Record<string, string> = {};
      for (const dev of spec.devices) {
        rulesets[dev.name] = buildDeviceRuleset({ spec, device: dev.name, table: names.nftTable(dev.name) });
      }
      const handle: LabHandle = {
        scenarioId: spec.scenarioId,
        prefix: names.prefix,
        devices: spec.devices.map(
          (d): DeviceHandle => ({
            name: d.name,
            kind: d.kind,
            addresses: deviceAddresses(spec, d.name),
            locator: names.deviceNs(d.name),
          }),
        ),
        egress: { dryRun: this.egressDryRun, rulesets },
        limits,
        createdAt,
      };
      const record: LabRecord = { scenarioId: spec.scenarioId, hex: names.hex, status: 'running', spec, createdAt, handle, initPids };
      await writeRecord(this.stateDir, record);
      await this.runStartup(spec);
      return handle;
    } catch (e) {
      await this.destroyByHex(names.hex).catch(() => undefined);
      if (e instanceof LabRuntimeError) throw e;
      throw new LabRuntimeError('lab_create_failed', `creating lab ${spec.scenarioId}: ${(e as Error).message}`, { cause: e });
    }
  }

  private async provision(spec: LabSpec, names: LabNames, dir: string): Promise<Record<string, number>> {
    const limits = resolveLimits(spec);
    const uid = names.learnerUid();
    const cgroup = names.cgroupName();
    await createCgroup(cgroup, limits);
    await mustRun(['ip', '-batch', '-'], { stdin: namespacesBatch(spec, names), timeoutMs: 15_000 });
    await mustRun(['ip', '-n', names.switchNs(), '-batch', '-'], { stdin: switchBatch(spec, names), timeoutMs: 15_000 });

    const initPids: Record<string, number> = {};
    await Promise.all(
      spec.devices.map(async (dev) => {
        const ns = names.deviceNs(dev.name);
        const dirs = deviceDirs(dir, dev.name);
        const router = dev.kind === 'router';
        await prepareDeviceTree(dirs, uid, router);
        await writeFile(`${dirs.etcUpper}/hostname`, `${dev.name}\n`);
        const hosts = await readFile('/etc/hosts', 'utf8').catch(() => '127.0.0.1 localhost\n');
        await writeFile(`${dirs.etcUpper}/hosts`, `${hosts.trimEnd()}\n127.0.1.1 ${dev.name}\n`);
        for (const file of dev.files ?? []) await placeFile(dirs, file, uid);
        const [init] = await Promise.all([
          startDeviceInit({ netns: ns, cgroup, deviceDir: dirs.base, hostname: dev.name, router, timeoutMs: this.deviceStartTimeoutMs }),
          mustRun(['ip', '-n', ns, '-batch', '-'], { stdin: deviceBatch(spec, dev.name), timeoutMs: 15_000 }),
        ]);
        initPids[dev.name] = init;
        // Egress is in force before anything the learner controls runs on the device.
        const ruleset = buildDeviceRuleset({ spec, device: dev.name, table: names.nftTable(dev.name) });
        await applyEgressRuleset(ns, ruleset, { dryRun: this.egressDryRun });
        if (router && dev.frrConfig !== undefined) {
          await startFrr({
            frrDir: dirs.frr,
            config: dev.frrConfig,
            hostname: dev.name,
            wrap: (argv) => inCgroupArgv(cgroup, ['nsenter', '-t', String(init), '--net', '--uts', ...argv]),
          });
        }
      }),
    );
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

  private async device(scenarioId: string, device: string): Promise<{ rec: LabRecord; names: LabNames; init: number; router: boolean }> {
    const rec = await this.record(scenarioId);
    const dev = rec.spec.devices.find((d) => d.name === device);
    const init = rec.initPids?.[device];
    if (!dev || init === undefined) throw new LabRuntimeError('device_not_found', `scenario ${scenarioId} has no device ${device}`);
    return { rec, names: this.namesFor(scenarioId), init, router: dev.kind === 'router' };
  }

  /** argv that runs a command as the learner: all device namespaces, then a user namespace. */
  private learnerArgv(names: LabNames, init: number, argv: readonly string[]): string[] {
    const uid = String(names.learnerUid());
    return inCgroupArgv(names.cgroupName(), [
      'nsenter', '-t', String(init), '--mount', '--uts', '--ipc', '--net', '--pid', '--root', '--wdns=/root',
      'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--no-new-privs',
      'unshare', '--user', '--map-root-user', '--',
      ...argv,
    ]);
  }

  async exec(scenarioId: string, device: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new LabRuntimeError('lab_command_failed', 'empty argv');
    const { names, init, router } = await this.device(scenarioId, device);
    let full: string[];
    let env: Record<string, string> | undefined;
    if (opts.asLearner) {
      full = this.learnerArgv(names, init, argv);
      env = LEARNER_ENV;
    } else if (opts.enter === 'mount') {
      full = inCgroupArgv(names.cgroupName(), ['nsenter', '-t', String(init), '--mount', '--root', '--wdns=/', ...argv]);
    } else {
      // Trusted: host binaries and host filesystem, only the device's network namespace.
      // `vtysh` is pointed at the device's own FRR sockets.
      const cmd = [...argv];
      if (router && (cmd[0] === 'vtysh' || cmd[0] === '/usr/bin/vtysh')) {
        cmd.splice(1, 0, ...vtyshArgs(deviceDirs(scenarioDir(this.stateDir, names.hex), device).frr));
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

  async spawnShell(scenarioId: string, device: string): Promise<ShellCommand> {
    const { names, init } = await this.device(scenarioId, device);
    const [file, ...args] = this.learnerArgv(names, init, ['/bin/bash', '--login']);
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
    const { names, init } = await this.device(scenarioId, device);
    // base64 keeps binary content intact through the text-collecting runner.
    const res = await runCommand(this.learnerArgv(names, init, ['/usr/bin/base64', '-w0', '--', path]), { env: LEARNER_ENV, timeoutMs: 30_000 });
    if (res.exitCode !== 0) throw new LabRuntimeError('lab_command_failed', `copy from ${device}:${path} failed: ${res.stderr.trim()}`);
    await writeFile(hostPath, Buffer.from(res.stdout, 'base64'));
  }

  async destroy(scenarioId: string): Promise<void> {
    await this.destroyByHex(scenarioHex(scenarioId));
  }

  private async namespacesOf(hex: string): Promise<string[]> {
    const all = await readdir(RUN_NETNS).catch(() => [] as string[]);
    return all.filter((ns) => parseNsName(this.tag, ns)?.hex === hex);
  }

  /**
   * Removes everything of one scenario, whatever state it is in: processes (through the
   * cgroup, plus recorded inits), namespaces (taking their veths and bridges with them, and
   * the nftables tables inside), cgroups and the device trees. Idempotent.
   */
  private async destroyByHex(hex: string): Promise<void> {
    const names = new LabNames(this.tag, hex);
    const rec = await readRecord(this.stateDir, hex);
    for (const pid of Object.values(rec?.initPids ?? {})) await killTree(pid).catch(() => undefined);
    await destroyCgroup(names.cgroupName());
    await this.killFrrOf(hex);
    const namespaces = await this.namespacesOf(hex);
    if (namespaces.length > 0) {
      await runCommand(['ip', '-force', '-batch', '-'], { stdin: namespaces.map((ns) => `netns del ${ns}`).join('\n') + '\n', timeoutMs: 15_000 });
    }
    await rm(scenarioDir(this.stateDir, hex), { recursive: true, force: true });
  }

  /** FRR daemons that escaped the cgroup (never expected): found by their recorded pid files. */
  private async killFrrOf(hex: string): Promise<void> {
    const dir = scenarioDir(this.stateDir, hex);
    const devices = await readdir(dir).catch(() => [] as string[]);
    for (const dev of devices) {
      const frr = `${dir}/${dev}/frr`;
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
    const byHex = new Map<string, { devices: Set<string>; rec?: LabRecord }>();
    const entry = (hex: string): { devices: Set<string>; rec?: LabRecord } => {
      let e = byHex.get(hex);
      if (!e) byHex.set(hex, (e = { devices: new Set() }));
      return e;
    };
    for (const ns of await readdir(RUN_NETNS).catch(() => [] as string[])) {
      const parsed = parseNsName(this.tag, ns);
      if (parsed && parsed.device !== SWITCH_SUFFIX) entry(parsed.hex).devices.add(parsed.device);
    }
    for (const cg of await listCgroups(this.tag)) entry(cg.slice(this.tag.length + 1));
    for (const hex of await listRecordHexes(this.stateDir)) {
      const rec = await readRecord(this.stateDir, hex);
      if (rec) entry(hex).rec = rec;
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
    const removed: string[] = [];
    for (const lab of await this.list()) {
      const hex = lab.prefix.slice(lab.prefix.lastIndexOf('-') + 1);
      if (keep.has(hex)) continue;
      await this.destroyByHex(hex);
      removed.push(lab.scenarioId ?? lab.prefix);
    }
    return { removed };
  }
}
