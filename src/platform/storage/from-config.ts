import type { Config } from '../../config/config.js';
import { FilesystemStorage } from './filesystem.js';
import { S3Storage } from './s3.js';
import type { ObjectStorage } from './types.js';

/** The object store the configuration names: FG_STORAGE_DIR, or the S3 bucket of FG_S3_*. */
export function storageFromConfig(config: Pick<Config, 'storageDir' | 'storage'>): ObjectStorage {
  if (config.storage.backend === 'filesystem') return new FilesystemStorage(config.storageDir);
  const s3 = config.storage.s3;
  return new S3Storage({
    endpoint: s3.endpoint!,
    bucket: s3.bucket!,
    region: s3.region,
    accessKeyId: s3.accessKeyId!,
    secretAccessKey: s3.secretAccessKey!,
    ...(s3.prefix ? { prefix: s3.prefix } : {}),
  });
}
