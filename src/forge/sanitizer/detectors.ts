/**
 * The PII detectors. Each finds candidate spans of one kind in a text; `findPii` runs them in
 * precedence order and keeps the spans that do not overlap an earlier finding.
 *
 * Precision rules for lab output (what must survive byte for byte): IPv4/IPv6 addresses, MACs in
 * every notation, host names and shell prompts (`root@r1.lab:~#`), interface names, timestamps and
 * time-zone offsets, version strings, ports, counters, AS numbers, nft table names. Hence:
 * - a digit run is a card only with a known issuer prefix and length, a printed grouping and a
 *   valid Luhn digit;
 * - a phone number needs a leading `+` (E.164, 10-15 digits), the North-American shape with `-`,
 *   `.` or parentheses, or a label such as `tel:` / `phone` / `mobile` in front of it — bare
 *   space-separated digit groups are hex dumps and counter columns far more often than phones;
 * - an e-mail address followed by `:` and a non-space (prompt, scp target, git remote) is a
 *   user@host, and `unit@instance.service` names of systemd are not addresses;
 * - a generic secret is redacted only after a key-like label and only when it looks generated.
 *
 * All quantifiers over unbounded input are either bounded or anchored on a rare literal, and no
 * rejected candidate is re-read from each of its positions, so the scan stays linear on megabyte
 * terminal recordings (bench/scoreboard.ts runs the adversarial inputs).
 *
 * Known blind spots: numbers inside hex dump lines, phone numbers written as bare space-separated
 * groups without a `+` or a label, and secrets after labels that are not in SECRET_LABELS.
 */

import { digitCount, isPaymentCard, looksLikeSecret } from './checks.js';
import type { PiiKind } from './types.js';

export interface Span {
  readonly start: number;
  readonly end: number;
}

export interface Finding extends Span {
  readonly kind: PiiKind;
}

interface Detector {
  readonly kind: PiiKind;
  find(text: string): Iterable<Span>;
}

/**
 * Every match of a global regex that `accept` turns into a span. After a rejected candidate the
 * search resumes one character after its start, not after its end, so a greedy candidate that
 * fails validation (a counter glued to a card number) does not hide a valid match inside it.
 */
function* matches(text: string, re: RegExp, accept: (m: RegExpExecArray) => Span | undefined): Iterable<Span> {
  re.lastIndex = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const span = accept(m);
    if (span) {
      yield span;
      re.lastIndex = Math.max(span.end, m.index + 1);
    } else {
      re.lastIndex = m.index + 1;
    }
  }
}

function whole(m: RegExpExecArray): Span {
  return { start: m.index, end: m.index + m[0].length };
}

/** The span of capture group 1 (regexes using this carry the `d` flag). */
function group1(m: RegExpExecArray): Span | undefined {
  const at = m.indices?.[1];
  return at ? { start: at[0], end: at[1] } : undefined;
}

// Hex dumps (tcpdump -X, xxd, od, hexdump -C): an offset, then at least three groups of hex
// digits. Their all-digit groups look like grouped card, phone and SSN numbers and pass Luhn one
// time in ten, so the numeric detectors skip such lines. The lines are found once per text (one
// linear pass), not per candidate: a candidate-time look at "its line" is quadratic on a
// megabyte-long single line.
// The offset is `0x0010:` / `00000010:` (tcpdump, xxd) or 7-8 digits without colon (od,
// hexdump -C), never a bare 4-digit group, so a line that starts with a grouped card is not a dump.
const HEX_DUMP_LINE = /^[ \t]*(?:(?:0x)?[0-9a-fA-F]{4,8}:|[0-9a-fA-F]{7,8})[ \t]{1,3}(?:[0-9a-fA-F]{2,4} {1,2}){3}[^\n]*/gm;

function hexDumpLines(text: string): Span[] {
  const spans: Span[] = [];
  HEX_DUMP_LINE.lastIndex = 0;
  for (let m = HEX_DUMP_LINE.exec(text); m; m = HEX_DUMP_LINE.exec(text)) {
    spans.push({ start: m.index, end: m.index + m[0].length });
    if (m[0].length === 0) HEX_DUMP_LINE.lastIndex++;
  }
  return spans;
}

