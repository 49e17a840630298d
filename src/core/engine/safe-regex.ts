import { UnsafeRegexError } from './errors.js';

/**
 * Regular expressions in rules run on attacker-controlled text (user agents, paths), so a
 * pattern must not be able to backtrack catastrophically. JavaScript's engine backtracks; rather
 * than ship our own matcher we accept only a subset whose backtracking is bounded, and refuse
 * everything else with a reason:
 *
 * Accepted: literals; escaped punctuation (`\.`, `\/`, `\(`...); `\d \D \w \W \s \S \b \B`;
 * `\n \r \t \f \v \0 \xHH \uHHHH`; `.`; classes `[...]`, `[^...]` with ranges; anchors `^ $`;
 * groups `(...)` and `(?:...)`; alternation `|`; quantifiers `* + ? {n} {n,} {n,m}` (n, m <= 1000),
 * greedy or lazy. Flags: only `i` (from `case_insensitive: true`).
 *
 * Refused:
 * - backreferences (`\1`, `\k<name>`), lookaround (`(?=`, `(?!`, `(?<=`, `(?<!`), named groups,
 *   `\p{...}`, `\c`, unknown letter escapes, unescaped `{` `}` `]` outside their syntax;
 * - nested quantifiers: a repeated group containing a variable quantifier (`(a+)+`, `(.*)*`,
 *   `(a?)*`, `(?:.*a){3}`); fixed counts inside are fine (`(\d{1,3}\.){3}`, `(?:[a-f]{2})+`);
 * - a repeated group that can match the empty string, or whose alternatives can start with the
 *   same character (`(a|a)*`, `(a|ab)+`);
 * - two unbounded quantifiers in one sequence over overlapping characters with no mandatory
 *   separator between them that the first cannot consume (`.*a.*`, `\d+\d+`, `a*a*`; fine:
 *   `\d+\.\d+`, `\w+@\w+`, `union\s+select`);
 * - alternations with overlapping first characters whose branch counts multiply past 1024;
 * - patterns longer than 512 characters or with more than 16 unbounded quantifiers.
 *
 * At match time only the first MAX_REGEX_INPUT characters of a value are examined, bounding the
 * remaining polynomial cost (an unanchored search is quadratic in the worst case).
 */
export const MAX_REGEX_PATTERN = 512;
export const MAX_REGEX_INPUT = 2048;
const MAX_UNBOUNDED = 16;
const MAX_ALTERNATION_PRODUCT = 1024;
const MAX_COUNT = 1000;

/** Characters as a bitmap: codes 0..127 and one bit (128) for every non-ASCII character. */
class CharSet {
  readonly bits = new Uint32Array(5);
  static of(...codes: number[]): CharSet {
    const s = new CharSet();
    for (const c of codes) s.add(c);
    return s;
  }
  static range(from: number, to: number): CharSet {
    const s = new CharSet();
    s.addRange(from, to);
    return s;
  }
  static all(): CharSet {
    return new CharSet().complement();
  }
  add(code: number): this {
    const bit = code > 127 ? 128 : code;
    this.bits[bit >> 5]! |= 1 << (bit & 31);
    return this;
  }
  addRange(from: number, to: number): this {
    for (let c = from; c <= Math.min(to, 128); c++) this.add(c);
    if (to > 127) this.add(128);
    return this;
  }
  union(other: CharSet): this {
    for (let i = 0; i < 5; i++) this.bits[i]! |= other.bits[i]!;
    return this;
  }
  complement(): this {
    for (let i = 0; i < 4; i++) this.bits[i] = ~this.bits[i]! >>> 0;
    this.bits[4] = ~this.bits[4]! & 1;
    return this;
  }
  intersects(other: CharSet): boolean {
    for (let i = 0; i < 5; i++) if ((this.bits[i]! & other.bits[i]!) !== 0) return true;
    return false;
  }
  foldCase(): this {
    for (let c = 65; c <= 90; c++) {
      const upper = (this.bits[c >> 5]! >> (c & 31)) & 1;
      const lower = (this.bits[(c + 32) >> 5]! >> ((c + 32) & 31)) & 1;
      if (upper || lower) this.add(c).add(c + 32);
    }
    return this;
  }
  clone(): CharSet {
    return new CharSet().union(this);
  }
}

const DIGIT = CharSet.range(48, 57);
const WORD = CharSet.range(48, 57).addRange(65, 90).addRange(97, 122).add(95);
const SPACE = CharSet.of(9, 10, 11, 12, 13, 32, 128);
const CLASS_ESCAPES: Record<string, () => CharSet> = {
  d: () => DIGIT.clone(),
  D: () => DIGIT.clone().complement(),
  w: () => WORD.clone(),
  W: () => WORD.clone().complement(),
  s: () => SPACE.clone(),
  // \S also matches non-ASCII characters: keep bit 128 on both sides (conservative).
  S: () => SPACE.clone().complement().add(128),
};
const CONTROL_ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, f: 12, v: 11, '0': 0 };

