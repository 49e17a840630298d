import { LabRuntimeError } from './errors.js';
import { cidrContains, parseCidr, parseIpv4 } from './ipv4.js';
import type { LabSpec, ResourceLimits } from './types.js';

export const DEVICE_NAME = /^[a-z][a-z0-9-]{0,23}$/;
const NETWORK_NAME = /^[a-z][a-z0-9-]{0,31}$/;
export const WRITABLE_ROOTS = ['/etc', '/root', '/home', '/tmp', '/var', '/run'] as const;
export const MAX_DEVICES = 64;
export const MAX_INTERFACES = 8;
export const MAX_NETWORKS = 32;

export const DEFAULT_LIMITS: ResourceLimits = {
  memoryBytes: 512 * 1024 * 1024,
  pids: 512,
  cpuShares: 512,
  diskBytes: 64 * 1024 * 1024,
};

export function resolveLimits(spec: Pick<LabSpec, 'limits'>): ResourceLimits {
  return { ...DEFAULT_LIMITS, ...spec.limits };
}

const MiB = 1024 * 1024;

/** One line for people: what a lab may use (the lab page, `lab up`). */
export function describeLimits(limits: ResourceLimits): string {
  return `CPU weight ${limits.cpuShares} (1024 = one core's share), memory ${Math.round(limits.memoryBytes / MiB)} MiB, ${limits.pids} processes, disk ${Math.round(limits.diskBytes / MiB)} MiB per device`;
}

/** A normalised absolute device path, or undefined if it has `..`, NULs or is not absolute. */
export function normaliseDevicePath(path: string): string | undefined {
  if (!path.startsWith('/') || path.includes('\0')) return undefined;
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) return undefined;
  return `/${parts.join('/')}`;
}

export function isWritableDevicePath(path: string): boolean {
  return WRITABLE_ROOTS.some((root) => path.startsWith(`${root}/`));
}

/** Rejects a spec that would produce ambiguous names, addresses or paths, naming every problem. */
export function validateLabSpec(spec: LabSpec): void {
  const problems: string[] = [];
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(spec.scenarioId)) problems.push('scenarioId must be 1-128 of [A-Za-z0-9_.:-]');
  if (spec.devices.length === 0 || spec.devices.length > MAX_DEVICES) problems.push(`1..${MAX_DEVICES} devices required`);
  if (spec.networks.length > MAX_NETWORKS) problems.push(`at most ${MAX_NETWORKS} networks`);

  const networks = new Map<string, ReturnType<typeof parseCidr>>();
  for (const net of spec.networks) {
    if (!NETWORK_NAME.test(net.name)) problems.push(`network name ${JSON.stringify(net.name)} invalid`);
    if (networks.has(net.name)) problems.push(`network ${net.name} declared twice`);
    const cidr = parseCidr(net.cidr);
    if (!cidr || cidr.host !== cidr.base || cidr.prefix < 8 || cidr.prefix > 30) {
      problems.push(`network ${net.name}: cidr ${net.cidr} must be a network address with prefix 8..30`);
    }
    networks.set(net.name, cidr);
  }

  const names = new Set<string>();
  const addresses = new Set<number>();
  for (const dev of spec.devices) {
    const where = `device ${dev.name}`;
    if (!DEVICE_NAME.test(dev.name)) problems.push(`${where}: name must match ${DEVICE_NAME.source}`);
    if (names.has(dev.name)) problems.push(`${where}: declared twice`);
    names.add(dev.name);
    if (dev.interfaces.length > MAX_INTERFACES) problems.push(`${where}: at most ${MAX_INTERFACES} interfaces`);
    const onNetworks: NonNullable<ReturnType<typeof parseCidr>>[] = [];
    for (const iface of dev.interfaces) {
      const net = networks.get(iface.network);
      const addr = parseCidr(iface.address);
      if (!networks.has(iface.network)) problems.push(`${where}: unknown network ${iface.network}`);
      if (!addr) {
        problems.push(`${where}: address ${iface.address} is not a.b.c.d/n`);
        continue;
      }
      if (net && (addr.prefix !== net.prefix || !cidrContains(net, addr.host) || addr.host === net.base)) {
        problems.push(`${where}: address ${iface.address} is not a host address of ${iface.network}`);
      }
      if (addresses.has(addr.host)) problems.push(`${where}: address ${iface.address} used twice`);
      addresses.add(addr.host);
      if (net) onNetworks.push(net);
    }
    for (const route of dev.routes ?? []) {
      if (route.to !== 'default' && !parseCidr(route.to)) problems.push(`${where}: route to ${route.to} invalid`);
      const via = parseIpv4(route.via);
      if (via === undefined || !onNetworks.some((n) => cidrContains(n, via))) {
        problems.push(`${where}: route via ${route.via} is not on one of its networks`);
      }
    }
    for (const file of dev.files ?? []) {
      const path = normaliseDevicePath(file.path);
      if (!path || !isWritableDevicePath(path)) {
        problems.push(`${where}: file ${file.path} must be under ${WRITABLE_ROOTS.join(', ')}`);
      }
      if (file.mode !== undefined && (!Number.isInteger(file.mode) || file.mode < 0 || file.mode > 0o7777)) {
        problems.push(`${where}: file ${file.path} mode invalid`);
      }
    }
    if (dev.frrConfig !== undefined && dev.kind !== 'router') problems.push(`${where}: frrConfig only for routers`);
  }

  for (const rule of spec.egress?.allow ?? []) {
    if ((rule.device === undefined) === (rule.cidr === undefined)) problems.push('egress rule needs exactly one of device, cidr');
    if (rule.device !== undefined && !names.has(rule.device)) problems.push(`egress rule: unknown device ${rule.device}`);
    if (rule.cidr !== undefined && !parseCidr(rule.cidr)) problems.push(`egress rule: cidr ${rule.cidr} invalid`);
    if (rule.port !== undefined && (rule.proto === 'icmp' || rule.proto === 'any')) problems.push('egress rule: port needs tcp or udp');
    if (rule.port !== undefined && (!Number.isInteger(rule.port) || rule.port < 1 || rule.port > 65535)) problems.push('egress rule: port invalid');
    for (const from of rule.from ?? []) if (!names.has(from)) problems.push(`egress rule: unknown device ${from}`);
  }

  const limits = resolveLimits(spec);
  if (!(limits.memoryBytes >= 16 * 1024 * 1024)) problems.push('limits.memoryBytes must be >= 16 MiB');
  if (!(Number.isInteger(limits.pids) && limits.pids >= 16)) problems.push('limits.pids must be an integer >= 16');
  if (!(Number.isInteger(limits.cpuShares) && limits.cpuShares >= 2)) problems.push('limits.cpuShares must be an integer >= 2');
  if (!(Number.isInteger(limits.diskBytes) && limits.diskBytes >= 1024 * 1024)) problems.push('limits.diskBytes must be an integer >= 1 MiB');

  if (problems.length > 0) throw new LabRuntimeError('lab_spec_invalid', problems.join('; '));
}
