import { formatCidr, parseCidr } from '../ipv4.js';
import type { EgressRule, LabSpec } from '../types.js';

/**
 * The egress policy of one scenario, enforced in the scenario's switch namespace: the
 * namespace that holds its bridges, owned by the host's user namespace. The learner is root
 * over the network namespace of each device (addresses, routes, their own nftables), but has
 * no capability in the switch namespace, so nothing done inside a device loosens this.
 *
 * Every frame between two devices, or from a device to anything else joined to a bridge,
 * crosses the switch:
 *  - bridge family: only ARP and IPv4 are switched; nothing is delivered to the switch's own
 *    stack (a bridge with an address, a route out of the switch: still nothing gets through);
 *    frames are marked with the index of the device whose port they enter through, which is
 *    what `from` of an allow rule matches (a port cannot be forged from inside a device).
 *  - inet family (bridged IPv4 reaches it through br_netfilter, with conntrack): `policy drop`
 *    except replies, traffic between the scenario's own networks, link-local multicast and
 *    limited broadcast from them (routing protocols), and the template profile's allowlist.
 */
export interface SwitchEgressInput {
  readonly spec: LabSpec;
  /** nftables table name (both families). */
  readonly table: string;
  /** Switch-side port (veth) names of each device, by device name. */
  readonly ports: Readonly<Record<string, readonly string[]>>;
}

function addressesOf(spec: LabSpec, device: string): string[] {
  const dev = spec.devices.find((d) => d.name === device);
  return (dev?.interfaces ?? []).map((i) => i.address.split('/')[0] ?? '').filter((a) => a !== '');
}

function ruleTargets(spec: LabSpec, rule: EgressRule): string[] {
  if (rule.device !== undefined) return addressesOf(spec, rule.device);
  const cidr = rule.cidr === undefined ? undefined : parseCidr(rule.cidr);
  return cidr ? [cidr.prefix === 32 ? rule.cidr!.split('/')[0]! : formatCidr(cidr)] : [];
}

const set = (items: readonly (string | number)[]): string => (items.length === 1 ? String(items[0]) : `{ ${items.join(', ')} }`);

/** Packet mark of frames entering through a device's ports: its index in the spec, plus one. */
export function deviceMark(spec: LabSpec, device: string): number {
  return spec.devices.findIndex((d) => d.name === device) + 1;
}

function ruleMatch(spec: LabSpec, rule: EgressRule): string | undefined {
  const targets = ruleTargets(spec, rule);
  if (targets.length === 0) return undefined;
  const from = rule.from === undefined ? '' : `meta mark ${set(rule.from.map((d) => deviceMark(spec, d)))} `;
  const daddr = `${from}ip daddr ${set(targets)}`;
  if (rule.proto === 'any') return `${daddr} accept`;
  if (rule.proto === 'icmp') return `${daddr} ip protocol icmp accept`;
  return rule.port === undefined ? `${daddr} ip protocol ${rule.proto} accept` : `${daddr} ${rule.proto} dport ${rule.port} accept`;
}

export function buildSwitchRuleset(input: SwitchEgressInput): string {
  const { spec, table, ports } = input;
  const nets = spec.networks.map((n) => n.cidr);
  const allow = (spec.egress?.allow ?? []).map((r) => ruleMatch(spec, r)).filter((r): r is string => r !== undefined);
  const marks = spec.devices.flatMap((d) => (ports[d.name] ?? []).map((p) => `"${p}" : ${deviceMark(spec, d.name)}`));

  const chain = (name: string, hook: string, priority: number, policy: 'accept' | 'drop', rules: readonly string[]): string[] => [
    `  chain ${name} {`,
    `    type filter hook ${hook} priority ${priority}; policy ${policy};`,
    ...rules.map((r) => `    ${r}`),
    '  }',
  ];
  const bridge = [
    `table bridge ${table} {`,
    ...chain('prerouting', 'prerouting', -200, 'accept', marks.length > 0 ? [`meta mark set iifname map { ${marks.join(', ')} }`] : []),
    ...chain('forward', 'forward', -200, 'drop', ['ether type arp accept', 'ether type ip accept']),
    ...chain('input', 'input', -200, 'drop', []),
    '}',
  ];
  const own =
    nets.length === 0 ? [] : [`ip saddr ${set(nets)} ip daddr ${set(nets)} accept`, `ip saddr ${set(nets)} ip daddr { 224.0.0.0/24, 255.255.255.255 } accept`];
  const inet = [
    `table inet ${table} {`,
    ...chain('forward', 'forward', 0, 'drop', ['ct state established,related accept', ...own, ...allow]),
    ...chain('input', 'input', 0, 'drop', []),
    ...chain('output', 'output', 0, 'drop', []),
    '}',
  ];
  return [...bridge, ...inet, ''].join('\n');
}
