/**
 * A role is a set of plugins on one port. `all` runs every plugin in one process (npm start);
 * the others split the product across processes and machines, each on the seed's port. Kept
 * apart from roles.ts so `frostgate serve --help` names them without loading the platform.
 */
export const ROLE_PORTS = {
  all: 8080,
  core: 8080,
  admin: 8081,
  spawn: 8082,
  orchestrator: 8083,
  worker: 8084,
  scoreboard: 8086,
} as const;

export type RoleName = keyof typeof ROLE_PORTS;
export const ROLE_NAMES = Object.keys(ROLE_PORTS) as RoleName[];

export function isRoleName(value: string): value is RoleName {
  return Object.hasOwn(ROLE_PORTS, value);
}
