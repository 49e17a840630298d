import { randomBytes } from 'node:crypto';

/**
 * Every id FrostGate mints: `<prefix>_<body>`, the body drawn from one alphabet (lowercase
 * letters and digits without the look-alikes 0, 1 and l, as API keys have always used) by
 * rejection sampling, so each character is uniform. The prefix map is closed: a new kind of id
 * is a line here, and its length says how many random bits it carries (about 5.04 a character).
 */
export const ID_ALPHABET = 'abcdefghijkmnopqrstuvwxyz23456789';

/** Characters of random body per prefix (bits ≈ 5.04 × length). */
export const ID_LENGTHS = {
  /** decisions */
  dec: 24,
  /** governance changes */
  chg: 20,
  /** ingest batches */
  ing: 24,
  /** API key ids; the public part of the key `fg_<id>_<secret>` */
  key: 12,
  /** scenarios (labs) */
  scn: 24,
  /** billing events */
  bil: 24,
  /** terminal sessions (a reattach capability: 131 bits) */
  term: 26,
  /** request ids (unique, not secret) */
  req: 16,
} as const;

export type IdPrefix = keyof typeof ID_LENGTHS;

/** Bytes below this map onto the alphabet evenly; the rest are drawn again. */
const ACCEPT_BELOW = 256 - (256 % ID_ALPHABET.length);

// One CSPRNG draw serves many ids: a request id is minted per request (docs/architecture.md has the cost).
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let at = 0;

function randomByte(): number {
  if (at >= pool.length) {
    pool = randomBytes(POOL_BYTES);
    at = 0;
  }
  return pool[at++]!;
}

/** `length` characters, each uniform over ID_ALPHABET. */
export function randomIdBody(length: number): string {
  let out = '';
  while (out.length < length) {
    const b = randomByte();
    if (b < ACCEPT_BELOW) out += ID_ALPHABET[b % ID_ALPHABET.length];
  }
  return out;
}

/** A fresh id of the kind `prefix`, e.g. `chg_7kq2…`. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomIdBody(ID_LENGTHS[prefix])}`;
}

/** A pattern matching ids of the kind `prefix` exactly (for validation and tests). */
export function idPattern(prefix: IdPrefix): RegExp {
  return new RegExp(`^${prefix}_[${ID_ALPHABET}]{${ID_LENGTHS[prefix]}}$`);
}
