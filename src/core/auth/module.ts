import type { Platform } from '../../platform/platform.js';
import type { AppPlugin } from '../../platform/http/server.js';
import { createAuthGate, type GateDeps } from './gate.js';
import { KeyIndex, MAX_INDEXED_KEYS } from './key-index.js';
import { KEY_CACHE_TTL_MS, KeyResolver } from './key-resolver.js';
import { authRoutes } from './routes.js';
import { KeyStore, type KeyAudit } from './store.js';
import { createTenantBinder, type BindTenant } from '../../platform/auth/tenant.js';
import type { onRequestAsyncHookHandler } from 'fastify';

export interface AuthModule {
  readonly store: KeyStore;
  readonly resolver: KeyResolver;
  readonly gate: onRequestAsyncHookHandler;
  readonly bindTenant: BindTenant;
  readonly routes: AppPlugin;
}

export interface AuthModuleOptions {
  readonly invalidKeyGuard?: GateDeps['invalidKeyGuard'];
  readonly audit?: KeyAudit;
  readonly onFailOpen?: GateDeps['onFailOpen'];
  /** How long a looked-up key is trusted (the cross-node revocation bound); default KEY_CACHE_TTL_MS. */
  readonly keyCacheTtlMs?: number;
  /** Console sessions (src/core/console), resolved to principals by the same gate. */
  readonly sessions?: GateDeps['sessions'];
}

export function createAuthModule(
  platform: Pick<Platform, 'config' | 'db' | 'bus' | 'security' | 'metrics' | 'onClose'>,
  options: AuthModuleOptions = {},
): AuthModule {
  const store = new KeyStore(platform.db, options.audit, platform.security);
  const index = new KeyIndex(store, {
    onOverflow: (size) =>
      platform.security.error(
        { type: 'auth_event', reason: 'key_index_overflow', keys: size, max: MAX_INDEXED_KEYS },
        'too many keys to screen in memory; unknown key ids are looked up one by one again',
      ),
  });
  const resolver = new KeyResolver(store, platform.bus, options.keyCacheTtlMs ?? KEY_CACHE_TTL_MS, Date.now, index);
  platform.onClose(() => resolver.close());
  const bindTenant = createTenantBinder(platform);
  const gate = createAuthGate({
    config: platform.config,
    security: platform.security,
    metrics: platform.metrics,
    resolver,
    bindTenant,
    ...(options.invalidKeyGuard ? { invalidKeyGuard: options.invalidKeyGuard } : {}),
    ...(options.onFailOpen ? { onFailOpen: options.onFailOpen } : {}),
    ...(options.sessions ? { sessions: options.sessions } : {}),
  });
  return {
    store,
    resolver,
    gate,
    bindTenant,
    routes: { name: 'auth', plugin: authRoutes({ store, resolver, bindTenant, bus: platform.bus, platformTenant: platform.config.bootstrapTenant }) },
  };
}
