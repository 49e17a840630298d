import { cidrContains, formatCidr as formatNet, parseCidr, parseIpv4 } from '../runtime/ipv4.js';
import { isWritableDevicePath, normaliseDevicePath, WRITABLE_ROOTS } from '../runtime/spec.js';
import type { PathSegment } from './errors.js';
import type { TemplateDocument } from './schema.js';
import { checkProblems } from './check-problems.js';

export interface RawProblem {
  readonly at: readonly PathSegment[];
  readonly message: string;
}

/**
 * What the schema cannot say: CIDRs and addresses, references between networks, devices and
 * criteria, uniqueness. Runs only on a document the schema accepted.
 */
export function semanticProblems(doc: TemplateDocument): RawProblem[] {
  const out: RawProblem[] = [];
  const problem = (at: PathSegment[], message: string) => out.push({ at, message });

  const networks = new Map<string, NonNullable<ReturnType<typeof parseCidr>>>();
  doc.topology.networks.forEach((net, n) => {
    const at = ['topology', 'networks', n];
    if (networks.has(net.name)) problem([...at, 'name'], `network ${net.name} is declared twice`);
    const cidr = parseCidr(net.cidr);
    if (!cidr) problem([...at, 'cidr'], 'not a CIDR (a.b.c.d/n)');
    else if (cidr.host !== cidr.base) problem([...at, 'cidr'], `has host bits set; the network address is ${formatNet(cidr)}`);
    else if (cidr.prefix < 8 || cidr.prefix > 30) problem([...at, 'cidr'], 'prefix length must be 8..30');
    else {
      for (const [other, c] of networks) {
        if (cidrContains(c, cidr.base) || cidrContains(cidr, c.base)) problem([...at, 'cidr'], `overlaps network ${other}`);
      }
      networks.set(net.name, cidr);
    }
  });

  const devices = new Set<string>();
  const addresses = new Map<number, string>();
  doc.topology.devices.forEach((dev, d) => {
    const at: PathSegment[] = ['topology', 'devices', d];
    if (devices.has(dev.name)) problem([...at, 'name'], `device ${dev.name} is declared twice`);
    devices.add(dev.name);
    const onNetworks: NonNullable<ReturnType<typeof parseCidr>>[] = [];
    dev.interfaces.forEach((iface, i) => {
      const ia = [...at, 'interfaces', i];
      const net = networks.get(iface.network);
      if (!net && !doc.topology.networks.some((n) => n.name === iface.network)) problem([...ia, 'network'], `unknown network ${iface.network}`);
      const addr = parseCidr(iface.address);
      if (!addr) return problem([...ia, 'address'], 'not a CIDR (a.b.c.d/n)');
      if (net) {
        if (addr.prefix !== net.prefix || !cidrContains(net, addr.host)) problem([...ia, 'address'], `not inside ${iface.network} (${formatNet(net)})`);
        else if (addr.host === net.base || addr.host === net.base + 2 ** (32 - net.prefix) - 1)
          problem([...ia, 'address'], 'is the network or broadcast address');
        onNetworks.push(net);
      }
      const owner = addresses.get(addr.host);
      if (owner) problem([...ia, 'address'], `already used by ${owner}`);
      addresses.set(addr.host, dev.name);
    });
    (dev.routes ?? []).forEach((route, r) => {
      const ra = [...at, 'routes', r];
      if (route.to !== 'default' && !parseCidr(route.to)) problem([...ra, 'to'], 'must be "default" or a CIDR');
      const via = parseIpv4(route.via);
      if (via === undefined) problem([...ra, 'via'], 'not an IPv4 address');
      else if (!onNetworks.some((n) => cidrContains(n, via))) problem([...ra, 'via'], "is not on one of the device's networks");
    });
    (dev.files ?? []).forEach((file, f) => {
      const path = normaliseDevicePath(file.path);
      if (!path || !isWritableDevicePath(path)) problem([...at, 'files', f, 'path'], `must be an absolute path under ${WRITABLE_ROOTS.join(', ')} without ..`);
    });
    if (dev.frr_config !== undefined && dev.kind !== 'router') problem([...at, 'frr_config'], 'only routers run FRR');
  });

  const criteria = new Set<string>();
  const variables = new Set(Object.keys(doc.variables ?? {}));
  doc.successCriteria.forEach((c, i) => {
    const at: PathSegment[] = ['successCriteria', i];
    if (criteria.has(c.id)) problem([...at, 'id'], `criterion ${c.id} is declared twice`);
    criteria.add(c.id);
    for (const p of checkProblems(c.check, [...at, 'check'], { devices, variables })) out.push(p);
    (c.hints ?? []).forEach((h, j) => {
      if ((h.penalty ?? 0) > c.points) problem([...at, 'hints', j, 'penalty'], `is larger than the criterion's ${c.points} points`);
    });
  });
  const byId = new Map(doc.successCriteria.map((c) => [c.id, c]));
  doc.successCriteria.forEach((c, i) => {
    (c.depends_on ?? []).forEach((dep, j) => {
      if (!byId.has(dep)) problem(['successCriteria', i, 'depends_on', j], `unknown criterion ${dep}`);
      else if (dependsOnTransitively(byId, dep, c.id)) problem(['successCriteria', i, 'depends_on', j], `${dep} depends on ${c.id}: a cycle`);
    });
  });
  for (const [name, v] of Object.entries(doc.variables ?? {})) {
    if (!/^[a-z][a-z0-9_]{0,31}$/.test(name)) problem(['variables', name], 'variable names are [a-z][a-z0-9_]{0,31}');
    if (v.kind === 'ipv4') {
      const cidr = parseCidr(v.cidr);
      if (!cidr || cidr.host !== cidr.base || cidr.prefix > 29) problem(['variables', name, 'cidr'], 'must be a network address with prefix length at most 29');
    }
  }

  (doc.egress?.allow ?? []).forEach((rule, i) => {
    const at = ['egress', 'allow', i];
    if ((rule.device === undefined) === (rule.cidr === undefined)) problem(at, 'needs exactly one of device, cidr');
    if (rule.device !== undefined && !devices.has(rule.device)) problem([...at, 'device'], `unknown device ${rule.device}`);
    if (rule.cidr !== undefined && !parseCidr(rule.cidr)) problem([...at, 'cidr'], 'not a CIDR (a.b.c.d/n)');
    if (rule.port !== undefined && (rule.proto === 'icmp' || rule.proto === 'any')) problem([...at, 'port'], 'a port needs proto tcp or udp');
    (rule.from ?? []).forEach((from, j) => {
      if (!devices.has(from)) problem([...at, 'from', j], `unknown device ${from}`);
    });
  });
  return out;
}

function dependsOnTransitively(byId: ReadonlyMap<string, { depends_on?: readonly string[] }>, from: string, target: string): boolean {
  const seen = new Set<string>();
  const stack = [from];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (id === target) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(byId.get(id)?.depends_on ?? []));
  }
  return false;
}
