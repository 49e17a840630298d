import { isIPv4, isIPv6 } from 'node:net';

/** An address as a number: IPv4 in 32 bits, IPv6 in 128. IPv4-mapped IPv6 (::ffff:a.b.c.d) is IPv4. */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly value: bigint;
}

export interface Cidr {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly prefix: number;
  /** Canonical text, e.g. 192.0.2.0/24. */
  readonly text: string;
}

function parseV4(text: string): bigint {
  let value = 0n;
  for (const part of text.split('.')) value = (value << 8n) | BigInt(Number(part));
  return value;
}

function parseV6(text: string): bigint {
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tailV4 = parseV4(text.slice(lastColon + 1));
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left = '', right] = head.split('::');
  const leftGroups = left === '' ? [] : left.split(':');
  const rightGroups = right === undefined || right === '' ? [] : right.split(':');
  const missing = 8 - leftGroups.length - rightGroups.length;
  const groups = right === undefined ? leftGroups : [...leftGroups, ...Array<string>(missing).fill('0'), ...rightGroups];
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  if (tailV4 !== undefined) value = (value & ~0xffffffffn) | tailV4;
  return value;
}

/** Parses an IPv4 or IPv6 address (no zone id); undefined when it is not one. */
export function parseIp(text: string): IpAddress | undefined {
  if (isIPv4(text)) return { family: 4, value: parseV4(text) };
  if (!isIPv6(text) || text.includes('%')) return undefined;
  const value = parseV6(text);
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text of an address (lowercase, compressed IPv6, IPv4-mapped shown as IPv4); undefined if not an IP. */
export function normalizeIp(text: string): string | undefined {
  if (isIPv4(text)) return text; // node accepts only canonical dotted quads (no leading zeros)
  const ip = parseIp(text);
  return ip ? formatIp(ip) : undefined;
}

export type CidrParse = { ok: true; cidr: Cidr } | { ok: false; reason: string };

/**
 * Parses `address/prefix`, or a bare address (a /32 or /128). Host bits set below the prefix
 * are refused rather than silently masked: `10.0.0.1/8` is usually a typo for something.
 */
export function parseCidr(text: string): CidrParse {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(addrText);
  if (!ip) return { ok: false, reason: `"${addrText}" is not an IPv4 or IPv6 address` };
  const bits = ip.family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText)) return { ok: false, reason: `prefix "${prefixText}" is not a number` };
    prefix = Number(prefixText);
    if (prefix > bits) return { ok: false, reason: `prefix /${prefix} is longer than ${bits} bits` };
    if (isIPv6(addrText) && ip.family === 4) prefix -= 96;
    if (prefix < 0) return { ok: false, reason: 'IPv4-mapped prefix must be at least /96' };
  }
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((ip.value & hostMask) !== 0n) {
    const network = formatIp({ family: ip.family, value: ip.value & ~hostMask });
    return { ok: false, reason: `host bits are set (the network is ${network}/${prefix})` };
  }
  return { ok: true, cidr: { family: ip.family, network: ip.value, prefix, text: `${formatIp(ip)}/${prefix}` } };
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false;
  const bits = cidr.family === 4 ? 32 : 128;
  return ip.value >> BigInt(bits - cidr.prefix) === cidr.network >> BigInt(bits - cidr.prefix);
}

export function anyCidrContains(cidrs: readonly Cidr[], ip: IpAddress): boolean {
  for (const c of cidrs) if (cidrContains(c, ip)) return true;
  return false;
}

/**
 * Addresses no host holds, so no traffic comes from them and no block on them means anything
 * (a firewall rule on 0.0.0.0 or 255.255.255.255 is at best void, at worst read as "everything"):
 * unspecified and "this network" (0.0.0.0/8, ::), limited broadcast, and multicast groups.
 * IPv4-mapped forms (::ffff:0.0.0.0) are IPv4 after parseIp, so they are covered too. Loopback is
 * not here: a local process is a real source, and the doctrine's allowlist decides about it.
 */
export const NON_HOST_CIDRS: readonly Cidr[] = ['0.0.0.0/8', '255.255.255.255/32', '224.0.0.0/4', '::/128', 'ff00::/8'].map((text) => {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(`NON_HOST_CIDRS: ${parsed.reason}`);
  return parsed.cidr;
});

/** True for an address that can never be the target of a block (see NON_HOST_CIDRS). */
export function isNonHostAddress(ip: IpAddress): boolean {
  return anyCidrContains(NON_HOST_CIDRS, ip);
}
