import { formatCidr, parseCidr } from '../runtime/ipv4.js';
import type { EgressRule, LabSpec } from '../runtime/types.js';

/**
 * Builds the nftables ruleset of one lab device: `policy drop` on output (and on forward for
 * routers) except loopback, replies, the scenario's own networks, link-local multicast for
 * routing protocols, and the profile's allowlist. The text is what `nft -f` applies, and
 * what dry-run returns and readiness reports.
 */
export interface DeviceEgressInput {
  readonly spec: LabSpec;
  readonly device: string;
  readonly table: string;
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

function ruleMatch(spec: LabSpec, rule: EgressRule): string | undefined {
  const targets = ruleTargets(spec, rule);
  if (targets.length === 0) return undefined;
  const daddr = targets.length === 1 ? `ip daddr ${targets[0]}` : `ip daddr { ${targets.join(', ')} }`;
  if (rule.proto === 'any') return `${daddr} accept`;
  if (rule.proto === 'icmp') return `${daddr} ip protocol icmp accept`;
  return rule.port === undefined
    ? `${daddr} ip protocol ${rule.proto} accept`
    : `${daddr} ${rule.proto} dport ${rule.port} accept`;
}

export function buildDeviceRuleset(input: DeviceEgressInput): string {
  const { spec, device, table } = input;
  const dev = spec.devices.find((d) => d.name === device);
  if (!dev) throw new Error(`unknown device ${device}`);
  const nets = spec.networks.map((n) => n.cidr);
  const allow = (spec.egress?.allow ?? [])
    .filter((r) => r.from === undefined || r.from.includes(device))
    .map((r) => ruleMatch(spec, r))
    .filter((r): r is string => r !== undefined);
  const netSet = nets.length === 0 ? undefined : `{ ${nets.join(', ')} }`;

  const out = [
    'type filter hook output priority 0; policy drop;',
    'oifname "lo" accept',
    'ct state established,related accept',
    ...(netSet ? [`ip daddr ${netSet} accept`] : []),
    // OSPF hellos and other link-local multicast never leave the segment.
    'ip daddr 224.0.0.0/24 accept',
    ...allow,
  ];
  const lines = [`table inet ${table} {`, '  chain output {', ...out.map((l) => `    ${l}`), '  }'];
  if (dev.kind === 'router') {
    const fwd = [
      'type filter hook forward priority 0; policy drop;',
      'ct state established,related accept',
      ...(netSet ? [`ip saddr ${netSet} ip daddr ${netSet} accept`] : []),
      ...allow,
    ];
    lines.push('  chain forward {', ...fwd.map((l) => `    ${l}`), '  }');
  }
  lines.push('}', '');
  return lines.join('\n');
}
