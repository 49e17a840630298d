/**
 * The lab runtime contract. The orchestrator, the scoreboard and the web terminal talk to a
 * lab only through `LabRuntime`; the netns driver (default) and a docker driver implement it.
 */

export type DeviceKind = 'host' | 'router';

export interface InterfaceSpec {
  /** Name of a network in `LabSpec.networks`. */
  readonly network: string;
  /** Address with prefix length, e.g. `10.0.1.10/24`; must lie inside the network's CIDR. */
  readonly address: string;
}

export interface RouteSpec {
  /** `default` or a CIDR. */
  readonly to: string;
  /** Next-hop address, reachable on one of the device's networks. */
  readonly via: string;
}

export interface FileSpec {
  /** Absolute path inside the device, under /etc, /root, /home, /tmp, /var or /run. */
  readonly path: string;
  readonly content: string;
  /** Unix mode, e.g. 0o644. Defaults to 0o644. */
  readonly mode?: number;
}

export interface DeviceSpec {
  /** `[a-z][a-z0-9-]{0,23}`: used in namespace names and as the hostname. */
  readonly name: string;
  readonly kind: DeviceKind;
  readonly interfaces: readonly InterfaceSpec[];
  readonly routes?: readonly RouteSpec[];
  readonly files?: readonly FileSpec[];
  /** Shell command lines run as the learner (root in the lab) once the device is up. */
  readonly startup?: readonly string[];
  /** FRR configuration (integrated `frr.conf` text), routers only. */
  readonly frrConfig?: string;
}

export interface NetworkSpec {
  readonly name: string;
  /** IPv4 CIDR of the segment, e.g. `10.0.1.0/24`. */
  readonly cidr: string;
}

export type EgressProto = 'tcp' | 'udp' | 'icmp' | 'any';

/**
 * One allowlist entry of an egress profile: traffic from the lab's devices (or only from
 * `from`) to a lab device or an address/CIDR, optionally limited to a protocol and port.
 */
export interface EgressRule {
  readonly device?: string;
  readonly cidr?: string;
  readonly proto: EgressProto;
  readonly port?: number;
  /**
   * Devices the rule applies to; all devices when absent. The netns driver matches the switch
   * port the traffic enters through (a device cannot forge it), so traffic a lab router
   * forwards counts as the router's.
   */
  readonly from?: readonly string[];
}

export interface EgressProfile {
  readonly name: string;
  readonly allow: readonly EgressRule[];
}

export interface ResourceLimits {
  readonly memoryBytes: number;
  readonly pids: number;
  /** cgroup v1 `cpu.shares` (1024 is one default share). */
  readonly cpuShares: number;
  /**
   * Writable storage of each device (its /etc, /root, /home, /tmp, /var, /run): the size of
   * the device's tmpfs. Writes past it fail with ENOSPC; what is written counts against
   * `memoryBytes` too (tmpfs pages are charged to the lab's memory cgroup).
   */
  readonly diskBytes: number;
}

export interface LabSpec {
  readonly scenarioId: string;
  readonly devices: readonly DeviceSpec[];
  readonly networks: readonly NetworkSpec[];
  readonly egress?: EgressProfile;
  readonly limits?: Partial<ResourceLimits>;
}

export interface DeviceAddress {
  readonly interface: string;
  readonly network: string;
  readonly address: string;
}

export interface DeviceHandle {
  readonly name: string;
  readonly kind: DeviceKind;
  readonly addresses: readonly DeviceAddress[];
  /** Driver-specific locator (netns driver: the network namespace name). */
  readonly locator: string;
}

export interface EgressState {
  /** True when rules were computed but not applied (dev only; callers gate it). */
  readonly dryRun: boolean;
  /**
   * The nftables rulesets by enforcement point, as applied (or as they would have been). The
   * netns driver enforces egress in the scenario's switch namespace, out of the learner's
   * reach (the learner is root over each device's own network and nftables): key `switch`.
   */
  readonly rulesets: Readonly<Record<string, string>>;
}

export interface LabHandle {
  readonly scenarioId: string;
  /** Short prefix carried by every kernel object of the scenario. */
  readonly prefix: string;
  readonly devices: readonly DeviceHandle[];
  readonly egress: EgressState;
  readonly limits: ResourceLimits;
  readonly createdAt: string;
}

export interface ExecOptions {
  readonly timeoutMs?: number;
  readonly stdin?: string | Uint8Array;
  /**
   * true: run as the learner would (all device namespaces, lab binaries, root in the device's
   * user namespace: CAP_NET_ADMIN over the device's network, nothing over the host).
   * false (trusted checks): the host's binaries, entering only the device's network
   * namespace, so nothing a learner changed inside the device can fake the result.
   */
  readonly asLearner?: boolean;
  /**
   * Trusted exec only: `mount` enters the device's filesystem view instead of its network;
   * `probe` runs in a grader-owned network namespace attached to the device's networks with
   * addresses of its own and the device's template routes, a vantage point nothing inside the
   * device (its firewall, addresses, listeners) can influence. Drivers without probes use `net`.
   */
  readonly enter?: 'net' | 'mount' | 'probe';
}

/** A finished command inside a device or on the host (netns/process.ts runCommand returns the same). */
export interface ExecResult {
  /** Process exit code; 124 on timeout, 128+n when killed by signal n. */
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly startedAt: string;
  readonly endedAt: string;
}

/** What a PTY layer needs to start an interactive login shell inside a device as the learner. */
export interface ShellCommand {
  readonly file: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/**
 * An interactive shell in a device, as the web terminal drives it: a local PTY (node-pty) or one
 * on the worker agent holding the lab, relayed over the fleet's channel.
 */
export interface ShellPty {
  readonly pid: number;
  onData(listener: (data: string) => void): void;
  onExit(listener: (e: { exitCode: number; signal?: number }) => void): void;
  write(data: string): void;
  resize(cols: number, rows: number): void;
  kill(signal?: string): void;
  pause(): void;
  resume(): void;
}

export interface LabSummary {
  /** Undefined for kernel objects whose state file is gone (orphans found by prefix). */
  readonly scenarioId?: string;
  readonly prefix: string;
  readonly devices: readonly string[];
  /** `running` when every device namespace exists, `partial` otherwise. */
  readonly status: 'running' | 'partial';
  readonly createdAt?: string;
}

export interface LabRuntime {
  readonly driver: string;
  create(spec: LabSpec): Promise<LabHandle>;
  exec(scenarioId: string, device: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  spawnShell(scenarioId: string, device: string): Promise<ShellCommand>;
  /** A learner shell run elsewhere (on a worker agent); absent: the caller starts spawnShell's command in a local PTY. */
  openShell?(scenarioId: string, device: string, size: { cols: number; rows: number }): Promise<ShellPty>;
  copyIn(scenarioId: string, device: string, hostPath: string, devicePath: string): Promise<void>;
  /** Both copy directions take (hostPath, devicePath) in that order. */
  copyOut(scenarioId: string, device: string, hostPath: string, devicePath: string): Promise<void>;
  destroy(scenarioId: string): Promise<void>;
  list(): Promise<LabSummary[]>;
  /** Removes every kernel object, process and directory of scenarios not in `keep`. */
  reconcile(keepScenarioIds: ReadonlySet<string>): Promise<{ removed: string[] }>;
}