/** Wraps a numeric detector's validation so nothing is found inside a hex dump line. */
function outsideHexDumps(text: string, accept: (m: RegExpExecArray) => Span | undefined): (m: RegExpExecArray) => Span | undefined {
  let dumps: Span[] | undefined;
  return (m) => {
    dumps ??= hexDumpLines(text);
    // Binary search for the last dump line starting at or before the candidate.
    let lo = 0;
    let hi = dumps.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((dumps[mid]?.start ?? 0) <= m.index) lo = mid + 1;
      else hi = mid;
    }
    const line = dumps[lo - 1];
    return line && m.index < line.end ? undefined : accept(m);
  };
}

// ---------------------------------------------------------------------------------------------
// Private keys: the whole PEM block, BEGIN to END. A block cut short (no END line) is redacted
// through the base64 and header lines that follow it.

const PEM_BEGIN = /-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----/g;
const PEM_BODY_LINE = /^(?:[A-Za-z0-9+/=]+|(?:Proc-Type|DEK-Info|Comment|Version): [^\n]*)\r?$/;

function* privateKeys(text: string): Iterable<Span> {
  // Where each END marker next occurs, remembered so that many BEGINs without an END do not each
  // search the rest of the text (-1: none after the remembered position).
  const nextEnd = new Map<string, { from: number; at: number }>();
  const findEnd = (marker: string, from: number): number => {
    const known = nextEnd.get(marker);
    if (known && known.from <= from && (known.at === -1 || known.at >= from)) return known.at;
    const at = text.indexOf(marker, from);
    nextEnd.set(marker, { from, at });
    return at;
  };
  PEM_BEGIN.lastIndex = 0;
  for (let m = PEM_BEGIN.exec(text); m; m = PEM_BEGIN.exec(text)) {
    const endMarker = `-----END ${m[1] ?? ''}-----`;
    const endAt = findEnd(endMarker, m.index + m[0].length);
    // Another BEGIN before this END means this block was cut short.
    const nextBegin = text.indexOf('-----BEGIN ', m.index + m[0].length);
    if (endAt !== -1 && (nextBegin === -1 || nextBegin > endAt)) {
      yield { start: m.index, end: endAt + endMarker.length };
      PEM_BEGIN.lastIndex = endAt + endMarker.length;
      continue;
    }
    let end = m.index + m[0].length;
    let pos = text[end] === '\r' ? end + 1 : end;
    while (text[pos] === '\n') {
      const lineEnd = text.indexOf('\n', pos + 1);
      const line = text.slice(pos + 1, lineEnd === -1 ? text.length : lineEnd);
      if (line.length === 0 || !PEM_BODY_LINE.test(line)) break;
      end = pos + 1 + line.replace(/\r$/, '').length;
      pos = lineEnd === -1 ? text.length : lineEnd;
    }
    yield { start: m.index, end };
  }
}

// ---------------------------------------------------------------------------------------------
// JWTs (JWS: 3 segments, JWE: 5), recognised by a base64url JSON header naming an algorithm.
// A truncated token (cut-off log line) with a complete header and payload is still found.

// At most 5 segments are read, so a rejected candidate never re-scans a long run of dots.
const JWT = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){2,4}/g;

