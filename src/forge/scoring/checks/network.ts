import type { InterfaceAddrCheckSpec, ListeningCheckSpec, NftRuleCheckSpec, ReachabilityCheckSpec, RouteCheckSpec } from '../../templates/checks.js';
import { CheckFailed, compileRegex, excerpt, fail, parseJsonOutput, pass, vantageOf, type CheckContext, type CheckVerdict } from './context.js';

// Every command here is a host binary run in the device's network namespace only ('net'), or in
// the grader's probe standing in for the device ('probe', vantageOf): nothing the learner
// installs or replaces inside the device is executed.

interface IpAddr {
  readonly ifname: string;
  readonly addr_info?: ReadonlyArray<{ family?: string; local?: string; prefixlen?: number }>;
}

export async function interfaceAddrCheck(spec: InterfaceAddrCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  const links = parseJsonOutput('ip addr', await ctx.run(spec.device, ['/usr/sbin/ip', '-j', '-4', 'addr', 'show'], 'net', timeoutMs)) as IpAddr[] | null;
  const holders = (links ?? []).filter((l) => (l.addr_info ?? []).some((a) => `${a.local}/${a.prefixlen}` === spec.address)).map((l) => l.ifname);
  const onWanted = spec.interface === undefined ? holders.length > 0 : holders.includes(spec.interface);
  const where = spec.interface ? ` on ${spec.interface}` : '';
  if ((spec.state ?? 'present') === 'absent')
    return onWanted ? fail(`${spec.address} is configured${where}`) : pass(`${spec.address} is not configured${where}`);
  if (onWanted) return pass(`${spec.address} is configured on ${spec.interface ?? holders.join(', ')}`);
  return fail(holders.length > 0 ? `${spec.address} is on ${holders.join(', ')}, not ${spec.interface}` : `${spec.address} is not configured on any interface`);
}

interface KernelRoute {
  readonly dst: string;
  readonly gateway?: string;
  readonly dev?: string;
  readonly nexthops?: ReadonlyArray<{ gateway?: string; dev?: string }>;
}

interface FrrRoute {
  readonly prefix?: string;
  readonly protocol?: string;
  readonly selected?: boolean;
  readonly installed?: boolean;
  readonly nexthops?: ReadonlyArray<{ ip?: string; interfaceName?: string; active?: boolean }>;
}

function normalisePrefix(prefix: string): string {
  if (prefix === 'default' || prefix === '0.0.0.0/0') return '0.0.0.0/0';
  return prefix.includes('/') ? prefix : `${prefix}/32`;
}

interface RouteView {
  readonly prefix: string;
  readonly vias: readonly string[];
  readonly interfaces: readonly string[];
  readonly protocol?: string;
}

