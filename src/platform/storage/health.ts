import { randomBytes } from 'node:crypto';
import type { HealthCheck } from '../health.js';
import type { ObjectStorage } from './types.js';

/**
 * Readiness of object storage: a small object written, read back and deleted under `health/`,
 * so a read-only or full filesystem, or an unreachable bucket or bad credentials, make the role
 * not ready instead of failing the first grading.
 */
export function storageHealth(storage: ObjectStorage): HealthCheck {
  return {
    name: 'storage',
    check: async () => {
      const key = `health/ready-${randomBytes(6).toString('hex')}`;
      const body = Buffer.from(key);
      await storage.put(key, body);
      try {
        const back = await storage.get(key);
        if (!back?.equals(body)) throw new Error(`${storage.locate(key)} did not read back what was written`);
      } finally {
        await storage.delete(key);
      }
      return { kind: storage.kind, writable: true };
    },
  };
}
