import { parseDocument, stringify } from 'yaml';
import { formatCidr, formatIpv4, parseCidr } from '../runtime/ipv4.js';
import { formatProblem, TemplateInvalidError } from './errors.js';
import { parseTemplate } from './load.js';
import {
  type ClabNodes,
  type Conversion,
  type Endpoint,
  isMap,
  type NodeState,
  parseEndpoint,
  readNodes,
  type Segment,
  slug,
  SPECIAL_ENDPOINT_NODES,
  str,
} from './containerlab-nodes.js';
import type { SuccessCriterion, TemplateDevice, TemplateDocument, Tier, Track } from './schema.js';

/**
 * `frostgate template import lab.clab.yml`: a containerlab topology turned into a FrostGate
 * template skeleton. FrostGate devices are Linux network namespaces, so only containerlab's
 * `linux` nodes (hosts, or routers when they run FRR) and `bridge` nodes (which become
 * networks) convert; any other kind is refused, naming the node.
 *
 * What is read:
 *  - nodes: kind (or topology.defaults.kind), image (an FRR image makes a router), binds (a
 *    bound /etc/frr/frr.conf becomes the router's frr_config), exec (see below);
 *  - links, brief (`endpoints: ["a:eth1", "b:eth1"]`) or extended (`endpoints: [{node,
 *    interface, ipv4}]`); a node-to-node link becomes a two-device network, every link to a
 *    bridge joins that bridge's network;
 *  - addresses per interface: an endpoint's `ipv4`, an `ip addr add A/P dev IF` exec line, or
 *    an `ip address` line of the interface in the router's frr.conf;
 *  - exec: `ip addr add`, `ip route add|replace` and `ip link set … up` become interfaces,
 *    routes (and nothing: the runtime brings links up); `sysctl … ip_forward=1` makes a
 *    router; any other line is kept as a startup line.
 * containerlab's eth0 is its management interface: FrostGate has none, so a node's links are
 * renumbered eth0, eth1… in the order of their containerlab names, and exec lines and FRR
 * configs are rewritten to the new names (a warning lists every rename).
 */

export interface ContainerlabImportOptions {
  /** Template id; default: the topology's name. */
  readonly id?: string;
  readonly track?: Track;
  readonly tier?: Tier;
  /** Reads a file a node binds (path relative to the topology file); undefined when absent. */
  readonly readBound?: (path: string) => string | undefined;
}

export interface ContainerlabImport {
  readonly template: TemplateDocument;
  /** The skeleton as YAML, with a header naming its source and the warnings. */
  readonly yaml: string;
  readonly warnings: readonly string[];
}

/** A topology that cannot be converted: every reason, each naming where in the file. */
export class ContainerlabImportError extends Error {
  readonly code = 'containerlab_unsupported';
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`cannot import ${source}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ContainerlabImportError';
  }
}

/** eth2 < eth10: natural order of interface names. */
const naturalCompare = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

export function importContainerlab(text: string, source: string, opts: ContainerlabImportOptions = {}): ContainerlabImport {
  const c: Conversion = { problems: [], warnings: [] };
  const { labName, topology } = readTopology(text, source);
  const found = readNodes(topology, opts.readBound, c);
  const segments = linkSegments(topology, found, c);
  refuseIfProblems(source, c);
  const { assigned, usedNets } = linkAddresses(segments, found.nodes, c);
  refuseIfProblems(source, c);
  fillMissingAddresses(segments, assigned, usedNets, c);
  const devices = [...found.nodes.values()].map((state) => deviceOf(state, segments, assigned, c));
  const template = skeleton(labName, source, devices, segments, opts);
  return { template, yaml: renderChecked(template, labName, source, c.warnings), warnings: c.warnings };
}

function refuseIfProblems(source: string, c: Conversion): void {
  if (c.problems.length > 0) throw new ContainerlabImportError(source, c.problems);
}

/** The parsed file, refused unless it is YAML with a `topology.nodes` mapping. */
function readTopology(text: string, source: string): { labName: string; topology: Record<string, unknown> } {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0)
    throw new ContainerlabImportError(
      source,
      doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`),
    );
  const root: unknown = doc.toJS();
  if (!isMap(root) || !isMap(root.topology) || !isMap(root.topology.nodes)) {
    throw new ContainerlabImportError(source, ['not a containerlab topology: expected `topology.nodes` (a mapping of node names)']);
  }
  return { labName: str(root.name) ?? 'imported-lab', topology: root.topology };
}

