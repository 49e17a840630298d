import { ConfigError, isProductionProfile, type Config } from '../../config/config.js';
import type { AuditTrail } from '../../ledger/audit.js';
import type { AppPlugin } from '../../platform/http/server.js';
import type { Platform } from '../../platform/platform.js';
import { createSessionAuthenticator, type SessionAuthenticator } from './authenticate.js';
import { defaultGroupMap, parseGroupMap, type GroupGrant } from './claims.js';
import { ConsoleSecrets } from './cookies.js';
import { startEmbeddedIdp, type DemoUser, type EmbeddedIdp } from './embedded-idp.js';
import { OidcGateway } from './oidc.js';
import { consoleRoutes } from './routes.js';
import { SessionStore, type Clock } from './session-store.js';

/** What `frostgate serve` prints once the console can sign people in. */
export interface ConsoleStarted {
  readonly consoleUrl: string;
  readonly loginUrl: string;
  readonly issuer: string;
  /** The embedded provider's people (dev and test only). */
  readonly demoUsers: readonly DemoUser[];
}

export interface ConsoleModule {
  readonly sessions: SessionStore;
  readonly authenticate: SessionAuthenticator;
  readonly secrets: ConsoleSecrets;
  readonly routes: AppPlugin;
  /** Binds sign-in to the address the server listens on (the embedded IdP starts here); call after listen. */
  start(baseUrl: string): Promise<ConsoleStarted>;
}

export interface ConsoleOptions {
  readonly audit?: AuditTrail;
  /** The clock sessions expire by (tests move it). */
  readonly now?: Clock;
}

/** The group map in force, or the reason the console cannot start. */
function groupGrants(config: Config): GroupGrant[] {
  try {
    return parseGroupMap(config.console.oidc.groupMap ?? defaultGroupMap(config.bootstrapTenant));
  } catch (err) {
    throw new ConfigError([(err as Error).message]);
  }
}

/**
 * The operators' console (roles all and admin): OpenID Connect sign-in, database sessions that
 * the auth gate turns into principals, CSRF tokens, and the pages, which drive the same HTTP API
 * keys do. Staging and prod refuse to serve it without a real IdP.
 */
export function createConsoleModule(platform: Pick<Platform, 'config' | 'db' | 'security' | 'log' | 'onClose'>, options: ConsoleOptions = {}): ConsoleModule {
  const { config } = platform;
  if (isProductionProfile(config.env) && !config.console.oidc.issuer)
    throw new ConfigError(['the admin console needs an OpenID Connect provider: set FG_OIDC_ISSUER (https), FG_OIDC_CLIENT_ID and FG_OIDC_CLIENT_SECRET']);
  const grants = groupGrants(config);
  const sessions = new SessionStore(platform.db, options.audit, config.console.idleMinutes * 60_000, options.now);
  const secrets = new ConsoleSecrets(config.secrets.sessionSecret);
  const authenticate = createSessionAuthenticator({ store: sessions, secrets, security: platform.security });
  let gateway: OidcGateway | undefined;
  let idp: EmbeddedIdp | undefined;
  platform.onClose(async () => idp?.close());
  const now = options.now ?? (() => new Date());

  return {
    sessions,
    authenticate,
    secrets,
    routes: {
      name: 'console',
      plugin: consoleRoutes({
        sessions,
        secrets,
        grants,
        groupsClaim: config.console.oidc.groupsClaim,
        gateway: () => gateway,
        security: platform.security,
        now,
        // The config refuses FG_DEV_AUTH_BYPASS outside dev; checked here again, where it takes effect.
        ...(config.auth.devBypass && config.env === 'dev'
          ? { devBypass: { tenantId: grants[0]!.tenant, subject: 'dev:bypass', name: 'Development bypass', email: '', scopes: grants[0]!.scopes } }
          : {}),
      }),
    },
    async start(baseUrl) {
      const redirectUri = config.console.oidc.redirectUrl ?? `${baseUrl}/auth/callback`;
      const devProfile = config.env === 'dev' || config.env === 'test';
      if (config.console.embeddedIdp) {
        idp = await startEmbeddedIdp({ redirectUri, group: grants[0]!.group });
        gateway = new OidcGateway({ issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, redirectUri, allowHttp: devProfile });
      } else if (config.console.oidc.issuer) {
        const { issuer, clientId, clientSecret } = config.console.oidc;
        gateway = new OidcGateway({ issuer, clientId: clientId!, clientSecret: clientSecret!, redirectUri, allowHttp: devProfile });
      }
      const issuer = gateway?.settings.issuer ?? 'none';
      platform.log.info({ issuer, redirect_uri: redirectUri, embedded: idp !== undefined }, 'console sign-in ready');
      return { consoleUrl: `${baseUrl}/console`, loginUrl: `${baseUrl}/login`, issuer, demoUsers: idp?.users ?? [] };
    },
  };
}
