import { LabRuntimeError } from '../errors.js';
import type { LabSpec } from '../types.js';
import type { LabNames } from './naming.js';

/**
 * The grader's probe for a device: a host-owned network namespace that stands in for the device
 * on the lab's networks while a check runs. It has the device's template addresses and routes
 * and its interfaces' MAC addresses; for the check's duration the switch unplugs the device's
 * ports from their bridges and plugs the probe's in (standInScript), then puts them back. Checks
 * that judge the network between devices (reachability, http, dns) run from here, so nothing the
 * learner does inside the endpoint (an output drop, a local address or listener standing in for
 * a server, a blackhole route) changes their result, while rules on the path that match the
 * device's address (a router ACL on the attacker's source) still apply.
 */

/** Shell script (host root) that builds the probe namespace of `device`; `macs` are the device's interface MACs, eth0 first. */
export function probeScript(spec: LabSpec, names: LabNames, device: string, macs: readonly string[]): string {
  const d = spec.devices.findIndex((x) => x.name === device);
  const dev = spec.devices[d];
  if (!dev) throw new LabRuntimeError('device_not_found', `no device ${device}`);
  const ns = names.probeNs(device);
  const sw: string[] = [];
  const inside = ['link set lo up'];
  dev.interfaces.forEach((iface, i) => {
    const mac = macs[i];
    if (mac === undefined || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac))
      throw new LabRuntimeError('lab_command_failed', `${device} eth${i} has no MAC address`);
    sw.push(`link add ${names.probeVeth(d, i)} type veth peer name eth${i} netns ${ns}`);
    inside.push(`link set eth${i} address ${mac}`, `addr add ${iface.address} dev eth${i}`, `link set eth${i} up`);
  });
  for (const route of dev.routes ?? []) inside.push(`route add ${route.to} via ${route.via}`);
  // `ip netns add` first on its own: a second grader racing for the same probe fails there.
  return [
    'set -e',
    `ip netns add ${ns}`,
    `ip -n ${names.switchNs()} -batch - <<'FG_END'`,
    ...sw,
    'FG_END',
    `ip -n ${ns} -batch - <<'FG_END'`,
    ...inside,
    'FG_END',
  ].join('\n');
}

/** `ip -batch` for the switch: the probe plugged in where the device was (`probeIn`), or the device back (`!probeIn`). */
export function standInBatch(spec: LabSpec, names: LabNames, device: string, probeIn: boolean): string {
  const d = spec.devices.findIndex((x) => x.name === device);
  const dev = spec.devices[d]!;
  const lines: string[] = [];
  dev.interfaces.forEach((iface, i) => {
    const bridge = names.bridge(spec.networks.findIndex((n) => n.name === iface.network));
    const [out, into] = probeIn ? [names.vethSwitchSide(d, i), names.probeVeth(d, i)] : [names.probeVeth(d, i), names.vethSwitchSide(d, i)];
    lines.push(`link set ${out} down`, `link set ${out} nomaster`, `link set ${into} master ${bridge}`, `link set ${into} up`);
  });
  return lines.join('\n') + '\n';
}
