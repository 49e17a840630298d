/**
 * Object storage (scenario results and evidence, published verdict keys, the ledger witness): a
 * filesystem tree by default (FG_STORAGE_DIR) or an S3-compatible bucket, behind one interface.
 * Keys are relative POSIX paths such as `scenarios/scn_…/results/score.json`.
 */
export interface StoredObject {
  readonly key: string;
  readonly size: number;
  readonly modifiedAt: Date;
}

export interface RetentionResult {
  /** Keys removed now (filesystem sweep); empty where the backend expires objects itself (S3 lifecycle). */
  readonly removed: readonly string[];
  readonly mechanism: 'sweep' | 'lifecycle';
}

export interface ObjectStorage {
  readonly kind: 'filesystem' | 's3';
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** The object's bytes, or undefined when there is none. */
  get(key: string): Promise<Buffer | undefined>;
  /** Objects whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<StoredObject[]>;
  delete(key: string): Promise<void>;
  /**
   * Objects under `prefix` older than `days` go away: the filesystem sweeps them now, S3 gets
   * (or keeps) a lifecycle rule that expires them.
   */
  enforceRetention(prefix: string, days: number, now?: Date): Promise<RetentionResult>;
  /** Where an object is, for people: a file path or an s3:// URL. */
  locate(key: string): string;
}

export class StorageError extends Error {
  constructor(
    readonly code: 'storage_key_invalid' | 'storage_request_failed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/** Throws unless `key` is a relative POSIX path without empty, `.` or `..` segments. */
export function assertStorageKey(key: string, { prefix = false } = {}): void {
  if (prefix && key === '') return;
  const parts = key.split('/');
  if (prefix && parts[parts.length - 1] === '') parts.pop();
  if (key.startsWith('/') || key.includes('\0') || key.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new StorageError('storage_key_invalid', `storage key ${JSON.stringify(key)} is not a relative path`);
  }
}
