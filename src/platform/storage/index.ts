export { FilesystemStorage } from './filesystem.js';
export { storageHealth } from './health.js';
export { storageFromConfig } from './from-config.js';
export { S3Storage, type S3StorageOptions } from './s3.js';
export { signRequest, uriEncode, type SigV4Credentials } from './sigv4.js';
export { assertStorageKey, StorageError, type ObjectStorage, type RetentionResult, type StoredObject } from './types.js';
