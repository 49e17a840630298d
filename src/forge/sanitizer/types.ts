/**
 * What the sanitizer finds and how it reports it. Kinds are listed in precedence order: where two
 * findings overlap, the earlier kind wins (a JWT inside `Authorization: Bearer …` is a jwt, the
 * base64 of a private key block is never read as a card number).
 */
export const PII_KINDS = ['private_key', 'jwt', 'api_key', 'email', 'payment_card', 'ssn', 'phone'] as const;

export type PiiKind = (typeof PII_KINDS)[number];

export type PiiCounts = Record<PiiKind, number>;

/** One redacted span of the input. Units are stated by the function returning it. */
export interface Redaction {
  readonly kind: PiiKind;
  readonly offset: number;
  readonly length: number;
}

export interface SanitizeReport {
  /** Every kind, zero included, so consumers need no defaults. */
  readonly counts: PiiCounts;
  /** Sorted by offset; spans never overlap. */
  readonly redactions: readonly Redaction[];
}

export interface SanitizedText {
  readonly text: string;
  readonly report: SanitizeReport;
}

/** The text that replaces a redacted span, e.g. `[REDACTED:email]`. */
export function redactionMark(kind: PiiKind): string {
  return `[REDACTED:${kind}]`;
}

export function emptyCounts(): PiiCounts {
  return Object.fromEntries(PII_KINDS.map((k) => [k, 0])) as PiiCounts;
}

export function countKinds(redactions: readonly Redaction[]): PiiCounts {
  const counts = emptyCounts();
  for (const r of redactions) counts[r.kind]++;
  return counts;
}