type Node =
  | { readonly t: 'chars'; readonly set: CharSet }
  | { readonly t: 'assert' }
  | { readonly t: 'group'; readonly alts: readonly Node[][] }
  | { readonly t: 'quant'; readonly node: Node; readonly min: number; readonly max: number };

class Parser {
  private i = 0;
  constructor(
    private readonly src: string,
    private readonly fold: boolean,
  ) {}

  fail(reason: string, at = this.i): never {
    throw new UnsafeRegexError(`${reason} (at position ${at} of /${this.src}/)`);
  }

  parse(): Node {
    const node = this.alternation();
    if (this.i < this.src.length) this.fail('unmatched ")"');
    return node;
  }

  private alternation(): Node {
    const alts: Node[][] = [this.sequence()];
    while (this.src[this.i] === '|') {
      this.i++;
      alts.push(this.sequence());
    }
    return { t: 'group', alts };
  }

  private sequence(): Node[] {
    const seq: Node[] = [];
    while (this.i < this.src.length && this.src[this.i] !== '|' && this.src[this.i] !== ')') {
      const atomAt = this.i;
      const atom = this.atom();
      const quant = this.quantifier();
      if (quant) {
        if (atom.t === 'assert') this.fail('nothing to repeat', atomAt);
        seq.push({ t: 'quant', node: atom, ...quant });
        const next = this.src[this.i];
        if (next !== undefined && '*+?{'.includes(next)) this.fail('a quantifier cannot follow a quantifier');
      } else seq.push(atom);
    }
    return seq;
  }

  private quantifier(): { min: number; max: number } | undefined {
    const c = this.src[this.i];
    let q: { min: number; max: number } | undefined;
    if (c === '*') q = { min: 0, max: Infinity };
    else if (c === '+') q = { min: 1, max: Infinity };
    else if (c === '?') q = { min: 0, max: 1 };
    else if (c === '{') {
      const m = /^\{(\d{1,4})(,(\d{0,4}))?\}/.exec(this.src.slice(this.i));
      if (!m) this.fail('"{" must start a quantifier {n}, {n,} or {n,m}; escape a literal one as \\{');
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      if (min > MAX_COUNT || (max !== Infinity && max > MAX_COUNT)) this.fail(`repetition counts above ${MAX_COUNT} are not accepted`);
      if (max < min) this.fail(`quantifier {${min},${max}} has its numbers out of order`);
      this.i += m[0].length - 1;
      q = { min, max };
    }
    if (!q) return undefined;
    this.i++;
    if (this.src[this.i] === '?') this.i++; // lazy: same backtracking bounds as greedy
    return q;
  }

  private atom(): Node {
    const at = this.i;
    const c = this.src[this.i++]!;
    switch (c) {
      case '^':
      case '$':
        return { t: 'assert' };
      case '.':
        return { t: 'chars', set: CharSet.all() };
      case '(': {
        if (this.src[this.i] === '?') {
          const kind = this.src.slice(this.i, this.i + 3);
          if (kind.startsWith('?:')) this.i += 2;
          else if (kind.startsWith('?=') || kind.startsWith('?!') || kind === '?<=' || kind === '?<!') this.fail('lookaround is not accepted', at);
          else if (kind.startsWith('?<')) this.fail('named groups are not accepted; use (?:...)', at);
          else this.fail('unknown group syntax "(?"', at);
        }
        const group = this.alternation();
        if (this.src[this.i] !== ')') this.fail('unterminated group', at);
        this.i++;
        return group;
      }
      case '[':
        return { t: 'chars', set: this.charClass(at) };
      case '\\':
        return this.escape(false);
      case ')':
        return this.fail('unmatched ")"', at);
      case '*':
      case '+':
      case '?':
        return this.fail('nothing to repeat', at);
      case '{':
      case '}':
      case ']':
        return this.fail(`escape a literal "${c}" as \\${c}`, at);
      default:
        return { t: 'chars', set: this.literal(c.codePointAt(0)!) };
    }
  }

  private literal(code: number): CharSet {
    const s = CharSet.of(code);
    return this.fold ? s.foldCase() : s;
  }

