/**
 * PII sanitizer: scrubs evidence and audit bundles before they leave the lab store.
 * Pure functions; no I/O except sanitizeDirectory.
 */
export { sanitizeText, applyRedactions } from './text.js';
export { sanitizeJsonLines, type SanitizedJsonLines } from './json-lines.js';
export {
  sanitizeFiles,
  sanitizeDirectory,
  SanitizerError,
  type NamedBytes,
  type SanitizedFiles,
  type SanitizedFileReport,
  type SanitizedFileStatus,
} from './files.js';
export { findPii, type Finding, type Span } from './detectors.js';
export { luhnValid, isPaymentCard } from './checks.js';
export { PII_KINDS, redactionMark, emptyCounts, type PiiKind, type PiiCounts, type Redaction, type SanitizeReport, type SanitizedText } from './types.js';
