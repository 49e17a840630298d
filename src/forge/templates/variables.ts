import { createHmac } from 'node:crypto';
import { parseCidr } from '../runtime/ipv4.js';
import type { VariableSpec } from './checks.js';

/**
 * Per-scenario template variables. Each value is derived from (secret, scenario id, variable
 * name) with HMAC-SHA256, so the orchestrator placing `{{flag}}` into a device and the grader
 * checking an `answer` against `variable: flag` compute the same value without storing it, and
 * two scenarios of one template get different values (answers cannot be shared between
 * learners). The secret is the deployment's; without one (dev) the values are still distinct
 * per scenario but computable by anyone who knows the scenario id and this code.
 */

export type ScenarioVariables = Readonly<Record<string, string>>;

const DOMAIN = 'frostgate.forge.variables.v1';
const PASSWORD_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

/** An endless byte stream for one variable: HMAC(secret, domain | scenario | name | counter). */
function byteStream(secret: Uint8Array, scenarioId: string, name: string): () => number {
  let counter = 0;
  let block = Buffer.alloc(0);
  let at = 0;
  return () => {
    if (at >= block.length) {
      block = createHmac('sha256', Buffer.concat([Buffer.from(DOMAIN), Buffer.from(secret)]))
        .update(`${scenarioId}\0${name}\0${counter++}`)
        .digest();
      at = 0;
    }
    return block[at++]!;
  };
}

/** A uniform integer in [0, n) from the stream (rejection sampling, n <= 2^24). */
function uniform(next: () => number, n: number): number {
  const limit = 2 ** 24 - (2 ** 24 % n);
  for (;;) {
    const v = (next() << 16) | (next() << 8) | next();
    if (v < limit) return v % n;
  }
}

function valueOf(spec: VariableSpec, next: () => number): string {
  switch (spec.kind) {
    case 'token': {
      const length = spec.length ?? 16;
      let hex = '';
      while (hex.length < length) hex += next().toString(16).padStart(2, '0');
      return `${spec.prefix ?? ''}${hex.slice(0, length)}${spec.suffix ?? ''}`;
    }
    case 'password': {
      let out = '';
      for (let i = 0; i < (spec.length ?? 16); i++) out += PASSWORD_ALPHABET[uniform(next, PASSWORD_ALPHABET.length)];
      return out;
    }
    case 'ipv4': {
      const cidr = parseCidr(spec.cidr);
      if (!cidr) throw new Error(`variable cidr ${spec.cidr} is not a CIDR`);
      const size = 2 ** (32 - cidr.prefix);
      // Not the network, the first host (conventionally the gateway) or the broadcast address.
      const host = cidr.base + 2 + uniform(next, size - 3);
      return [host >>> 24, (host >>> 16) & 255, (host >>> 8) & 255, host & 255].join('.');
    }
    case 'choice':
      return spec.values[uniform(next, spec.values.length)]!;
  }
}

export function scenarioVariables(
  variables: Readonly<Record<string, VariableSpec>> | undefined,
  scenarioId: string,
  secret: Uint8Array = new Uint8Array(),
): ScenarioVariables {
  const out: Record<string, string> = {};
  for (const name of Object.keys(variables ?? {}).sort()) out[name] = valueOf(variables![name]!, byteStream(secret, scenarioId, name));
  return out;
}

/** Replaces `{{name}}` with the variable's value; unknown names are left as they are. */
export function substituteVariables(text: string, values: ScenarioVariables): string {
  return text.replace(/\{\{\s*([a-z][a-z0-9_]{0,31})\s*\}\}/g, (whole, name: string) => (Object.hasOwn(values, name) ? values[name]! : whole));
}