/** Links -> segments (one per node-to-node link, one per bridge). */
function linkSegments(topology: Record<string, unknown>, found: ClabNodes, c: Conversion): Map<string, Segment> {
  const segments = new Map<string, Segment>();
  const links = Array.isArray(topology.links) ? topology.links : [];
  links.forEach((rawLink, l) => {
    const ends = linkEnds(rawLink, `topology.links[${l}]`, found, c);
    if (ends) joinSegment(ends, `topology.links[${l}]`, segments, found, c);
  });
  return segments;
}

/** A link's two endpoints, when both are convertible nodes; otherwise the problems say why. */
function linkEnds(rawLink: unknown, at: string, found: ClabNodes, c: Conversion): [Endpoint, Endpoint] | undefined {
  const { nodes, bridges, refused } = found;
  const link = isMap(rawLink) ? rawLink : {};
  const type = str(link.type);
  if (type !== undefined && type !== 'veth') {
    c.problems.push(`${at}: link type "${type}" is not supported; only links between lab nodes (veth) convert`);
    return undefined;
  }
  const endpoints = (Array.isArray(link.endpoints) ? link.endpoints : []).map((e, k) => parseEndpoint(e, `${at}.endpoints[${k}]`, c.problems));
  if (endpoints.length !== 2 || endpoints.some((e) => e === undefined)) {
    if (endpoints.length !== 2) c.problems.push(`${at}: a link has exactly two endpoints`);
    return undefined;
  }
  const ends = endpoints as [Endpoint, Endpoint];
  for (const e of ends) {
    if (SPECIAL_ENDPOINT_NODES.has(e.node))
      c.problems.push(`${e.at}: "${e.node}:${e.iface}" joins the lab to the machine running it; FrostGate labs are closed (egress is a template profile)`);
    else if (!nodes.has(e.node) && !bridges.has(e.node) && !refused.has(e.node))
      c.problems.push(`${e.at}: node "${e.node}" is not a convertible node of this topology`);
  }
  return ends.some((e) => !nodes.has(e.node) && !bridges.has(e.node)) ? undefined : ends;
}

/** A device-to-bridge link joins the bridge's network; a device-to-device link is a network of its own. */
function joinSegment([a, b]: [Endpoint, Endpoint], at: string, segments: Map<string, Segment>, found: ClabNodes, c: Conversion): void {
  const { nodes, bridges, usedNames } = found;
  const bridgeEnds = [a, b].filter((e) => bridges.has(e.node));
  if (bridgeEnds.length === 2) {
    c.problems.push(`${at}: a link between two bridges (${a.node}, ${b.node}) has no FrostGate equivalent; join the devices to one bridge`);
    return;
  }
  if (bridgeEnds.length === 1) {
    const bridge = bridgeEnds[0]!;
    const device = bridge === a ? b : a;
    const name = bridges.get(bridge.node)!;
    const seg = segments.get(name) ?? { name, members: [] };
    seg.members.push(device);
    segments.set(name, seg);
    return;
  }
  let name = slug(`${nodes.get(a.node)!.name}-${nodes.get(b.node)!.name}`)
    .slice(0, 32)
    .replace(/-+$/, '');
  for (let n = 2; segments.has(name) || usedNames.has(name); n++) name = `${name.slice(0, 29).replace(/-+$/, '')}-${n}`;
  segments.set(name, { name, members: [a, b] });
}