/** A JOSE header: a JSON object naming its algorithm (JWE headers name `alg` too, RFC 7516). */
function jwtHeaderValid(segment: string): boolean {
  try {
    const header: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}

function* jwts(text: string): Iterable<Span> {
  yield* matches(text, JWT, (m) => {
    const segments = m[0].split('.');
    if (!jwtHeaderValid(segments[0] ?? '')) return undefined;
    let take = 0;
    if (segments.length >= 5 && segments.slice(2, 5).every((s) => s.length > 0)) take = 5;
    else if (segments.length >= 3 && (segments[1] ?? '').length > 0) take = 3;
    if (take === 0) return undefined;
    return { start: m.index, end: m.index + segments.slice(0, take).join('.').length };
  });
}

// ---------------------------------------------------------------------------------------------
// API keys with a recognisable vendor prefix, then generic `label=value` secrets.

const PREFIXES = [
  'fg_[a-z2-9]{12}_[A-Za-z0-9_-]{20,}', // FrostGate API keys (core/auth/key-format)
  '(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}', // Stripe secret / restricted keys
  'gh[pousr]_[A-Za-z0-9]{30,}', // GitHub tokens
  'github_pat_[A-Za-z0-9_]{30,}',
  '(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])', // AWS access key ids
  'xox[abeoprs]-[A-Za-z0-9-]{10,}', // Slack tokens
  'glpat-[A-Za-z0-9_-]{20,}', // GitLab personal tokens
  'AIza[A-Za-z0-9_-]{35}', // Google API keys
  'npm_[A-Za-z0-9]{36}',
];
const PREFIXED_KEYS = new RegExp(`(?<![A-Za-z0-9_])(?:${PREFIXES.join('|')})`, 'g');

// Labels are matched only at the start of a word (`monkey=` is not `key=`) and not after
// "public" (`wg show` prints `public key: …`); the value is what gets redacted so the log stays
// readable (`api_key=[REDACTED:api_key]`).
const SECRET_LABELS = [
  'api[_-]?key',
  'api[_-]?token',
  'api[_-]?secret',
  'access[_-]?key(?:[_-]?id)?',
  'secret[_-]?access[_-]?key',
  'secret[_-]?key',
  'client[_-]?secret',
  'private[_-]?key',
  'auth[_-]?token',
  'access[_-]?token',
  'refresh[_-]?token',
  'session[_-]?token',
  'bearer[_-]?token',
  'authorization',
  'secret',
  'token',
  'key',
].join('|');
const GENERIC_SECRET = new RegExp(
  `(?<![A-Za-z0-9])(?<!pub(?:lic)?[ _-]?)(?:${SECRET_LABELS})["']?[ \\t]{0,3}[:=][ \\t]{0,3}["']?(?:(?:Bearer|Basic|Token)[ \\t]+)?([A-Za-z0-9_\\-+/=.~]{16,})`,
  'gid',
);

function* apiKeys(text: string): Iterable<Span> {
  yield* matches(text, PREFIXED_KEYS, whole);
  // Not `matches`: after a value that does not look generated, the search resumes after the whole
  // value. A value may itself contain `key=`-like text (`key=aaaa.key=aaaa…`), and retrying inside
  // it would re-read the rest of the run for every label in it.
  GENERIC_SECRET.lastIndex = 0;
  for (let m = GENERIC_SECRET.exec(text); m; m = GENERIC_SECRET.exec(text)) {
    const value = group1(m);
    if (value && looksLikeSecret(m[1] ?? '')) yield value;
  }
}

// ---------------------------------------------------------------------------------------------
// E-mail addresses.

const EMAIL = /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}([A-Za-z]{2,24})(?![A-Za-z0-9-])/g;
// systemd unit suffixes: `getty@tty1.service` is a unit, not an address.
const UNIT_SUFFIXES = new Set(['service', 'socket', 'target', 'timer', 'mount', 'automount', 'path', 'slice', 'scope', 'device', 'swap']);

function* emails(text: string): Iterable<Span> {
  yield* matches(text, EMAIL, (m) => {
    if (UNIT_SUFFIXES.has((m[1] ?? '').toLowerCase())) return undefined;
    const end = m.index + m[0].length;
    // user@host:~$ prompts, scp user@host:/path, git@host:org/repo.
    if (text[end] === ':' && /\S/.test(text[end + 1] ?? ' ')) return undefined;
    return whole(m);
  });
}

// ---------------------------------------------------------------------------------------------
// Payment cards: 13-19 digits, Luhn-valid, see checks.isPaymentCard.

const CARD = /(?<![\w.:/-])\d(?:[ -]?\d){12,18}(?![\w:/-]|\.\d)/g;

function* cards(text: string): Iterable<Span> {
  yield* matches(
    text,
    CARD,
    outsideHexDumps(text, (m) => (isPaymentCard(m[0]) ? whole(m) : undefined)),
  );
}

// ---------------------------------------------------------------------------------------------
// US social security numbers: AAA-GG-SSSS with the never-issued ranges excluded; without dashes
// only after an "SSN" label.