  /** After a backslash. In a class, \b is a backspace and \B is refused. */
  private escape(inClass: boolean): Node & { t: 'chars' | 'assert' } {
    const at = this.i - 1;
    const c = this.src[this.i++];
    if (c === undefined) this.fail('pattern ends with a lone backslash', at);
    if (CLASS_ESCAPES[c]) return { t: 'chars', set: CLASS_ESCAPES[c]() };
    if (c === 'b' || c === 'B') {
      if (!inClass) return { t: 'assert' };
      if (c === 'b') return { t: 'chars', set: CharSet.of(8) };
    }
    if (/[1-9]/.test(c)) this.fail('backreferences are not accepted', at);
    if (c === 'k') this.fail('named backreferences are not accepted', at);
    if (c === '0' && /[0-9]/.test(this.src[this.i] ?? '')) this.fail('octal escapes are not accepted', at);
    if (CONTROL_ESCAPES[c] !== undefined) return { t: 'chars', set: CharSet.of(CONTROL_ESCAPES[c]) };
    if (c === 'x' || c === 'u') {
      const len = c === 'x' ? 2 : 4;
      const hex = this.src.slice(this.i, this.i + len);
      if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) this.fail(`\\${c} needs ${len} hex digits`, at);
      this.i += len;
      return { t: 'chars', set: this.literal(parseInt(hex, 16)) };
    }
    if (/[A-Za-z0-9]/.test(c)) this.fail(`escape \\${c} is not accepted`, at);
    return { t: 'chars', set: this.literal(c.codePointAt(0)!) };
  }

  private charClass(at: number): CharSet {
    const negated = this.src[this.i] === '^';
    if (negated) this.i++;
    const set = new CharSet();
    let first = true;
    for (;;) {
      const c = this.src[this.i];
      if (c === undefined) this.fail('unterminated character class', at);
      if (c === ']') {
        if (first) this.fail('an empty class [] matches nothing; escape a literal "]" as \\]', at);
        this.i++;
        break;
      }
      first = false;
      const lo = this.classAtom();
      if (this.src[this.i] === '-' && this.src[this.i + 1] !== ']' && this.src[this.i + 1] !== undefined) {
        this.i++;
        const hi = this.classAtom();
        if (typeof lo !== 'number' || typeof hi !== 'number') this.fail('a class range needs single characters at both ends', at);
        if (hi < lo) this.fail('class range out of order', at);
        set.addRange(lo, hi);
      } else if (typeof lo === 'number') set.add(lo);
      else set.union(lo);
    }
    if (this.fold) set.foldCase();
    return negated ? set.complement() : set;
  }

  /** One class member: a character code, or a set for \d-style escapes. */
  private classAtom(): number | CharSet {
    const c = this.src[this.i++]!;
    if (c === '[') this.fail('escape a literal "[" inside a class as \\[', this.i - 1);
    if (c !== '\\') return c.codePointAt(0)!;
    const node = this.escape(true);
    if (node.t === 'assert') this.fail('\\B is not accepted inside a class', this.i - 2);
    const { set } = node;
    // A single-character set comes back as its code, so it can bound a range.
    let only = -1;
    for (let code = 0; code < 129; code++) {
      if ((set.bits[code >> 5]! >> (code & 31)) & 1) {
        if (only >= 0) return set;
        only = code;
      }
    }
    return only;
  }
}

interface Info {
  readonly minLen: number;
  /** Contains a quantifier with no upper bound. */
  readonly unbounded: boolean;
  /** Contains a quantifier whose min differs from its max. */
  readonly variable: boolean;
  /** Every character the node can consume. */
  readonly set: CharSet;
  /** Characters the node can start with. */
  readonly first: CharSet;
}

class Analyzer {
  unboundedCount = 0;
  alternationProduct = 1;
  constructor(private readonly fail: (reason: string) => never) {}

  node(n: Node): Info {
    switch (n.t) {
      case 'chars':
        return { minLen: 1, unbounded: false, variable: false, set: n.set, first: n.set };
      case 'assert':
        return { minLen: 0, unbounded: false, variable: false, set: new CharSet(), first: new CharSet() };
      case 'group':
        return this.group(n.alts);
      case 'quant':
        return this.quant(n.node, n.min, n.max);
    }
  }

  private group(alts: readonly Node[][]): Info {
    const infos = alts.map((seq) => this.sequence(seq));
    if (infos.length > 1) {
      let overlapping = false;
      for (let a = 0; a < infos.length && !overlapping; a++)
        for (let b = a + 1; b < infos.length; b++) if (infos[a]!.first.intersects(infos[b]!.first)) overlapping = true;
      if (overlapping) {
        this.alternationProduct *= infos.length;
        if (this.alternationProduct > MAX_ALTERNATION_PRODUCT) this.fail('too many ambiguous alternatives (their branch counts multiply past 1024)');
      }
    }
    const set = new CharSet();
    const first = new CharSet();
    for (const i of infos) {
      set.union(i.set);
      first.union(i.first);
    }
    return {
      minLen: Math.min(...infos.map((i) => i.minLen)),
      unbounded: infos.some((i) => i.unbounded),
      // Branches of different lengths are ambiguous only when they can start alike, which
      // the repeated-group check refuses on its own.
      variable: infos.some((i) => i.variable),
      set,
      first,
    };
  }

