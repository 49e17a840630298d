import type { Platform } from '../../platform/platform.js';
import type { AppPlugin } from '../../platform/http/server.js';
import { createAuthGate, type GateDeps } from './gate.js';
import { KeyResolver } from './key-resolver.js';
import { authRoutes } from './routes.js';
import { KeyStore, type KeyAudit } from './store.js';
import { createTenantBinder, type BindTenant } from './tenant.js';
import type { onRequestAsyncHookHandler } from 'fastify';

export { bindTenantToContext } from '../../platform/context.js';
export type { Principal } from './principal.js';
export type { BindTenant } from './tenant.js';
export { KeyStore } from './store.js';
export { SCOPES, parseScopes, type Scope } from './scopes.js';
export { ensureBootstrapAdmin } from './bootstrap.js';

export interface AuthModule {
  readonly store: KeyStore;
  readonly resolver: KeyResolver;
  readonly gate: onRequestAsyncHookHandler;
  readonly bindTenant: BindTenant;
  readonly routes: AppPlugin;
}

export function createAuthModule(platform: Pick<Platform, 'config' | 'db' | 'bus' | 'security' | 'metrics' | 'onClose'>, options: { invalidKeyGuard?: GateDeps['invalidKeyGuard']; audit?: KeyAudit; onFailOpen?: GateDeps['onFailOpen'] } = {}): AuthModule {
  const store = new KeyStore(platform.db, options.audit);
  const resolver = new KeyResolver(store, platform.bus);
  platform.onClose(() => resolver.close());
  const bindTenant = createTenantBinder(platform);
  const gate = createAuthGate({ config: platform.config, security: platform.security, metrics: platform.metrics, resolver, bindTenant, ...(options.invalidKeyGuard ? { invalidKeyGuard: options.invalidKeyGuard } : {}), ...(options.onFailOpen ? { onFailOpen: options.onFailOpen } : {}) });
  return { store, resolver, gate, bindTenant, routes: { name: 'auth', plugin: authRoutes({ store, resolver, bindTenant, bus: platform.bus }) } };
}
