import { createHash } from 'node:crypto';

/**
 * Every kernel object of a scenario carries a prefix derived from the runtime instance (its
 * state dir) and the scenario id, so reconcile finds leftovers from kernel state alone and
 * never touches objects of another runtime instance (another test, another worker).
 *
 *   network namespace   fg-<tag8>-<hex8>-<device>   (one per device, owned by its user namespace)
 *                       fg-<tag8>-<hex8>-_sw        (the scenario's switch namespace, host-owned)
 *                       fg-<tag8>-<hex8>-_p-<device> (the grader's probe for a device, host-owned)
 *   user namespace      /run/frostgate/userns/fg-<tag8>-<hex8>-<device>  (bind mount of the
 *                       device's user namespace: lab root = the learner's host uid)
 *   FRR runtime dir     /run/frostgate/frr/fg-<tag8>-<hex8>-<device>  (config, pid files, sockets;
 *                       under /run so the frr user reaches it whatever the data dir's modes)
 *   bridge (in switch)  b<hex8>-<net>               (<= 15 chars)
 *   veth (switch side)  v<hex8>-<dev><if>           (device side is eth<N> in the device)
 *   cgroup (v1)         /sys/fs/cgroup/<ctl>/frostgate/<tag8>-<hex8>
 *   nftables tables     fg_<hex8> (bridge + inet)   (inside the switch namespace)
 */

export const NS_PREFIX = 'fg-';
export const SWITCH_SUFFIX = '_sw';
/** Probe namespaces are named <prefix>-_p-<device>: device names start with a letter, so never collide. */
export const PROBE_PREFIX = '_p-';
export const RUN_NETNS = '/run/netns';
export const USERNS_DIR = '/run/frostgate/userns';
export const FRR_RUN_DIR = '/run/frostgate/frr';

function hex(input: string, length: number): string {
  return createHash('sha256').update(input).digest('hex').slice(0, length);
}

/**
 * 32 bits: every runtime on a host (each test, each worker) has its own state dir, and a tag
 * shared by two of them would let one's reconcile remove the other's labs. With 16 bits, two
 * of a test run's ~40 state dirs now and then shared one (a CI run saw a lab's cgroup removed
 * under it while its record stayed).
 */
export function instanceTag(stateDir: string): string {
  return hex(`instance:${stateDir}`, 8);
}

/** The tag the same state dir had before tags grew to 32 bits (see removeLegacyLabs). */
export function legacyTag(tag: string): string {
  return tag.slice(0, 4);
}

export function scenarioHex(scenarioId: string): string {
  return hex(`scenario:${scenarioId}`, 8);
}

export class LabNames {
  readonly prefix: string;
  constructor(
    readonly tag: string,
    readonly hex: string,
  ) {
    this.prefix = `${NS_PREFIX}${tag}-${hex}`;
  }

  deviceNs(device: string): string {
    return `${this.prefix}-${device}`;
  }

  switchNs(): string {
    return `${this.prefix}-${SWITCH_SUFFIX}`;
  }

  bridge(networkIndex: number): string {
    return `b${this.hex}-${networkIndex.toString(36)}`;
  }

  vethSwitchSide(deviceIndex: number, ifIndex: number): string {
    return `v${this.hex}-${deviceIndex.toString(36)}${ifIndex.toString(36)}`;
  }

  /** Bind mount that keeps a handle on the device's user namespace (see network-script.ts). */
  usernsFile(device: string): string {
    return `${USERNS_DIR}/${this.deviceNs(device)}`;
  }

  /** A router's FRR dir (bound at /run/frr inside the device). */
  frrDir(device: string): string {
    return `${FRR_RUN_DIR}/${this.deviceNs(device)}`;
  }

  /** The grader's probe namespace standing in for a device (see NetnsLabRuntime.probeNs). */
  probeNs(device: string): string {
    return `${this.prefix}-${PROBE_PREFIX}${device}`;
  }

  /** Switch side of a probe's veth (<= 15 chars). */
  probeVeth(deviceIndex: number, ifIndex: number): string {
    return `p${this.hex}-${deviceIndex.toString(36)}${ifIndex.toString(36)}`;
  }

  cgroupName(): string {
    return `${this.tag}-${this.hex}`;
  }

  /** The scenario's egress tables in its switch namespace. */
  nftTable(): string {
    return `fg_${this.hex}`;
  }

  /**
   * Host uid the learner's "root" maps to: unprivileged, outside the system range, and
   * different per scenario so two labs never share an owner on the host.
   */
  learnerUid(): number {
    return 2_000_000 + (Number.parseInt(this.hex.slice(0, 6), 16) % 1_000_000);
  }
}

/** Splits a namespace name into its scenario prefix and device, when it is one of ours. */
export function parseNsName(tag: string, ns: string): { hex: string; device: string } | undefined {
  const head = `${NS_PREFIX}${tag}-`;
  if (!ns.startsWith(head)) return undefined;
  const rest = ns.slice(head.length);
  const match = /^([0-9a-f]{8})-(.+)$/.exec(rest);
  if (!match || match[1] === undefined || match[2] === undefined) return undefined;
  return { hex: match[1], device: match[2] };
}
