import { createHash } from 'node:crypto';

/**
 * Every kernel object of a scenario carries a prefix derived from the runtime instance (its
 * state dir) and the scenario id, so reconcile finds leftovers from kernel state alone and
 * never touches objects of another runtime instance (another test, another worker).
 *
 *   network namespace   fg-<tag4>-<hex8>-<device>   (one per device)
 *                       fg-<tag4>-<hex8>-_sw        (the scenario's switch namespace)
 *   bridge (in switch)  b<hex8>-<net>               (<= 15 chars)
 *   veth (switch side)  v<hex8>-<dev><if>           (device side is eth<N> in the device)
 *   cgroup (v1)         /sys/fs/cgroup/<ctl>/frostgate/<tag4>-<hex8>
 *   nftables table      fg_<hex8>_<device>          (inside the device's namespace)
 */

export const NS_PREFIX = 'fg-';
export const SWITCH_SUFFIX = '_sw';

function hex(input: string, length: number): string {
  return createHash('sha256').update(input).digest('hex').slice(0, length);
}

export function instanceTag(stateDir: string): string {
  return hex(`instance:${stateDir}`, 4);
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

  cgroupName(): string {
    return `${this.tag}-${this.hex}`;
  }

  nftTable(device: string): string {
    return `fg_${this.hex}_${device.replace(/-/g, '_')}`;
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