/** Addresses the topology gives: endpoint ipv4, else exec / frr.conf; one subnet per network. */
function linkAddresses(
  segments: Map<string, Segment>,
  nodes: Map<string, NodeState>,
  c: Conversion,
): { assigned: Map<Endpoint, string>; usedNets: Set<string> } {
  const addressOf = (e: Endpoint): string | undefined => {
    const fromNode = nodes.get(e.node)!.addresses.get(e.iface);
    if (e.ipv4 !== undefined && fromNode !== undefined && e.ipv4 !== fromNode)
      c.problems.push(`${e.at}: ${e.node}:${e.iface} has ipv4 ${e.ipv4} but exec/frr.conf gives ${fromNode}`);
    return e.ipv4 ?? fromNode;
  };
  const assigned = new Map<Endpoint, string>();
  const usedNets = new Set<string>();
  for (const seg of segments.values()) {
    const nets = new Set<string>();
    for (const e of seg.members) {
      const address = addressOf(e);
      if (address === undefined) continue;
      const cidr = parseCidr(address);
      if (!cidr) {
        c.problems.push(`${e.at}: ${e.node}:${e.iface} address "${address}" is not a.b.c.d/n`);
        continue;
      }
      nets.add(formatCidr(cidr));
      assigned.set(e, address);
    }
    if (nets.size > 1) c.problems.push(`link(s) of network ${seg.name}: addresses are in different subnets (${[...nets].join(', ')})`);
    seg.cidr = [...nets][0];
    if (seg.cidr) usedNets.add(seg.cidr);
  }
  return { assigned, usedNets };
}

/** Every network gets a CIDR and every endpoint an address: spare 10.199.n.0/24 nets, then free hosts. */
function fillMissingAddresses(segments: Map<string, Segment>, assigned: Map<Endpoint, string>, usedNets: Set<string>, c: Conversion): void {
  let spare = 0;
  for (const seg of segments.values()) {
    if (seg.cidr === undefined) {
      do seg.cidr = `10.199.${spare++}.0/24`;
      while (usedNets.has(seg.cidr));
      usedNets.add(seg.cidr);
      c.warnings.push(`network ${seg.name} had no addresses; it was given ${seg.cidr}`);
    }
    const net = parseCidr(seg.cidr)!;
    const taken = new Set(
      [...seg.members]
        .map((e) => assigned.get(e))
        .filter((a): a is string => a !== undefined)
        .map((a) => parseCidr(a)!.host),
    );
    let next = net.base + 1;
    for (const e of seg.members) {
      if (assigned.has(e)) continue;
      while (taken.has(next)) next++;
      taken.add(next);
      const address = `${formatIpv4(next)}/${net.prefix}`;
      assigned.set(e, address);
      c.warnings.push(`${e.node}:${e.iface} had no address; it was given ${address}`);
    }
  }
}

/** A device with its links renumbered eth0.. in containerlab interface order, exec lines and FRR config renamed to match. */
function deviceOf(state: NodeState, segments: Map<string, Segment>, assigned: Map<Endpoint, string>, c: Conversion): TemplateDevice {
  const ends = [...segments.values()].flatMap((seg) => seg.members.filter((e) => e.node === state.clabName).map((e) => ({ seg, e })));
  ends.sort((x, y) => naturalCompare(x.e.iface, y.e.iface));
  const renames = new Map(ends.map(({ e }, i) => [e.iface, `eth${i}`]));
  const changed = [...renames].filter(([from, to]) => from !== to);
  if (changed.length > 0)
    c.warnings.push(`${state.name}: interfaces renumbered ${changed.map(([f, t]) => `${f}->${t}`).join(', ')} (containerlab's eth0 is management)`);
  for (const iface of state.addresses.keys()) {
    if (!renames.has(iface) && iface !== 'lo') c.warnings.push(`${state.name}: address ${state.addresses.get(iface)} on ${iface} dropped (not a lab link)`);
  }
  const rename = (t: string) => (renames.size === 0 ? t : t.replace(/\b[A-Za-z][\w.-]*\b/g, (word) => renames.get(word) ?? word));
  for (const line of state.startup) c.warnings.push(`${state.name}: exec line kept as a startup line: ${rename(line)}`);
  return {
    name: state.name,
    kind: state.router ? 'router' : 'host',
    interfaces: ends.map(({ seg, e }) => ({ network: seg.name, address: assigned.get(e)! })),
    ...(state.routes.length > 0 ? { routes: state.routes } : {}),
    ...(state.startup.length > 0 ? { startup: state.startup.map(rename) } : {}),
    ...(state.frrConfig !== undefined ? { frr_config: rename(state.frrConfig) } : {}),
  };
}

