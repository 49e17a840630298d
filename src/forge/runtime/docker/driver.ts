import { chmod, mkdir, mkdtemp, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { LabRuntimeError } from '../errors.js';
import { formatIpv4, parseCidr } from '../ipv4.js';
import { normaliseDevicePath, resolveLimits, validateLabSpec } from '../spec.js';
import type { DeviceAddress, ExecOptions, ExecResult, FileSpec, LabHandle, LabRuntime, LabSpec, LabSummary, ShellCommand } from '../types.js';
import { CGROUP_PARENT, CGROUP_ROOT, createCgroup, destroyCgroup, inCgroupArgv } from '../netns/cgroup.js';
import { startFrr, vtyshArgs } from '../netns/frr.js';
import { FRR_RUN_DIR, LabNames, instanceTag, scenarioHex } from '../netns/naming.js';
import { SYSTEM_PATH, mustRun, runCommand } from '../netns/process.js';
import { type LabRecord, listRecordHexes, readRecord, scenarioDir, writeRecord } from '../netns/state.js';
import { ensureLabImage } from './image.js';

export interface DockerRuntimeOptions {
  /** Where per-scenario state lives (the netns driver's record format). */
  readonly stateDir: string;
  /** The docker CLI (talks to the local dockerd; no registry is used). */
  readonly docker?: string;
}

/**
 * The docker lab runtime, behind the same LabRuntime contract as the netns driver. Each device
 * is a container of a locally built base image (image.ts); each scenario network is an
 * `--internal` docker bridge network with a bridge name carrying the scenario's prefix; all
 * containers of a scenario sit under the scenario's cgroup (`--cgroup-parent`), so the same
 * memory/pids/CPU limits bound the whole lab.
 *
 * Differences from the netns driver, by design of docker rather than by choice:
 *  - root in a container is host root with a reduced capability set (no user namespace
 *    remapping without daemon-wide configuration); the netns driver maps lab root to an
 *    unprivileged uid, which is why it stays the default;
 *  - each docker bridge has a gateway address in the host namespace; a per-scenario nftables
 *    table in the host namespace drops everything from the lab's bridges to the host and
 *    across bridges (dockerd runs with --iptables=false, so nothing else filters);
 *  - internal networks have no uplink, so an egress allowlist cannot open anything outside
 *    the lab (the rules are reported, the lab's own networks are reachable as with netns).
 */
const CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETUID', 'SETGID', 'SETPCAP', 'NET_BIND_SERVICE', 'NET_ADMIN', 'NET_RAW', 'SYS_CHROOT'];
const LEARNER_ENV = ['HOME=/root', 'USER=root', 'LOGNAME=root', 'SHELL=/bin/bash', 'LANG=C.UTF-8', 'TERM=xterm-256color', `PATH=${SYSTEM_PATH}`];

interface DockerRecordExtra {
  /** Host pid of each device's container init (for trusted exec with host binaries). */
  readonly initPids?: Readonly<Record<string, number>>;
}

export class DockerLabRuntime implements LabRuntime {
  readonly driver = 'docker';
  readonly stateDir: string;
  readonly tag: string;
  private readonly docker: string;
  private image: Promise<string> | undefined;

  constructor(opts: DockerRuntimeOptions) {
    this.stateDir = resolvePath(opts.stateDir);
    this.tag = instanceTag(this.stateDir);
    this.docker = opts.docker ?? 'docker';
  }

  namesFor(scenarioId: string): LabNames {
    return new LabNames(this.tag, scenarioHex(scenarioId));
  }

  private labLabel(names: LabNames): string {
    return `fg.lab=${names.prefix}`;
  }

  private networkName(names: LabNames, n: number): string {
    return `${names.prefix}-n${n}`;
  }

  bridgeName(names: LabNames, n: number): string {
    return `fd${names.hex}${n.toString(36)}`;
  }

  nftTable(names: LabNames): string {
    return `fg_dk_${names.hex}`;
  }

  private run(args: readonly string[], opts: { stdin?: string | Uint8Array; timeoutMs?: number } = {}): Promise<ExecResult> {
    return runCommand([this.docker, ...args], { timeoutMs: 60_000, ...opts });
  }

  private async must(args: readonly string[], opts: { stdin?: string | Uint8Array; timeoutMs?: number } = {}): Promise<string> {
    const res = await this.run(args, opts);
    if (res.exitCode !== 0) throw new Error(`docker ${args.slice(0, 3).join(' ')} exited ${res.exitCode}: ${res.stderr.trim().slice(0, 2000)}`);
    return res.stdout;
  }

  /** The host-namespace filter: nothing from the lab's bridges to the host or across bridges. */
  private hostRuleset(names: LabNames, spec: LabSpec): string {
    const bridges = spec.networks.map((_, n) => `"${this.bridgeName(names, n)}"`);
    const set = bridges.length === 0 ? '{ "-" }' : `{ ${bridges.join(', ')} }`;
    return [
      `table inet ${this.nftTable(names)} {`,
      '  chain input {',
      '    type filter hook input priority -10; policy accept;',
      `    iifname ${set} drop`,
      '  }',
      '  chain forward {',
      '    type filter hook forward priority -10; policy accept;',
      // Bridged frames stay on their bridge; nothing is routed into or out of one.
      ...bridges.flatMap((br) => [`    iifname ${br} oifname != ${br} drop`, `    oifname ${br} iifname != ${br} drop`]),
      '  }',
      '}',
      '',
    ].join('\n');
  }

  async create(spec: LabSpec): Promise<LabHandle> {
    validateLabSpec(spec);
    const names = this.namesFor(spec.scenarioId);
    if (await readRecord(this.stateDir, names.hex)) throw new LabRuntimeError('lab_exists', `scenario ${spec.scenarioId} already has a lab`);
    const createdAt = new Date().toISOString();
    const limits = resolveLimits(spec);
    await mkdir(this.stateDir, { recursive: true });
    await writeRecord(this.stateDir, { scenarioId: spec.scenarioId, hex: names.hex, status: 'provisioning', spec, createdAt });
    try {
      // Built once per instance; a failed build is retried by the next create().
      this.image ??= ensureLabImage(this.docker).catch((e: unknown) => {
        this.image = undefined;
        throw e;
      });
      const image = await this.image;
      await createCgroup(names.cgroupName(), limits);
      const ruleset = this.hostRuleset(names, spec);
      await mustRun(['nft', '-f', '-'], { stdin: ruleset, timeoutMs: 10_000 });
      const labels = ['--label', `fg.instance=${this.tag}`, '--label', this.labLabel(names)];
      await Promise.all(
        spec.networks.map(async (net, n) => {
          const cidr = parseCidr(net.cidr)!;
          const used = new Set(spec.devices.flatMap((d) => d.interfaces.filter((i) => i.network === net.name).map((i) => parseCidr(i.address)!.host)));
          // Docker puts a gateway address on the bridge: the highest host address no device uses.
          let gw = cidr.base + 2 ** (32 - cidr.prefix) - 2;
          while (used.has(gw) && gw > cidr.base) gw--;
          await this.must([
            'network',
            'create',
            '--driver',
            'bridge',
            '--internal',
            '--subnet',
            net.cidr,
            '--gateway',
            formatIpv4(gw),
            '-o',
            `com.docker.network.bridge.name=${this.bridgeName(names, n)}`,
            '-o',
            'com.docker.network.bridge.enable_ip_masquerade=false',
            ...labels,
            this.networkName(names, n),
          ]);
        }),
      );
      const initPids: Record<string, number> = {};
      const addresses: Record<string, DeviceAddress[]> = {};
      await Promise.all(
        spec.devices.map(async (dev) => {
          const name = names.deviceNs(dev.name);
          const [first, ...rest] = dev.interfaces;
          const netOf = (network: string): string =>
            this.networkName(
              names,
              spec.networks.findIndex((n) => n.name === network),
            );
          const router = dev.kind === 'router';
          // FRR runs from the host in the container's network and UTS namespaces (it needs
          // CAP_SYS_ADMIN, which the container does not get); its sockets are bound in at /run/frr.
          const frrDir = this.frrDir(names, dev.name);
          if (router) await mkdir(frrDir, { recursive: true });
          await this.must([
            'create',
            '--name',
            name,
            '--hostname',
            dev.name,
            ...labels,
            '--label',
            `fg.device=${dev.name}`,
            ...(first ? ['--network', netOf(first.network), '--ip', first.address.split('/')[0]!] : ['--network', 'none']),
            '--cap-drop',
            'ALL',
            ...CAPS.flatMap((c) => ['--cap-add', c]),
            '--security-opt',
            'no-new-privileges',
            '--cgroup-parent',
            `/${CGROUP_PARENT}/${names.cgroupName()}`,
            '--init',
            '--sysctl',
            `net.ipv4.ip_forward=${router ? 1 : 0}`,
            '--sysctl',
            'net.ipv4.ping_group_range=0 2147483647',
            ...(router ? ['--mount', `type=bind,src=${frrDir},dst=/run/frr`] : []),
            image,
            '/usr/bin/sleep',
            'infinity',
          ]);
          for (const iface of rest) await this.must(['network', 'connect', '--ip', iface.address.split('/')[0]!, netOf(iface.network), name]);
          await this.placeFiles(name, dev.files ?? []);
          await this.must(['start', name]);
          initPids[dev.name] = Number((await this.must(['inspect', '--format', '{{.State.Pid}}', name])).trim());
          const setup = [
            // Docker's default route points at the bridge gateway (a host address): not part of the lab.
            'ip route del default 2>/dev/null || true',
            ...(dev.routes ?? []).map((r) => `ip route add ${r.to} via ${r.via}`),
          ];
          await this.must(['exec', name, '/bin/sh', '-ec', setup.join('\n')]);
          if (router && dev.frrConfig !== undefined) {
            const pid = initPids[dev.name]!;
            await startFrr({
              frrDir,
              config: dev.frrConfig,
              hostname: dev.name,
              wrap: (argv) => inCgroupArgv(names.cgroupName(), ['nsenter', '-t', String(pid), '--net', '--uts', ...argv]),
            });
          }
          const ifaces = await this.must(['exec', name, 'ip', '-4', '-o', 'addr', 'show']);
          addresses[dev.name] = dev.interfaces.map((iface) => {
            const addr = iface.address.split('/')[0]!;
            const line = ifaces.split('\n').find((l) => l.includes(` ${addr}/`));
            return { interface: line?.split(/\s+/)[1] ?? '', network: iface.network, address: iface.address };
          });
        }),
      );
      const handle: LabHandle = {
        scenarioId: spec.scenarioId,
        prefix: names.prefix,
        devices: spec.devices.map((d) => ({ name: d.name, kind: d.kind, addresses: addresses[d.name] ?? [], locator: names.deviceNs(d.name) })),
        egress: { dryRun: false, rulesets: { host: ruleset } },
        limits,
        createdAt,
      };
      const record: LabRecord & DockerRecordExtra = { scenarioId: spec.scenarioId, hex: names.hex, status: 'running', spec, createdAt, handle, initPids };
      await writeRecord(this.stateDir, record);
      for (const dev of spec.devices) {
        for (const line of dev.startup ?? []) {
          const res = await this.exec(spec.scenarioId, dev.name, ['/bin/sh', '-c', line], { asLearner: true });
          if (res.exitCode !== 0)
            throw new LabRuntimeError('lab_command_failed', `startup on ${dev.name} (${line}) exited ${res.exitCode}: ${res.stderr.trim().slice(0, 500)}`);
        }
      }
      return handle;
    } catch (e) {
      await this.destroyByHex(names.hex).catch(() => undefined);
      if (e instanceof LabRuntimeError) throw e;
      throw new LabRuntimeError('lab_create_failed', `creating lab ${spec.scenarioId}: ${(e as Error).message}`, { cause: e });
    }
  }

  private frrDir(names: LabNames, device: string): string {
    return names.frrDir(device);
  }

  /** Template files copied in before start, in one `docker cp`. */
  private async placeFiles(container: string, files: readonly FileSpec[]): Promise<void> {
    if (files.length === 0) return;
    const dir = await mkdtemp(join(tmpdir(), 'fg-dk-files-'));
    try {
      for (const f of files.map((x) => ({ path: normaliseDevicePath(x.path)!, content: x.content, mode: x.mode ?? 0o644 }))) {
        const target = join(dir, f.path);
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, f.content);
        await chmod(target, f.mode);
      }
      await this.must(['cp', `${dir}/.`, `${container}:/`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async record(scenarioId: string): Promise<LabRecord & DockerRecordExtra> {
    const rec = await readRecord(this.stateDir, scenarioHex(scenarioId));
    if (!rec || rec.scenarioId !== scenarioId || rec.status !== 'running')
      throw new LabRuntimeError('lab_not_found', `no running lab for scenario ${scenarioId}`);
    return rec;
  }

  private async container(scenarioId: string, device: string): Promise<{ name: string; pid: number }> {
    const rec = await this.record(scenarioId);
    const pid = rec.initPids?.[device];
    if (!rec.spec.devices.some((d) => d.name === device) || pid === undefined)
      throw new LabRuntimeError('device_not_found', `scenario ${scenarioId} has no device ${device}`);
    return { name: this.namesFor(scenarioId).deviceNs(device), pid };
  }

  async exec(scenarioId: string, device: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new LabRuntimeError('lab_command_failed', 'empty argv');
    const { name, pid } = await this.container(scenarioId, device);
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const run = { ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}), timeoutMs };
    if (opts.asLearner) {
      // Killing the docker client would leave the command running in the container: the
      // deadline is enforced inside it too.
      const secs = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
      const res = await runCommand(
        [this.docker, 'exec', '-i', '-w', '/root', ...LEARNER_ENV.flatMap((e) => ['-e', e]), name, 'timeout', '-s', 'KILL', secs, ...argv],
        run,
      );
      return res.exitCode === 137 && !res.timedOut ? { ...res, exitCode: 124, timedOut: true } : res;
    }
    // Trusted: the host's binaries in the container's network (or mount) namespace.
    const enter = opts.enter === 'mount' ? ['nsenter', '-t', String(pid), '--mount', '--root', '--wdns=/'] : ['nsenter', `--net=/proc/${pid}/ns/net`];
    const cmd = [...argv];
    if (cmd[0] === 'vtysh' || cmd[0] === '/usr/bin/vtysh') cmd.splice(1, 0, ...vtyshArgs(this.frrDir(this.namesFor(scenarioId), device)));
    return runCommand([...enter, ...cmd], run);
  }

  async spawnShell(scenarioId: string, device: string): Promise<ShellCommand> {
    const { name } = await this.container(scenarioId, device);
    return {
      file: this.docker,
      args: ['exec', '-it', '-w', '/root', ...LEARNER_ENV.flatMap((e) => ['-e', e]), name, '/bin/bash', '--login'],
      env: { PATH: SYSTEM_PATH },
    };
  }

  async copyIn(scenarioId: string, device: string, hostPath: string, devicePath: string): Promise<void> {
    const path = normaliseDevicePath(devicePath);
    if (!path) throw new LabRuntimeError('lab_path_refused', `device path ${devicePath} must be absolute without ..`);
    const { name } = await this.container(scenarioId, device);
    const res = await this.run(['cp', hostPath, `${name}:${path}`]);
    if (res.exitCode !== 0) throw new LabRuntimeError('lab_command_failed', `copy into ${device}:${path} failed: ${res.stderr.trim()}`);
  }

  async copyOut(scenarioId: string, device: string, hostPath: string, devicePath: string): Promise<void> {
    const path = normaliseDevicePath(devicePath);
    if (!path) throw new LabRuntimeError('lab_path_refused', `device path ${devicePath} must be absolute without ..`);
    const { name } = await this.container(scenarioId, device);
    const res = await this.run(['cp', `${name}:${path}`, hostPath]);
    if (res.exitCode !== 0) throw new LabRuntimeError('lab_command_failed', `copy from ${device}:${path} failed: ${res.stderr.trim()}`);
  }

  async destroy(scenarioId: string): Promise<void> {
    await this.destroyByHex(scenarioHex(scenarioId));
  }

  /** Containers, networks, the host nft table, the cgroup (every hierarchy) and the state dir. Idempotent. */
  private async destroyByHex(hex: string): Promise<void> {
    const names = new LabNames(this.tag, hex);
    const label = this.labLabel(names);
    const containers = (await this.run(['ps', '-aq', '--filter', `label=${label}`])).stdout.split('\n').filter(Boolean);
    if (containers.length > 0) await this.run(['rm', '-f', '-v', ...containers]);
    const networks = (await this.run(['network', 'ls', '-q', '--filter', `label=${label}`])).stdout.split('\n').filter(Boolean);
    if (networks.length > 0) await this.run(['network', 'rm', ...networks]);
    await runCommand(['nft', 'delete', 'table', 'inet', this.nftTable(names)], { timeoutMs: 10_000 });
    await destroyCgroup(names.cgroupName());
    // Docker also made the parent in the hierarchies the netns driver does not use.
    for (const ctl of await readdir(CGROUP_ROOT).catch(() => [] as string[])) {
      await rmdir(`${CGROUP_ROOT}/${ctl}/${CGROUP_PARENT}/${names.cgroupName()}`).catch(() => undefined);
    }
    for (const f of await readdir(FRR_RUN_DIR).catch(() => [] as string[])) {
      if (f.startsWith(`${names.prefix}-`)) await rm(`${FRR_RUN_DIR}/${f}`, { recursive: true, force: true });
    }
    await rm(scenarioDir(this.stateDir, hex), { recursive: true, force: true });
  }

  async list(): Promise<LabSummary[]> {
    const byPrefix = new Map<string, { devices: Set<string>; running: number; rec?: LabRecord }>();
    const entry = (prefix: string) => {
      let e = byPrefix.get(prefix);
      if (!e) byPrefix.set(prefix, (e = { devices: new Set(), running: 0 }));
      return e;
    };
    const ps = await this.run(['ps', '-a', '--filter', `label=fg.instance=${this.tag}`, '--format', '{{.Label "fg.lab"}}\t{{.Label "fg.device"}}\t{{.State}}']);
    for (const line of ps.stdout.split('\n').filter(Boolean)) {
      const [prefix, device, state] = line.split('\t');
      if (!prefix || !device) continue;
      const e = entry(prefix);
      e.devices.add(device);
      if (state === 'running') e.running++;
    }
    const nets = await this.run(['network', 'ls', '--filter', `label=fg.instance=${this.tag}`, '--format', '{{.Label "fg.lab"}}']);
    for (const prefix of nets.stdout.split('\n').filter(Boolean)) entry(prefix);
    for (const hex of await listRecordHexes(this.stateDir)) {
      const rec = await readRecord(this.stateDir, hex);
      if (rec) entry(new LabNames(this.tag, hex).prefix).rec = rec;
    }
    return [...byPrefix].map(([prefix, e]) => {
      const expected = e.rec?.spec.devices.map((d) => d.name) ?? [];
      const complete = e.rec?.status === 'running' && expected.every((d) => e.devices.has(d)) && e.running === expected.length;
      return {
        ...(e.rec ? { scenarioId: e.rec.scenarioId, createdAt: e.rec.createdAt } : {}),
        prefix,
        devices: [...e.devices].sort(),
        status: complete ? ('running' as const) : ('partial' as const),
      };
    });
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

/** True when a docker daemon answers (the docker driver's tests run only then). */
export async function dockerAvailable(docker = 'docker'): Promise<boolean> {
  const res = await runCommand([docker, 'info', '--format', '{{.ServerVersion}}'], { timeoutMs: 10_000 });
  return res.exitCode === 0 && res.stdout.trim() !== '';
}