async function kernelRoutes(spec: RouteCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<RouteView[]> {
  const routes = parseJsonOutput('ip route', await ctx.run(spec.device, ['/usr/sbin/ip', '-j', '-4', 'route', 'show', 'table', 'main'], 'net', timeoutMs)) as
    KernelRoute[] | null;
  return (routes ?? []).map((r) => ({
    prefix: normalisePrefix(r.dst),
    vias: [r.gateway, ...(r.nexthops ?? []).map((n) => n.gateway)].filter((v): v is string => v !== undefined),
    interfaces: [r.dev, ...(r.nexthops ?? []).map((n) => n.dev)].filter((v): v is string => v !== undefined),
  }));
}

async function frrRoutes(spec: RouteCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<RouteView[]> {
  const rib = parseJsonOutput('vtysh show ip route', await ctx.run(spec.device, ['vtysh', '-c', 'show ip route json'], 'net', timeoutMs)) as Record<
    string,
    FrrRoute[]
  > | null;
  const out: RouteView[] = [];
  for (const [prefix, entries] of Object.entries(rib ?? {})) {
    for (const e of entries) {
      if (e.selected !== true) continue;
      const hops = (e.nexthops ?? []).filter((n) => n.active !== false);
      out.push({
        prefix: normalisePrefix(e.prefix ?? prefix),
        vias: hops.map((n) => n.ip).filter((v): v is string => v !== undefined),
        interfaces: hops.map((n) => n.interfaceName).filter((v): v is string => v !== undefined),
        ...(e.protocol !== undefined ? { protocol: e.protocol } : {}),
      });
    }
  }
  return out;
}

export async function routeCheck(spec: RouteCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  const source = spec.source ?? 'kernel';
  const routes = source === 'frr' ? await frrRoutes(spec, ctx, timeoutMs) : await kernelRoutes(spec, ctx, timeoutMs);
  const wanted = normalisePrefix(spec.prefix);
  const candidates = routes.filter((r) => r.prefix === wanted);
  const matching = candidates.filter(
    (r) =>
      (spec.via === undefined || r.vias.includes(spec.via)) &&
      (spec.interface === undefined || r.interfaces.includes(spec.interface)) &&
      (spec.protocol === undefined || r.protocol === spec.protocol),
  );
  const what = `${spec.prefix}${spec.via ? ` via ${spec.via}` : ''}${spec.interface ? ` dev ${spec.interface}` : ''}${spec.protocol ? ` (${spec.protocol})` : ''} in the ${source === 'frr' ? 'FRR RIB' : 'kernel table'}`;
  if ((spec.state ?? 'present') === 'absent') return matching.length === 0 ? pass(`no route ${what}`) : fail(`route ${what} exists`);
  if (matching.length > 0) return pass(`route ${what}`);
  const seen = candidates.map(
    (r) =>
      `${r.prefix}${r.vias.length ? ` via ${r.vias.join(',')}` : ''}${r.interfaces.length ? ` dev ${r.interfaces.join(',')}` : ''}${r.protocol ? ` (${r.protocol})` : ''}`,
  );
  return fail(`no route ${what}${seen.length ? `; found ${seen.join('; ')}` : ''}`);
}

export async function reachabilityCheck(spec: ReachabilityCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  const [host = '', portText] = spec.to.split(':');
  const proto = spec.proto ?? (portText !== undefined ? 'tcp' : 'icmp');
  if (proto === 'tcp' && portText === undefined) throw new CheckFailed('a tcp reachability check needs address:port');
  const seconds = Math.max(1, Math.floor(timeoutMs / 1000) - 1);
  let reached: boolean;
  if (proto === 'icmp') {
    const out = await ctx.run(
      spec.from,
      ['/usr/bin/ping', '-n', '-c', '2', '-i', '0.2', '-W', String(Math.min(seconds, 3)), '-w', String(seconds), host],
      vantageOf(spec),
      timeoutMs,
    );
    reached = out.exitCode === 0;
  } else {
    // A TCP handshake by the host's bash, bounded by coreutils timeout.
    const out = await ctx.run(
      spec.from,
      ['/usr/bin/timeout', String(seconds), '/bin/bash', '-c', 'exec 3<>"/dev/tcp/$0/$1"', host, portText!],
      vantageOf(spec),
      timeoutMs,
    );
    reached = out.exitCode === 0;
  }
  const what = `${spec.from} ${reached ? 'reaches' : 'does not reach'} ${spec.to} (${proto})`;
  return (spec.expect ?? 'reach') === 'reach' ? (reached ? pass(what) : fail(what)) : reached ? fail(what) : pass(what);
}

interface Socket {
  readonly address: string;
  readonly port: number;
  readonly processes: readonly string[];
}

/** Parses `ss -H -n -l -p` lines: state, recv-q, send-q, local address:port, peer, process. */
export function parseSs(text: string): Socket[] {
  const out: Socket[] = [];
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 5) continue;
    const local = cols[3]!;
    const colon = local.lastIndexOf(':');
    const port = Number(local.slice(colon + 1));
    if (!Number.isInteger(port)) continue;
    const address = local
      .slice(0, colon)
      .replace(/^\[|\]$/g, '')
      .replace(/%.*$/, '');
    const processes = [...line.matchAll(/\("([^"]+)",pid=/g)].map((m) => m[1]!);
    out.push({ address, port, processes });
  }
  return out;
}

export async function listeningCheck(spec: ListeningCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  const proto = spec.proto ?? 'tcp';
  const out = await ctx.run(spec.device, ['/usr/bin/ss', '-H', '-n', '-l', '-p', proto === 'tcp' ? '-t' : '-u'], 'net', timeoutMs);
  if (out.exitCode !== 0) throw new CheckFailed(`ss exited ${out.exitCode}: ${excerpt(out.stderr)}`);
  const wildcard = (a: string) => a === '0.0.0.0' || a === '*' || a === '::';
  const matches = parseSs(out.stdout).filter(
    (s) =>
      s.port === spec.port &&
      (spec.address === undefined || s.address === spec.address || (spec.address === '0.0.0.0' && wildcard(s.address))) &&
      (spec.process === undefined || s.processes.includes(spec.process)),
  );
  const what = `${proto}/${spec.port}${spec.address ? ` on ${spec.address}` : ''}${spec.process ? ` by ${spec.process}` : ''}`;
  if ((spec.state ?? 'present') === 'absent')
    return matches.length === 0
      ? pass(`nothing listens on ${what}`)
      : fail(`something listens on ${what} (${matches.flatMap((m) => m.processes).join(', ') || 'unknown process'})`);
  return matches.length > 0 ? pass(`listening on ${what}`) : fail(`nothing listens on ${what}`);
}

export interface NftRuleLine {
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly rule: string;
}

/** A base chain's attachment (`type filter hook forward priority filter;`), by `family table chain`. */
export interface NftChainHook {
  readonly type: string;
  readonly hook: string;
}

const chainKey = (family: string, table: string, chain: string): string => `${family} ${table} ${chain}`;

/** Base chains of `nft list ruleset` output (chains attached to a hook), FrostGate's fg_* tables left out. */
export function parseNftHooks(text: string): Map<string, NftChainHook> {
  const out = new Map<string, NftChainHook>();
  let family = '';
  let table = '';
  let chain: string | undefined;
  let depth = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (depth === 0) {
      const m = /^table (\S+) (\S+) \{$/.exec(line);
      if (m) [family, table] = [m[1]!, m[2]!];
    } else if (depth === 1) {
      const m = /^chain (\S+) \{$/.exec(line);
      chain = m ? m[1]! : undefined;
    } else if (depth === 2 && chain !== undefined && !table.startsWith('fg_')) {
      const m = /^type (\S+) hook (\S+)/.exec(line);
      if (m) out.set(chainKey(family, table, chain), { type: m[1]!, hook: m[2]! });
    }
    depth = Math.max(0, depth + (line.match(/\{/g)?.length ?? 0) - (line.match(/\}/g)?.length ?? 0));
  }
  return out;
}

/** Families whose `hook` sees routed IPv4 traffic (a bridge or arp table's forward hook does not). */
const IPV4_FAMILIES = new Set(['ip', 'inet']);

/**
 * The rules that take effect: those of a `filter` chain attached to a hook (`hook`, when given, in
 * a family that routes IPv4), and of the chains those jump or go to, transitively. A rule in a
 * chain nothing attaches or jumps to filters nothing.
 */
export function effectiveNftRules(rules: readonly NftRuleLine[], hooks: ReadonlyMap<string, NftChainHook>, hook?: string): NftRuleLine[] {
  const live = new Set<string>();
  for (const [key, h] of hooks) {
    const family = key.split(' ')[0]!;
    if (h.type !== 'filter') continue;
    if (hook !== undefined && (h.hook !== hook || !IPV4_FAMILIES.has(family))) continue;
    live.add(key);
  }
  for (let grew = true; grew;) {
    grew = false;
    for (const r of rules) {
      if (!live.has(chainKey(r.family, r.table, r.chain))) continue;
      const target = /\b(?:jump|goto) (\S+)/.exec(r.rule)?.[1];
      const key = target === undefined ? undefined : chainKey(r.family, r.table, target);
      if (key !== undefined && !live.has(key)) {
        live.add(key);
        grew = true;
      }
    }
  }
  return rules.filter((r) => live.has(chainKey(r.family, r.table, r.chain)));
}

/**
 * The rule lines of `nft list ruleset` output, with their table and chain. Chain headers
 * (`type … hook …; policy …;`), sets and maps are not rules. FrostGate's own egress tables
 * (`fg_*`) are left out: a check looks at what the learner configured.
 */
export function parseNftRules(text: string): NftRuleLine[] {
  const out: NftRuleLine[] = [];
  let family = '';
  let table = '';
  let chain: string | undefined;
  let depth = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    // Classified by the depth the line starts at; braces inside a line (sets, maps, a multi-line
    // element list) only move the depth for the lines after it.
    if (depth === 0) {
      const m = /^table (\S+) (\S+) \{$/.exec(line);
      if (m) [family, table] = [m[1]!, m[2]!];
    } else if (depth === 1) {
      const m = /^chain (\S+) \{$/.exec(line);
      chain = m ? m[1]! : undefined;
    } else if (depth === 2 && chain !== undefined && line !== '}' && !/^type \S+ hook /.test(line) && !/^policy \S+;$/.test(line)) {
      if (!table.startsWith('fg_')) out.push({ family, table, chain, rule: line });
    }
    depth = Math.max(0, depth + (line.match(/\{/g)?.length ?? 0) - (line.match(/\}/g)?.length ?? 0));
  }
  return out;
}

export async function nftRuleCheck(spec: NftRuleCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  const out = await ctx.run(spec.device, ['/usr/sbin/nft', 'list', 'ruleset'], 'net', timeoutMs);
  if (out.exitCode !== 0) throw new CheckFailed(`nft exited ${out.exitCode}: ${excerpt(out.stderr)}`);
  const re = compileRegex(spec.regex);
  const rules = effectiveNftRules(parseNftRules(out.stdout), parseNftHooks(out.stdout), spec.hook).filter(
    (r) => (spec.table === undefined || r.table === spec.table) && (spec.chain === undefined || r.chain === spec.chain),
  );
  const hit = rules.find((r) => re.test(r.rule));
  const where = `${spec.table ? ` in table ${spec.table}` : ''}${spec.chain ? ` chain ${spec.chain}` : ''}${spec.hook ? ` at the ${spec.hook} hook` : ' in effect'}`;
  if ((spec.state ?? 'present') === 'absent')
    return hit ? fail(`rule "${hit.rule}"${where} matches /${spec.regex}/`) : pass(`no rule${where} matches /${spec.regex}/`);
  return hit
    ? pass(`rule "${hit.rule}" (${hit.family} ${hit.table} ${hit.chain}) matches`)
    : fail(`no rule${where} matches /${spec.regex}/ among ${rules.length} rule(s)`);
}
