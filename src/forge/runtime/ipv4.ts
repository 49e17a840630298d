/** Minimal IPv4/CIDR arithmetic for validating lab specs (no dependency needed for this). */

export interface Cidr {
  readonly base: number;
  readonly prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(value / 2 ** s) % 256).join('.');
}

/** Parses `a.b.c.d/n`; `host` keeps the address bits, `base` is the network address. */
export function parseCidr(text: string): (Cidr & { host: number }) | undefined {
  const [addr, len, extra] = text.split('/');
  if (addr === undefined || len === undefined || extra !== undefined || !/^\d{1,2}$/.test(len)) return undefined;
  const prefix = Number(len);
  const host = parseIpv4(addr);
  if (host === undefined || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  return { base: host - (host % size), prefix, host };
}

export function cidrContains(net: Cidr, address: number): boolean {
  const size = 2 ** (32 - net.prefix);
  return address >= net.base && address < net.base + size;
}

export function formatCidr(net: Cidr): string {
  return `${formatIpv4(net.base)}/${net.prefix}`;
}
