import { parseDocument, stringify } from 'yaml';
import { formatCidr, formatIpv4, parseCidr } from '../runtime/ipv4.js';
import { formatProblem, TemplateInvalidError } from './errors.js';
import { parseTemplate } from './load.js';
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

export const SUPPORTED_KINDS = ['linux', 'bridge'] as const;

interface Endpoint {
  readonly node: string;
  readonly iface: string;
  readonly ipv4?: string;
  readonly at: string;
}

interface Segment {
  readonly name: string;
  readonly members: Endpoint[];
  cidr?: string;
}

interface NodeState {
  readonly clabName: string;
  readonly name: string;
  router: boolean;
  readonly addresses: Map<string, string>;
  readonly routes: Array<{ to: string; via: string }>;
  readonly startup: string[];
  frrConfig?: string;
}

const DEVICE_NAME = /^[a-z][a-z0-9-]{0,23}$/;
const NETWORK_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const SPECIAL_ENDPOINT_NODES = new Set(['host', 'mgmt-net', 'macvlan']);

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
/** eth2 < eth10: natural order of interface names. */
const naturalCompare = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

export function importContainerlab(text: string, source: string, opts: ContainerlabImportOptions = {}): ContainerlabImport {
  const problems: string[] = [];
  const warnings: string[] = [];
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
  const labName = str(root.name) ?? 'imported-lab';
  const topology = root.topology;
  const defaultKind = isMap(topology.defaults) ? str(topology.defaults.kind) : undefined;
  const kindDefaults = isMap(topology.kinds) ? topology.kinds : {};

  // Nodes: linux -> devices, bridge -> networks; anything else is refused.
  const nodes = new Map<string, NodeState>();
  const bridges = new Map<string, string>();
  const usedNames = new Map<string, string>();
  const images: string[] = [];
  /** Nodes already refused: their links are not reported again. */
  const refused = new Set<string>();
  for (const [clabName, raw] of Object.entries(topology.nodes as Record<string, unknown>)) {
    const node = isMap(raw) ? raw : {};
    const kind = str(node.kind) ?? defaultKind;
    const at = `topology.nodes.${clabName}`;
    if (kind === undefined || !(SUPPORTED_KINDS as readonly string[]).includes(kind)) refused.add(clabName);
    if (kind === undefined) {
      problems.push(`${at}: no kind (and no topology.defaults.kind); FrostGate imports kinds ${SUPPORTED_KINDS.join(' and ')}`);
      continue;
    }
    if (!(SUPPORTED_KINDS as readonly string[]).includes(kind)) {
      problems.push(
        `${at}: kind "${kind}" is not supported; FrostGate imports only kinds ` +
          `${SUPPORTED_KINDS.join(' and ')} (its devices are Linux network namespaces, not vendor images)`,
      );
      continue;
    }
    const name = slug(clabName);
    const pattern = kind === 'bridge' ? NETWORK_NAME : DEVICE_NAME;
    if (!pattern.test(name)) {
      problems.push(`${at}: name "${clabName}" cannot become a FrostGate ${kind === 'bridge' ? 'network' : 'device'} name (${pattern.source})`);
      refused.add(clabName);
      continue;
    }
    if (usedNames.has(name)) {
      problems.push(`${at}: "${clabName}" and "${usedNames.get(name)}" both become "${name}"`);
      refused.add(clabName);
      continue;
    }
    usedNames.set(name, clabName);
    if (name !== clabName) warnings.push(`node ${clabName} is named ${name}`);
    if (kind === 'bridge') {
      bridges.set(clabName, name);
      continue;
    }
    const kindDefault = isMap(kindDefaults[kind]) ? kindDefaults[kind] : {};
    const image = str(node.image) ?? str(kindDefault.image) ?? '';
    const binds = [...(Array.isArray(kindDefault.binds) ? kindDefault.binds : []), ...(Array.isArray(node.binds) ? node.binds : [])].filter(
      (b): b is string => typeof b === 'string',
    );
    const state: NodeState = { clabName, name, router: /(^|\/)frr(outing)?\b|frrouting/i.test(image), addresses: new Map(), routes: [], startup: [] };
    const frrBind = binds.map((b) => b.split(':')).find(([, target]) => target === '/etc/frr/frr.conf');
    if (frrBind) {
      const conf = opts.readBound?.(frrBind[0]!);
      if (conf === undefined) warnings.push(`${clabName}: bound FRR config ${frrBind[0]} was not found; the router starts with an empty config`);
      state.frrConfig = conf ?? `frr defaults traditional\nhostname ${name}\n`;
      state.router = true;
    }
    const exec = Array.isArray(node.exec) ? node.exec : [];
    exec.forEach((line, i) => {
      if (typeof line !== 'string') problems.push(`${at}.exec[${i}]: not a string`);
      else readExecLine(state, line.trim(), `${at}.exec[${i}]`, problems);
    });
    if (state.frrConfig !== undefined) {
      for (const [iface, address] of frrInterfaceAddresses(state.frrConfig)) if (!state.addresses.has(iface)) state.addresses.set(iface, address);
    }
    if (image) images.push(clabName);
    if (/frr/i.test(image) && state.frrConfig === undefined) state.frrConfig = `frr defaults traditional\nhostname ${name}\n`;
    nodes.set(clabName, state);
  }

  if (images.length > 0) warnings.push(`images are not used (FrostGate devices run the host's binaries): ${images.join(', ')}`);

  // Links -> segments (one per node-to-node link, one per bridge).
  const segments = new Map<string, Segment>();
  const links = Array.isArray(topology.links) ? topology.links : [];
  links.forEach((rawLink, l) => {
    const at = `topology.links[${l}]`;
    const link = isMap(rawLink) ? rawLink : {};
    const type = str(link.type);
    if (type !== undefined && type !== 'veth') {
      problems.push(`${at}: link type "${type}" is not supported; only links between lab nodes (veth) convert`);
      return;
    }
    const endpoints = (Array.isArray(link.endpoints) ? link.endpoints : []).map((e, k) => parseEndpoint(e, `${at}.endpoints[${k}]`, problems));
    if (endpoints.length !== 2 || endpoints.some((e) => e === undefined)) {
      if (endpoints.length !== 2) problems.push(`${at}: a link has exactly two endpoints`);
      return;
    }
    const [a, b] = endpoints as [Endpoint, Endpoint];
    for (const e of [a, b]) {
      if (SPECIAL_ENDPOINT_NODES.has(e.node))
        problems.push(`${e.at}: "${e.node}:${e.iface}" joins the lab to the machine running it; FrostGate labs are closed (egress is a template profile)`);
      else if (!nodes.has(e.node) && !bridges.has(e.node) && !refused.has(e.node))
        problems.push(`${e.at}: node "${e.node}" is not a convertible node of this topology`);
    }
    if ([a, b].some((e) => !nodes.has(e.node) && !bridges.has(e.node))) return;
    const bridgeEnds = [a, b].filter((e) => bridges.has(e.node));
    if (bridgeEnds.length === 2) {
      problems.push(`${at}: a link between two bridges (${a.node}, ${b.node}) has no FrostGate equivalent; join the devices to one bridge`);
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
  });
  if (problems.length > 0) throw new ContainerlabImportError(source, problems);

  // Addresses: endpoint ipv4, else exec / frr.conf; every segment gets one CIDR.
  const addressOf = (e: Endpoint): string | undefined => {
    const fromNode = nodes.get(e.node)!.addresses.get(e.iface);
    if (e.ipv4 !== undefined && fromNode !== undefined && e.ipv4 !== fromNode)
      problems.push(`${e.at}: ${e.node}:${e.iface} has ipv4 ${e.ipv4} but exec/frr.conf gives ${fromNode}`);
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
        problems.push(`${e.at}: ${e.node}:${e.iface} address "${address}" is not a.b.c.d/n`);
        continue;
      }
      nets.add(formatCidr(cidr));
      assigned.set(e, address);
    }
    if (nets.size > 1) problems.push(`link(s) of network ${seg.name}: addresses are in different subnets (${[...nets].join(', ')})`);
    seg.cidr = [...nets][0];
    if (seg.cidr) usedNets.add(seg.cidr);
  }
  if (problems.length > 0) throw new ContainerlabImportError(source, problems);
  let spare = 0;
  for (const seg of segments.values()) {
    if (seg.cidr === undefined) {
      do seg.cidr = `10.199.${spare++}.0/24`;
      while (usedNets.has(seg.cidr));
      usedNets.add(seg.cidr);
      warnings.push(`network ${seg.name} had no addresses; it was given ${seg.cidr}`);
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
      warnings.push(`${e.node}:${e.iface} had no address; it was given ${address}`);
    }
  }

  // Devices: links renumbered eth0.. in containerlab interface order.
  const devices: TemplateDevice[] = [];
  for (const state of nodes.values()) {
    const ends = [...segments.values()].flatMap((seg) => seg.members.filter((e) => e.node === state.clabName).map((e) => ({ seg, e })));
    ends.sort((x, y) => naturalCompare(x.e.iface, y.e.iface));
    const renames = new Map(ends.map(({ e }, i) => [e.iface, `eth${i}`]));
    const changed = [...renames].filter(([from, to]) => from !== to);
    if (changed.length > 0)
      warnings.push(`${state.name}: interfaces renumbered ${changed.map(([f, t]) => `${f}->${t}`).join(', ')} (containerlab's eth0 is management)`);
    for (const iface of state.addresses.keys()) {
      if (!renames.has(iface) && iface !== 'lo') warnings.push(`${state.name}: address ${state.addresses.get(iface)} on ${iface} dropped (not a lab link)`);
    }
    const rename = (t: string) => (renames.size === 0 ? t : t.replace(/\b[A-Za-z][\w.-]*\b/g, (word) => renames.get(word) ?? word));
    for (const line of state.startup) warnings.push(`${state.name}: exec line kept as a startup line: ${rename(line)}`);
    devices.push({
      name: state.name,
      kind: state.router ? 'router' : 'host',
      interfaces: ends.map(({ seg, e }) => ({ network: seg.name, address: assigned.get(e)! })),
      ...(state.routes.length > 0 ? { routes: state.routes } : {}),
      ...(state.startup.length > 0 ? { startup: state.startup.map(rename) } : {}),
      ...(state.frrConfig !== undefined ? { frr_config: rename(state.frrConfig) } : {}),
    });
  }

  const template: TemplateDocument = {
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
  return { template, yaml, warnings };
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

function parseEndpoint(raw: unknown, at: string, problems: string[]): Endpoint | undefined {
  if (typeof raw === 'string') {
    const m = /^([^:]+):(.+)$/.exec(raw);
    if (!m) {
      problems.push(`${at}: "${raw}" is not node:interface`);
      return undefined;
    }
    return { node: m[1]!, iface: m[2]!, at };
  }
  if (isMap(raw) && typeof raw.node === 'string' && typeof raw.interface === 'string') {
    const ipv4 = str(raw.ipv4);
    return { node: raw.node, iface: raw.interface, at, ...(ipv4 !== undefined ? { ipv4 } : {}) };
  }
  problems.push(`${at}: expected "node:interface" or {node, interface}`);
  return undefined;
}

const IP_ADDR_ADD = /^ip\s+(?:-4\s+)?a(?:ddr(?:ess)?)?\s+add\s+(\S+)\s+(?:.*\s)?dev\s+(\S+)/;
const IP_ADDR_ADD_DEV_FIRST = /^ip\s+(?:-4\s+)?a(?:ddr(?:ess)?)?\s+add\s+dev\s+(\S+)\s+(\S+)/;
const IP_ROUTE = /^ip\s+(?:-4\s+)?r(?:oute)?\s+(?:add|replace)\s+(\S+)\s+via\s+(\S+)/;
const IP_LINK_UP = /^ip\s+l(?:ink)?\s+set\s+(?:dev\s+)?\S+\s+up$/;
const FORWARDING = /^sysctl\s+(?:-w\s+)?net\.ipv4\.(?:ip_forward|conf\.all\.forwarding)=1$/;

function readExecLine(state: NodeState, line: string, at: string, problems: string[]): void {
  const add = IP_ADDR_ADD.exec(line);
  const addDevFirst = IP_ADDR_ADD_DEV_FIRST.exec(line);
  if (add || addDevFirst) {
    const [address, iface] = add ? [add[1]!, add[2]!] : [addDevFirst![2]!, addDevFirst![1]!];
    if (address.includes(':')) return; // IPv6: FrostGate labs are IPv4
    if (state.addresses.has(iface)) problems.push(`${at}: ${state.clabName}:${iface} gets a second address (${address}); FrostGate gives an interface one`);
    else state.addresses.set(iface, address);
    return;
  }
  const route = IP_ROUTE.exec(line);
  if (route) {
    const to = route[1] === '0/0' || route[1] === '0.0.0.0/0' ? 'default' : route[1]!;
    state.routes.push({ to, via: route[2]! });
    return;
  }
  if (IP_LINK_UP.test(line)) return;
  if (FORWARDING.test(line)) {
    state.router = true;
    return;
  }
  state.startup.push(line);
}

/** `interface X` blocks of an frr.conf with their `ip address A/P` lines. */
function frrInterfaceAddresses(conf: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | undefined;
  for (const raw of conf.split('\n')) {
    const line = raw.trim();
    const iface = /^interface\s+(\S+)/.exec(line);
    if (iface) current = iface[1];
    else if (/^(!|exit|router\s|line\s)/.test(line) || (raw.length > 0 && !/^\s/.test(raw))) current = undefined;
    const addr = /^ip\s+address\s+(\d+\.\d+\.\d+\.\d+\/\d+)/.exec(line);
    if (addr && current !== undefined && !out.has(current)) out.set(current, addr[1]!);
  }
  return out;
}
