/**
 * Validators that turn pattern matches into findings. The patterns alone would redact half of a
 * router's counters; these checks are what keep ordinary lab output intact.
 */

/** Luhn (mod 10) checksum over a string of decimal digits. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

// Issuer prefixes and the lengths each issues (ISO/IEC 7812 IIN ranges of the major networks).
// A digit run is a card only if its prefix and length fit one of these: epoch-millisecond
// timestamps (13 digits starting with 1) or 10-digit BGP AS numbers never do.
const CARD_BRANDS: ReadonlyArray<{ prefix: RegExp; lengths: readonly number[] }> = [
  { prefix: /^4/, lengths: [13, 16, 19] }, // Visa
  { prefix: /^(?:5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720))/, lengths: [16] }, // Mastercard
  { prefix: /^3[47]/, lengths: [15] }, // American Express
  { prefix: /^3(?:0[0-5]|[689])/, lengths: [14, 15, 16, 17, 18, 19] }, // Diners Club
  { prefix: /^35(?:2[89]|[3-8]\d)/, lengths: [16, 17, 18, 19] }, // JCB
  { prefix: /^6(?:011|5|4[4-9])/, lengths: [16, 17, 18, 19] }, // Discover
  { prefix: /^62/, lengths: [16, 17, 18, 19] }, // UnionPay
];

// How printed card numbers are grouped when they have separators.
const CARD_GROUPINGS: ReadonlyArray<readonly number[]> = [
  [4, 4, 4, 4],
  [4, 6, 5],
  [4, 6, 4],
  [4, 4, 4, 4, 3],
  [4, 4, 5],
];

/**
 * A payment card number: digits with no separators, or one kind of separator (space or dash)
 * in a printed grouping; a known issuer prefix and length; Luhn-valid.
 */
export function isPaymentCard(candidate: string): boolean {
  const groups = candidate.split(/[ -]/);
  const separators = candidate.replace(/\d/g, '');
  if (separators.length > 0) {
    if (new Set(separators).size !== 1) return false;
    const lengths = groups.map((g) => g.length);
    if (!CARD_GROUPINGS.some((g) => g.length === lengths.length && g.every((n, i) => n === lengths[i]))) return false;
  }
  const digits = groups.join('');
  if (!CARD_BRANDS.some((b) => b.prefix.test(digits) && b.lengths.includes(digits.length))) return false;
  return luhnValid(digits);
}

/** Shannon entropy in bits per character. */
export function shannonEntropy(s: string): number {
  if (s.length === 0) return 0;
  const freq = new Map<string, number>();
  for (const c of s) freq.set(c, (freq.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of freq.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/**
 * A value after `key=`-like labels that looks machine-generated: long, at least two of
 * lower/upper/digit, and high entropy. Paths, words and host names fail this.
 */
export function looksLikeSecret(value: string): boolean {
  if (value.length < 16) return false;
  const classes = [/[a-z]/, /[A-Z]/, /\d/].filter((re) => re.test(value)).length;
  if (classes < 2) return false;
  return shannonEntropy(value) >= 3.2;
}

export function digitCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}
