/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): the one byte form of a JSON value that FrostGate
 * hashes or signs (ledger leaves, Forge verdicts, token payloads).
 *
 * - object members sorted by their names compared as arrays of UTF-16 code units (which is what
 *   the default `Array.prototype.sort` comparison of strings does);
 * - numbers written the way ECMAScript's Number::toString writes them (`String(n)`), `-0` as `0`;
 * - strings escaped as ECMAScript's JSON.stringify escapes them (short escapes for \b \t \n \f \r,
 *   `\u00xx` in lowercase hex for other controls, everything else literal);
 * - no whitespace.
 *
 * Values outside the I-JSON data model are refused with a CanonicalJsonError instead of being
 * coerced the way JSON.stringify would (NaN becoming null, a function vanishing): a record that
 * silently changes shape on its way into the ledger would make its hash unverifiable later.
 * Object members whose value is `undefined` are omitted, as JSON.stringify omits them; `toJSON()`
 * is honoured (so a Date becomes its ISO string).
 */

export class CanonicalJsonError extends Error {
  readonly code = 'canonical_json_unsupported' as const;
  /** Where the offending value sits, e.g. `$.numbers[3]`. */
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${message} at ${path}`);
    this.name = 'CanonicalJsonError';
    this.path = path;
  }
}

// With the `u` flag a surrogate pair is one code point, so this matches only lone surrogates,
// which RFC 8785 section 3.2.2.2 requires an implementation to reject.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function serializeString(s: string, path: string): string {
  if (LONE_SURROGATE.test(s)) throw new CanonicalJsonError(path, 'string contains a lone surrogate');
  return JSON.stringify(s);
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function hasToJson(value: object): value is { toJSON: (key: string) => unknown } {
  return typeof (value as { toJSON?: unknown }).toJSON === 'function';
}

function memberPath(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function serialize(input: unknown, key: string, path: string, ancestors: Set<object>): string {
  let value = input;
  if (typeof value === 'object' && value !== null && hasToJson(value)) value = value.toJSON(key);

  switch (typeof value) {
    case 'string':
      return serializeString(value, path);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError(path, `number ${String(value)} is not representable in JSON`);
      // Number::toString is the serialisation RFC 8785 section 3.2.2.3 prescribes; it already
      // prints -0 as "0".
      return String(value);
    case 'undefined':
      throw new CanonicalJsonError(path, 'undefined is not a JSON value');
    case 'bigint':
      throw new CanonicalJsonError(path, 'bigint is not a JSON value (convert it to a string or a safe number)');
    case 'function':
    case 'symbol':
      throw new CanonicalJsonError(path, `${typeof value} is not a JSON value`);
    case 'object':
      break;
  }
  if (value === null) return 'null';
  if (ancestors.has(value)) throw new CanonicalJsonError(path, 'circular reference');
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      const items: string[] = [];
      for (let i = 0; i < value.length; i++) {
        items.push(serialize(value[i], String(i), `${path}[${i}]`, ancestors));
      }
      return `[${items.join(',')}]`;
    }
    if (!isPlainObject(value)) {
      const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      throw new CanonicalJsonError(path, `${kind} is not a plain JSON object`);
    }
    const record = value as Record<string, unknown>;
    const members: string[] = [];
    for (const name of Object.keys(record).sort()) {
      const member = record[name];
      if (member === undefined) continue;
      const childPath = memberPath(path, name);
      members.push(`${serializeString(name, childPath)}:${serialize(member, name, childPath, ancestors)}`);
    }
    return `{${members.join(',')}}`;
  } finally {
    ancestors.delete(value);
  }
}

/** Thrown by the fast pass at anything it does not handle itself; never leaves this module. */
const BAIL = new Error('canonical-json fast pass bails');
/** Deeper than this the fast pass hands over to the checked one (which also finds cycles). */
const FAST_DEPTH = 64;

/**
 * The same text as `serialize` for well-formed input, without building a path for every member
 * or tracking ancestors (together ~30% of the time per ledger record). Anything the checked pass
 * would refuse or must look at closely (a lone surrogate, a non-finite number, a non-JSON value,
 * a non-plain object, nesting past FAST_DEPTH, which every cycle reaches) throws BAIL instead, and
 * `canonicalize` runs the checked pass from the start, which throws the error with its path.
 */
function fast(input: unknown, key: string | number, depth: number): string {
  let value = input;
  if (typeof value === 'object' && value !== null && hasToJson(value)) value = value.toJSON(String(key));
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) throw BAIL;
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw BAIL;
      return String(value);
    case 'object':
      break;
    default:
      throw BAIL;
  }
  if (value === null) return 'null';
  if (depth >= FAST_DEPTH) throw BAIL;
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + fast(value[i], i, depth + 1);
    return `${out}]`;
  }
  if (!isPlainObject(value)) throw BAIL;
  const record = value as Record<string, unknown>;
  let out = '{';
  for (const name of Object.keys(record).sort()) {
    const member = record[name];
    if (member === undefined) continue;
    if (!name.isWellFormed()) throw BAIL;
    out += `${out.length === 1 ? '' : ','}${JSON.stringify(name)}:${fast(member, name, depth + 1)}`;
  }
  return `${out}}`;
}

/** The RFC 8785 canonical JSON text of `value`; throws CanonicalJsonError for non-JSON values. */
export function canonicalize(value: unknown): string {
  try {
    return fast(value, '', 0);
  } catch (err) {
    if (err !== BAIL) throw err;
    return serialize(value, '', '$', new Set());
  }
}

/** The UTF-8 bytes of the canonical JSON text: what gets hashed and signed. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}