  private quant(inner: Node, min: number, max: number): Info {
    const info = this.node(inner);
    const unbounded = max === Infinity;
    if (unbounded) this.unboundedCount++;
    if (this.unboundedCount > MAX_UNBOUNDED) this.fail(`more than ${MAX_UNBOUNDED} unbounded quantifiers`);
    if (max > 1) {
      if (info.unbounded || (unbounded && info.variable)) this.fail('nested quantifiers are not accepted (e.g. (a+)+, (.*)*, (a?)*)');
      if (unbounded && info.minLen === 0) this.fail('a repeated group must not be able to match the empty string');
      if (unbounded && inner.t === 'group' && inner.alts.length > 1) {
        const firsts = inner.alts.map((seq) => this.sequenceFirst(seq));
        for (let a = 0; a < firsts.length; a++)
          for (let b = a + 1; b < firsts.length; b++)
            if (firsts[a]!.intersects(firsts[b]!)) this.fail('alternatives under a repeated group must not start with the same character (e.g. (a|ab)*)');
      }
    }
    return {
      minLen: info.minLen * min,
      unbounded: unbounded || info.unbounded,
      variable: min !== max || info.variable,
      set: info.set,
      first: info.first,
    };
  }

  private sequenceFirst(seq: readonly Node[]): CharSet {
    // Cheap re-derivation without counting quantifiers again.
    const saved = [this.unboundedCount, this.alternationProduct] as const;
    const first = this.sequence(seq).first;
    [this.unboundedCount, this.alternationProduct] = saved;
    return first;
  }

  private sequence(seq: readonly Node[]): Info {
    const set = new CharSet();
    const first = new CharSet();
    let minLen = 0;
    let unbounded = false;
    let variable = false;
    let firstOpen = true;
    // Sets of the unbounded elements not yet cut off by a mandatory element they cannot start.
    let open: CharSet[] = [];
    for (const n of seq) {
      const info = this.node(n);
      // An earlier open quantifier that cannot consume this element's first character must
      // stop exactly where the element starts, so the split between them is unique.
      if (info.unbounded && open.some((o) => o.intersects(info.first))) {
        this.fail('two unbounded quantifiers over overlapping characters need a separator between them (e.g. .*a.*, \\d+\\d+)');
      }
      if (info.minLen > 0) open = open.filter((o) => o.intersects(info.first));
      if (info.unbounded) open.push(info.set);
      set.union(info.set);
      if (firstOpen) first.union(info.first);
      if (info.minLen > 0) firstOpen = false;
      minLen += info.minLen;
      unbounded ||= info.unbounded;
      variable ||= info.variable;
    }
    return { minLen, unbounded, variable, set, first };
  }
}

/** Checks a pattern against the accepted subset; throws UnsafeRegexError saying why not. */
export function assertSafeRegex(pattern: string, caseInsensitive = false): void {
  if (pattern.length === 0) throw new UnsafeRegexError('empty pattern');
  if (pattern.length > MAX_REGEX_PATTERN) throw new UnsafeRegexError(`pattern is ${pattern.length} characters, above the limit of ${MAX_REGEX_PATTERN}`);
  const parser = new Parser(pattern, caseInsensitive);
  const ast = parser.parse();
  new Analyzer((reason) => {
    throw new UnsafeRegexError(`${reason} in /${pattern}/`);
  }).node(ast);
}

/** A checked pattern, compiled; `test` looks at the first MAX_REGEX_INPUT characters only. */
export interface SafeRegex {
  readonly source: string;
  test(value: string): boolean;
}

export function compileSafeRegex(pattern: string, caseInsensitive = false): SafeRegex {
  assertSafeRegex(pattern, caseInsensitive);
  let re: RegExp;
  try {
    re = new RegExp(pattern, caseInsensitive ? 'i' : '');
  } catch (err) {
    throw new UnsafeRegexError(`not a valid regular expression: ${(err as Error).message}`);
  }
  return {
    source: pattern,
    test: (value) => re.test(value.length > MAX_REGEX_INPUT ? value.slice(0, MAX_REGEX_INPUT) : value),
  };
}