function skeleton(
  labName: string,
  source: string,
  devices: TemplateDevice[],
  segments: Map<string, Segment>,
  opts: ContainerlabImportOptions,
): TemplateDocument {
  return {
    id: opts.id ?? templateId(labName),
    title: `${labName} (imported from containerlab)`,
    description: `Converted from the containerlab topology "${labName}" (${source}). TODO: describe the scenario.`,
    track: opts.track ?? 'netplus',
    tier: opts.tier ?? 'basic',
    ttl_minutes: 60,
    topology: { networks: [...segments.values()].map((s) => ({ name: s.name, cidr: s.cidr! })), devices },
    tasks: ['TODO: tell the learner what to find and fix, one task per line.'],
    hints: ['TODO: hints, from gentle to specific.'],
    successCriteria: [placeholderCriterion(devices)],
    egress: { profile: 'deny-all' },
  };
}

/** The skeleton as YAML under a header of conversion notes, refused unless it parses as a template. */
function renderChecked(template: TemplateDocument, labName: string, source: string, warnings: readonly string[]): string {
  const header = [
    `# Imported from ${source} (containerlab topology "${labName}") by frostgate template import.`,
    '# A skeleton: write the tasks, hints and successCriteria, then run frostgate template validate.',
    ...(warnings.length > 0 ? ['# Conversion notes:', ...warnings.map((w) => `#  - ${w}`)] : []),
  ];
  const yaml = `${header.join('\n')}\n${stringify(template, { lineWidth: 0 })}`;
  try {
    parseTemplate(yaml, source);
  } catch (err) {
    if (!(err instanceof TemplateInvalidError)) throw err;
    throw new ContainerlabImportError(
      source,
      err.problems.map((p) => `converted template: ${formatProblem(p)}`),
    );
  }
  return yaml;
}

function templateId(name: string): string {
  let id = slug(name).slice(0, 64);
  if (!/^[a-z]/.test(id)) id = `clab-${id}`.slice(0, 64);
  return id.length >= 3 ? id : `clab-${id}`;
}

/** One criterion so the skeleton validates and spawns: the first host reaches another device. */
const description = 'TODO: replace with the success criteria of this lab';

function placeholderCriterion(devices: readonly TemplateDevice[]): SuccessCriterion {
  // The template schema types a check by `type` only; semantic.ts checks the rest.
  const criterion = (id: string, check: Record<string, unknown> & { type: string }): SuccessCriterion => ({ id, description, points: 100, check });
  const from = devices.find((d) => d.kind === 'host' && d.interfaces.length > 0) ?? devices.find((d) => d.interfaces.length > 0);
  const others = devices.filter((d) => d !== from && d.interfaces.length > 0);
  const to = others.filter((d) => d.kind === 'host').at(-1) ?? others.at(-1);
  if (from && to) return criterion('todo-reachability', { type: 'reachability', from: from.name, to: to.interfaces[0]!.address.split('/')[0]! });
  return criterion('todo-check', { type: 'command', device: devices[0]?.name ?? 'h1', run: 'true' });
}