const SSN_DASHED = /(?<![\w.:/-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w:/-]|\.\d)/g;
const SSN_LABELLED =
  /(?<![A-Za-z])(?:ssn|social[ _-]security(?:[ _-](?:number|no\.?|#))?)[^\dA-Za-z\n]{0,6}((?!000|666|9\d\d)\d{3}[ -]?(?!00)\d{2}[ -]?(?!0000)\d{4})(?![\w-])/dgi;

function* ssns(text: string): Iterable<Span> {
  yield* matches(text, SSN_DASHED, outsideHexDumps(text, whole));
  yield* matches(text, SSN_LABELLED, group1);
}

// ---------------------------------------------------------------------------------------------
// Phone numbers.

// `+` then digits with single separators; digit count and shape checked in code.
const PHONE_INTERNATIONAL = /(?<![\w+./-])\+[1-9][\d ().-]{6,24}\d(?![\w:/-]|\.\d)/g;
// North American: (AAA) EEE-NNNN, AAA-EEE-NNNN, AAA.EEE.NNNN (one separator kind), optional 1-;
// the area code cannot start with 0 or 1. The exchange is not checked: made-up 555-123-4567 is
// still somebody's phone number as far as a reader is concerned.
const PHONE_NANP = /(?<![\w.:/+=-])(?:1[ .-]?)?(?:\([2-9]\d{2}\) ?\d{3}[ .-]\d{4}|[2-9]\d{2}([.-])\d{3}\1\d{4})(?![\w:/-]|\.\d)/g;
// Anything phone-shaped after a label.
const PHONE_LABELLED =
  /(?<![A-Za-z])(?:tel|phone|telephone|mobile|cell|fax|ph|call)(?:[ .]?(?:no\.?|number|#))?[ \t]*[:=.]?[ \t]*(\+?\(?\d[\d ().-]{5,22}\d)(?![\w:/-]|\.\d)/dgi;

/**
 * Shortens a candidate at its last separator until it has at most 15 digits (a greedy match may
 * run into the next column), then checks its shape: no doubled separators, balanced parentheses,
 * and not an IPv4 address.
 */
function phoneShape(candidate: string, minDigits: number): string | undefined {
  let s = candidate;
  while (digitCount(s) > 15) {
    const cut = Math.max(s.lastIndexOf(' '), s.lastIndexOf('-'), s.lastIndexOf('.'));
    if (cut <= 0) return undefined;
    s = s.slice(0, cut).replace(/[ ().-]+$/, '');
  }
  if (digitCount(s) < minDigits) return undefined;
  if (/[ .-]{2,}/.test(s.replace(/\) /g, ')'))) return undefined;
  const opens = (s.match(/\(/g) ?? []).length;
  const closes = (s.match(/\)/g) ?? []).length;
  if (opens !== closes || opens > 1) return undefined;
  if (/^\+?\d{1,3}(?:\.\d{1,3}){3}$/.test(s)) return undefined;
  return s;
}

function* phones(text: string): Iterable<Span> {
  yield* matches(text, PHONE_INTERNATIONAL, (m) => {
    const s = phoneShape(m[0], 10);
    return s ? { start: m.index, end: m.index + s.length } : undefined;
  });
  yield* matches(text, PHONE_NANP, outsideHexDumps(text, whole));
  yield* matches(text, PHONE_LABELLED, (m) => {
    const span = group1(m);
    const s = span && phoneShape(m[1] ?? '', 7);
    return span && s ? { start: span.start, end: span.start + s.length } : undefined;
  });
}

// ---------------------------------------------------------------------------------------------

const DETECTORS: readonly Detector[] = [
  { kind: 'private_key', find: privateKeys },
  { kind: 'jwt', find: jwts },
  { kind: 'api_key', find: apiKeys },
  { kind: 'email', find: emails },
  { kind: 'payment_card', find: cards },
  { kind: 'ssn', find: ssns },
  { kind: 'phone', find: phones },
];

/** Index of the first accepted span ending after `pos` (spans sorted and disjoint). */
function firstEndingAfter(spans: readonly Finding[], pos: number): number {
  let lo = 0;
  let hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((spans[mid]?.end ?? 0) <= pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** All PII findings in `text`: sorted by start, non-overlapping, earlier kinds winning overlaps. */
export function findPii(text: string): Finding[] {
  const accepted: Finding[] = [];
  for (const detector of DETECTORS) {
    for (const span of detector.find(text)) {
      if (span.end <= span.start) continue;
      const i = firstEndingAfter(accepted, span.start);
      const next = accepted[i];
      if (next && next.start < span.end) continue;
      accepted.splice(i, 0, { kind: detector.kind, start: span.start, end: span.end });
    }
  }
  return accepted;
}
