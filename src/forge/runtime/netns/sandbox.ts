import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabRuntimeError } from '../errors.js';
import type { DeviceKind } from '../types.js';

/**
 * The sandbox of every device process: `fg-sandbox <caps> argv` (native/fg-sandbox.c) narrows
 * the capability bounding set to the profile's, sets no_new_privs and installs the device
 * seccomp filter before it execs argv. docs/lab-sandbox.md documents the profiles.
 */
export const SANDBOX_DIR = '/usr/local/libexec/frostgate';

/** Capability numbers (linux/capability.h) of the names used in the profiles. */
const CAPS = {
  CHOWN: 0,
  DAC_OVERRIDE: 1,
  FOWNER: 3,
  FSETID: 4,
  KILL: 5,
  SETGID: 6,
  SETUID: 7,
  SETPCAP: 8,
  NET_BIND_SERVICE: 10,
  NET_BROADCAST: 11,
  NET_ADMIN: 12,
  NET_RAW: 13,
  IPC_LOCK: 14,
  AUDIT_WRITE: 29,
} as const;
export type CapabilityName = keyof typeof CAPS;

/**
 * What the learner's root keeps, per device kind (everything else leaves the bounding set).
 * Hosts: file ownership within the device, signals, dropping to another uid (daemons such as
 * dnsmasq), binding low ports, and their own interfaces and routes (netplus tasks configure
 * routes and DHCP on hosts). Routers add broadcast and locked memory for routing tools.
 */
export const DEVICE_CAPABILITIES: Readonly<Record<DeviceKind | 'init', readonly CapabilityName[]>> = {
  host: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'NET_BIND_SERVICE', 'NET_ADMIN', 'NET_RAW', 'AUDIT_WRITE'],
  router: [
    'CHOWN',
    'DAC_OVERRIDE',
    'FOWNER',
    'FSETID',
    'KILL',
    'SETGID',
    'SETUID',
    'SETPCAP',
    'NET_BIND_SERVICE',
    'NET_ADMIN',
    'NET_RAW',
    'AUDIT_WRITE',
    'NET_BROADCAST',
    'IPC_LOCK',
  ],
  // PID 1 of a device only reaps orphans.
  init: [],
};

export function capabilityMask(names: readonly CapabilityName[]): string {
  let mask = 0n;
  for (const n of names) mask |= 1n << BigInt(CAPS[n]);
  return mask.toString(16);
}

/** Every capability: FRR daemons keep theirs (they drop to the frr user themselves) but get the filter. */
export const ALL_CAPABILITIES = 'ffffffffffffffff';

let helperPath: string | undefined;

/** The installed helper built from this checkout's native/fg-sandbox.c (by scripts/ensure-system-deps.mjs). */
export function sandboxHelper(): string {
  if (helperPath !== undefined) return helperPath;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'native', 'fg-sandbox.c'))) {
    const up = dirname(dir);
    if (up === dir) throw new LabRuntimeError('lab_create_failed', 'native/fg-sandbox.c not found above the lab runtime');
    dir = up;
  }
  const hash = createHash('sha256')
    .update(readFileSync(join(dir, 'native', 'fg-sandbox.c')))
    .digest('hex')
    .slice(0, 16);
  const path = `${SANDBOX_DIR}/fg-sandbox-${hash}`;
  if (!existsSync(path)) {
    throw new LabRuntimeError(
      'lab_create_failed',
      `the lab sandbox helper ${path} is missing: run \`node scripts/ensure-system-deps.mjs\` as root (npm start and npm test do)`,
    );
  }
  helperPath = path;
  return path;
}

/** argv run through the sandbox with the capabilities of `profile`. */
export function sandboxed(profile: DeviceKind | 'init', argv: readonly string[]): string[] {
  return [sandboxHelper(), capabilityMask(DEVICE_CAPABILITIES[profile]), ...argv];
}

/** argv run through the sandbox's seccomp filter only (FRR daemons, host root in the device's namespaces). */
export function filtered(argv: readonly string[]): string[] {
  return [sandboxHelper(), ALL_CAPABILITIES, ...argv];
}
