/** Reading a containerlab topology's nodes, endpoints and exec lines (see containerlab.ts). */

const SUPPORTED_KINDS = ['linux', 'bridge'] as const;

export interface Endpoint {
  readonly node: string;
  readonly iface: string;
  readonly ipv4?: string;
  readonly at: string;
}

export interface Segment {
  readonly name: string;
  readonly members: Endpoint[];
  cidr?: string;
}

export interface NodeState {
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
export const SPECIAL_ENDPOINT_NODES = new Set(['host', 'mgmt-net', 'macvlan']);

export const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
/** What a conversion collects on its way: problems refuse the import, warnings go in the header. */
export interface Conversion {
  readonly problems: string[];
  readonly warnings: string[];
}

/** The topology's nodes: linux nodes as device states, bridges as network names. */
export interface ClabNodes {
  readonly nodes: Map<string, NodeState>;
  /** containerlab name -> network name. */
  readonly bridges: Map<string, string>;
  /** FrostGate name -> containerlab name, devices and networks alike. */
  readonly usedNames: Map<string, string>;
  /** Nodes already refused: their links are not reported again. */
  readonly refused: Set<string>;
}

const isSupportedKind = (kind: string | undefined): kind is (typeof SUPPORTED_KINDS)[number] =>
  kind !== undefined && (SUPPORTED_KINDS as readonly string[]).includes(kind);

/** Nodes: linux -> devices, bridge -> networks; anything else is refused. */
export function readNodes(topology: Record<string, unknown>, readBound: ((path: string) => string | undefined) | undefined, c: Conversion): ClabNodes {
  const defaultKind = isMap(topology.defaults) ? str(topology.defaults.kind) : undefined;
  const kindDefaults = isMap(topology.kinds) ? topology.kinds : {};
  const found: ClabNodes = { nodes: new Map(), bridges: new Map(), usedNames: new Map(), refused: new Set() };
  const images: string[] = [];
  for (const [clabName, raw] of Object.entries(topology.nodes as Record<string, unknown>)) {
    const node = isMap(raw) ? raw : {};
    const kind = str(node.kind) ?? defaultKind;
    const at = `topology.nodes.${clabName}`;
    if (!isSupportedKind(kind)) {
      found.refused.add(clabName);
      c.problems.push(
        kind === undefined
          ? `${at}: no kind (and no topology.defaults.kind); FrostGate imports kinds ${SUPPORTED_KINDS.join(' and ')}`
          : `${at}: kind "${kind}" is not supported; FrostGate imports only kinds ` +
              `${SUPPORTED_KINDS.join(' and ')} (its devices are Linux network namespaces, not vendor images)`,
      );
      continue;
    }
    const name = claimName(clabName, kind, at, found, c);
    if (name === undefined) continue;
    if (kind === 'bridge') {
      found.bridges.set(clabName, name);
      continue;
    }
    const kindDefault = isMap(kindDefaults[kind]) ? kindDefaults[kind] : {};
    const image = str(node.image) ?? str(kindDefault.image) ?? '';
    if (image) images.push(clabName);
    found.nodes.set(clabName, readLinuxNode(clabName, name, node, kindDefault, image, at, readBound, c));
  }
  if (images.length > 0) c.warnings.push(`images are not used (FrostGate devices run the host's binaries): ${images.join(', ')}`);
  return found;
}

/** The node's FrostGate name, or undefined (refused) when it is not a valid name or is taken. */
function claimName(clabName: string, kind: 'linux' | 'bridge', at: string, found: ClabNodes, c: Conversion): string | undefined {
  const name = slug(clabName);
  const pattern = kind === 'bridge' ? NETWORK_NAME : DEVICE_NAME;
  if (!pattern.test(name)) {
    c.problems.push(`${at}: name "${clabName}" cannot become a FrostGate ${kind === 'bridge' ? 'network' : 'device'} name (${pattern.source})`);
    found.refused.add(clabName);
    return undefined;
  }
  const taken = found.usedNames.get(name);
  if (taken !== undefined) {
    c.problems.push(`${at}: "${clabName}" and "${taken}" both become "${name}"`);
    found.refused.add(clabName);
    return undefined;
  }
  found.usedNames.set(name, clabName);
  if (name !== clabName) c.warnings.push(`node ${clabName} is named ${name}`);
  return name;
}

/** A linux node: router or host, its addresses, routes and startup lines from exec and a bound frr.conf. */
function readLinuxNode(
  clabName: string,
  name: string,
  node: Record<string, unknown>,
  kindDefault: Record<string, unknown>,
  image: string,
  at: string,
  readBound: ((path: string) => string | undefined) | undefined,
  c: Conversion,
): NodeState {
  const binds = [...(Array.isArray(kindDefault.binds) ? kindDefault.binds : []), ...(Array.isArray(node.binds) ? node.binds : [])].filter(
    (b): b is string => typeof b === 'string',
  );
  const state: NodeState = { clabName, name, router: /(^|\/)frr(outing)?\b|frrouting/i.test(image), addresses: new Map(), routes: [], startup: [] };
  const frrBind = binds.map((b) => b.split(':')).find(([, target]) => target === '/etc/frr/frr.conf');
  if (frrBind) {
    const conf = readBound?.(frrBind[0]!);
    if (conf === undefined) c.warnings.push(`${clabName}: bound FRR config ${frrBind[0]} was not found; the router starts with an empty config`);
    state.frrConfig = conf ?? `frr defaults traditional\nhostname ${name}\n`;
    state.router = true;
  }
  const exec = Array.isArray(node.exec) ? node.exec : [];
  exec.forEach((line, i) => {
    if (typeof line !== 'string') c.problems.push(`${at}.exec[${i}]: not a string`);
    else readExecLine(state, line.trim(), `${at}.exec[${i}]`, c.problems);
  });
  if (state.frrConfig !== undefined) {
    for (const [iface, address] of frrInterfaceAddresses(state.frrConfig)) if (!state.addresses.has(iface)) state.addresses.set(iface, address);
  }
  if (/frr/i.test(image) && state.frrConfig === undefined) state.frrConfig = `frr defaults traditional\nhostname ${name}\n`;
  return state;
}

export function parseEndpoint(raw: unknown, at: string, problems: string[]): Endpoint | undefined {
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
