import fc from 'fast-check';
import { KNOWN_PAYLOAD_FIELDS } from '../../../src/core/engine/event.js';

/** Every member name of Object.prototype: __proto__, constructor, hasOwnProperty, toString, valueOf, ... */
export const PROTOTYPE_NAMES: readonly string[] = Object.getOwnPropertyNames(Object.prototype);

/** Characters Postgres or RFC 8785 refuse: NUL, and halves of surrogate pairs on their own. */
const POISON = ['\u0000', '\uD800', '\uDBFF', '\uDC00', '\uDFFF'];

/** Strings a hostile sensor sends: ordinary, any code point, prototype names, and ones with a NUL or a lone surrogate. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.constantFrom(...PROTOTYPE_NAMES),
  fc.tuple(fc.string({ maxLength: 6 }), fc.constantFrom(...POISON), fc.string({ maxLength: 6 })).map(([a, p, b]) => a + p + b),
);

/** Payload member names: prototype names and hostile strings; never a documented field (those are type-checked). */
export const hostileKey: fc.Arbitrary<string> = fc
  .oneof({ weight: 2, arbitrary: fc.constantFrom(...PROTOTYPE_NAMES) }, { weight: 3, arbitrary: hostileString })
  .filter((k) => !Object.hasOwn(KNOWN_PAYLOAD_FIELDS, k));

/** A value nested `depth` arrays deep. */
function nested(depth: number): unknown {
  let v: unknown = 'deep';
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** Payload values: scalars, hostile strings, small containers with hostile keys, and now and then very deep nesting. */
export const hostileValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(hostileKey, tie('value'), { maxKeys: 3 }),
    fc.integer({ min: 5, max: 200 }).map(nested),
  ),
})).value;

export const hostilePayload: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(hostileKey, hostileValue, { maxKeys: 6 });

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Written from docs/events.md and the edge rules, not from the code under test: is this payload
 * within the event limits (and, with `edge`, free of what every route refuses: NUL, lone
 * surrogates, `__proto__` members)?
 */
export function acceptablePayload(payload: unknown, edge: boolean): boolean {
  const text = (s: string) => !edge || (!s.includes('\u0000') && !LONE_SURROGATE.test(s));
  // payload is level 1; containers may sit at levels 1 to 4.
  const ok = (v: unknown, level: number): boolean => {
    if (typeof v === 'string') return text(v) && v.length <= 8192;
    if (typeof v === 'number') return Number.isFinite(v);
    if (v === null || typeof v !== 'object') return true;
    if (level > 4) return false;
    if (Array.isArray(v)) return v.length <= 256 && v.every((x) => ok(x, level + 1));
    const keys = Object.keys(v);
    return keys.length <= 64 && keys.every((k) => !(edge && k === '__proto__') && text(k) && ok((v as Record<string, unknown>)[k], level + 1));
  };
  return payload !== null && typeof payload === 'object' && !Array.isArray(payload) && ok(payload, 1);
}

/** A string field of 1 to `max` characters that the edge lets through. */
export function acceptableText(s: string, max: number): boolean {
  return s.length > 0 && !s.includes('\u0000') && !LONE_SURROGATE.test(s) && [...s].length <= max;
}
