import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../platform/http/problem.js';
import { ProblemSchema } from '../../platform/http/problem-schema.js';
import type { Logger } from '../../platform/log.js';
import { hasScope } from '../../platform/auth/scopes.js';
import { loadConsoleAssets, consolePage, CONSOLE_CSP } from './assets.js';
import { personFromClaims, type GroupGrant } from './claims.js';
import { ConsoleSecrets, SESSION_COOKIE, SIGN_IN_COOKIE, SIGN_IN_MAX_AGE_S, SIGN_IN_PATH, readCookie, setCookie } from './cookies.js';
import type { OidcGateway, PendingSignIn } from './oidc.js';
import { SESSION_MAX_AGE_MS, type SessionStore, type SignedInPerson } from './session-store.js';

export interface ConsoleRouteDeps {
  readonly sessions: SessionStore;
  readonly secrets: ConsoleSecrets;
  readonly grants: readonly GroupGrant[];
  readonly groupsClaim: string;
  /** Set once the server listens (ConsoleModule.start). */
  readonly gateway: () => OidcGateway | undefined;
  readonly security: Logger;
  readonly now: () => Date;
  /** FG_DEV_AUTH_BYPASS (dev only, the config refuses it elsewhere): /login signs this person in without an IdP. */
  readonly devBypass?: SignedInPerson;
}

const SessionInfoSchema = Type.Object({
  id: Type.String(),
  subject: Type.String({ description: 'the IdP subject, oidc:<sub>' }),
  name: Type.String(),
  email: Type.String(),
  scopes: Type.Array(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  last_seen_at: Type.String({ format: 'date-time' }),
  expires_at: Type.String({ format: 'date-time' }),
  revoked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  user_agent: Type.String(),
  ip: Type.String(),
});

const HTML_PAGE = { 200: { description: 'The console page (HTML)', contentType: 'text/html' }, 302: { description: 'Sign in first: to /login' } };
const REDIRECT = { 302: { description: 'Redirect' } };

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A sign-in that did not end in a session, told as a page a person reads (the browser is mid-redirect). */
function signInFailed(reply: FastifyReply, status: number, message: string): FastifyReply {
  reply.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'");
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in failed — FrostGate</title><style>body{font:15px system-ui,sans-serif;margin:10vh auto;max-width:36rem}</style></head>` +
        `<body><h1>Sign-in failed</h1><p role="alert">${escapeHtml(message)}</p><p>Request ${escapeHtml(reply.request.id)}. <a href="/login">Sign in again</a></p></body></html>`,
    );
}

const isTls = (request: FastifyRequest): boolean => request.protocol === 'https';

export function consoleRoutes(deps: ConsoleRouteDeps): FastifyPluginAsync {
  const { sessions, secrets } = deps;
  const sessionOf = (request: FastifyRequest) => {
    const p = request.principal;
    if (p?.kind !== 'session' || !p.sessionId || !p.tenantId) throw new AppError('forbidden', 'this route serves a console session, not an API key');
    return { ...p, sessionId: p.sessionId, tenantId: p.tenantId };
  };
  const openSession = async (request: FastifyRequest, reply: FastifyReply, person: SignedInPerson) => {
    const { secret } = await sessions.create(person, { userAgent: String(request.headers['user-agent'] ?? ''), ip: request.ip });
    reply.header('set-cookie', [
      setCookie(SESSION_COOKIE, secret, { path: '/', secure: isTls(request), maxAgeS: SESSION_MAX_AGE_MS / 1000 }),
      setCookie(SIGN_IN_COOKIE, '', { path: SIGN_IN_PATH, secure: isTls(request), maxAgeS: 0 }),
    ]);
    return reply.code(302).header('location', '/console').send();
  };

  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    const assets = await loadConsoleAssets();

    for (const url of ['/', '/admin']) {
      app.get(
        url,
        {
          config: { auth: 'sign_in', openapiResponses: REDIRECT },
          schema: {
            tags: ['console'],
            operationId: url === '/' ? 'consoleHome' : 'consoleAdminAlias',
            summary: 'Points the browser at the operators console (/console)',
          },
        },
        async (_request, reply) => reply.code(302).header('location', '/console').send(),
      );
    }

    app.get(
      '/login',
      {
        config: { auth: 'sign_in', openapiResponses: REDIRECT },
        schema: {
          tags: ['console'],
          operationId: 'consoleLogin',
          summary: "Starts an OpenID Connect sign-in (authorization code + PKCE): redirects to the IdP's login page",
        },
      },
      async (request, reply) => {
        if (deps.devBypass) {
          deps.security.warn(
            { type: 'auth_event', success: true, reason: 'dev_auth_bypass', request_id: request.id },
            'console sign-in bypassed (FG_DEV_AUTH_BYPASS, dev only)',
          );
          return openSession(request, reply, deps.devBypass);
        }
        const gateway = deps.gateway();
        if (!gateway) throw new AppError('unavailable', 'console sign-in has no OpenID provider: set FG_OIDC_ISSUER, or use the embedded one in dev');
        let begun;
        try {
          begun = await gateway.begin();
        } catch (err) {
          deps.security.error(
            { type: 'auth_event', reason: 'idp_unreachable', error: (err as Error).message, request_id: request.id },
            'OpenID provider unreachable',
          );
          throw new AppError('unavailable', `the OpenID provider ${gateway.settings.issuer} cannot be reached; retry shortly`, {}, { 'retry-after': '5' });
        }
        const sealed = secrets.seal(begun.pending, deps.now().getTime() + SIGN_IN_MAX_AGE_S * 1000);
        reply.header('set-cookie', setCookie(SIGN_IN_COOKIE, sealed, { path: SIGN_IN_PATH, secure: isTls(request), maxAgeS: SIGN_IN_MAX_AGE_S }));
        return reply.code(302).header('location', begun.url).send();
      },
    );

    app.get(
      SIGN_IN_PATH,
      {
        config: {
          auth: 'sign_in',
          openapiResponses: { ...REDIRECT, 400: { description: 'The sign-in failed (HTML page)', contentType: 'text/html' } },
        },
        schema: {
          tags: ['console'],
          operationId: 'consoleSignInCallback',
          summary: 'Where the IdP returns: redeems the code, maps the claims to a tenant and scopes, opens a session',
          querystring: Type.Object(
            {
              code: Type.Optional(Type.String({ maxLength: 4096 })),
              state: Type.Optional(Type.String({ maxLength: 1024 })),
              iss: Type.Optional(Type.String({ maxLength: 1024 })),
              error: Type.Optional(Type.String({ maxLength: 200 })),
              error_description: Type.Optional(Type.String({ maxLength: 2000 })),
            },
            { additionalProperties: true, description: "the IdP's answer (RFC 6749 4.1.2), checked by openid-client" },
          ),
        },
      },
      async (request, reply) => {
        const gateway = deps.gateway();
        const pending = secrets.unseal<PendingSignIn>(readCookie(request.headers.cookie, SIGN_IN_COOKIE), deps.now().getTime());
        if (!gateway || !pending) return signInFailed(reply, 400, 'This sign-in was not started here, or took longer than 10 minutes.');
        let claims: Record<string, unknown>;
        try {
          claims = await gateway.finish(new URL(request.url, gateway.settings.redirectUri), pending);
        } catch (err) {
          deps.security.warn(
            { type: 'auth_event', success: false, reason: 'oidc_callback', error: (err as Error).message, request_id: request.id },
            'console sign-in refused',
          );
          return signInFailed(reply, 400, `The identity provider's answer was refused: ${(err as Error).message}`);
        }
        const person = personFromClaims(claims, deps.groupsClaim, deps.grants);
        if ('reason' in person) {
          deps.security.warn(
            { type: 'auth_event', success: false, reason: `console_${person.reason}`, subject: claims.sub, request_id: request.id },
            'console sign-in refused by the group map',
          );
          return signInFailed(reply, 403, person.detail);
        }
        return openSession(request, reply, person);
      },
    );

    app.post(
      '/logout',
      {
        schema: {
          tags: ['console'],
          operationId: 'consoleLogout',
          summary: 'Ends this console session (revoked in the database) and clears its cookie',
          response: { 204: Type.Null(), 403: ProblemSchema },
        },
      },
      async (request, reply) => {
        const s = sessionOf(request);
        await sessions.revoke(s.tenantId, s.sessionId, s.subject, 'sign_out', s.subject);
        reply.header('set-cookie', setCookie(SESSION_COOKIE, '', { path: '/', secure: isTls(request), maxAgeS: 0 }));
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/console',
      {
        config: { auth: 'console_page', openapiResponses: HTML_PAGE },
        schema: { tags: ['console'], operationId: 'consolePage', summary: 'The operators console (one page; its views call this API with the session)' },
      },
      async (request, reply) => {
        if (!request.principal) return reply.code(302).header('location', '/login').send();
        reply.header('content-security-policy', CONSOLE_CSP).header('cache-control', 'no-store');
        return reply.type('text/html; charset=utf-8').send(consolePage());
      },
    );

    app.get(
      '/console/assets/:name',
      {
        config: {
          auth: 'console_page',
          openapiResponses: {
            200: { description: 'A script or stylesheet of the console (served by FrostGate, no CDN)', contentType: 'application/octet-stream' },
            302: { description: 'Sign in first: to /login' },
            304: { description: 'Not modified' },
          },
        },
        schema: {
          tags: ['console'],
          operationId: 'getConsoleAsset',
          summary: 'A static file of the console page',
          params: Type.Object({ name: Type.String({ maxLength: 64 }) }),
        },
      },
      async (request, reply) => {
        if (!request.principal) return reply.code(302).header('location', '/login').send();
        const asset = assets.get(request.params.name);
        if (!asset) throw new AppError('not_found', `no console asset ${request.params.name}`);
        reply.header('cache-control', 'private, no-cache').header('etag', asset.etag);
        if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
        return reply.type(asset.contentType).send(asset.body);
      },
    );

    app.get(
      '/console/session',
      {
        schema: {
          tags: ['console'],
          operationId: 'getConsoleSession',
          summary: "The signed-in person, their tenant and scopes, the session's limits and its CSRF token",
          response: {
            200: Type.Object({
              session_id: Type.String(),
              subject: Type.String(),
              tenant_id: Type.String(),
              scopes: Type.Array(Type.String()),
              csrf_token: Type.String({ description: 'send as X-CSRF-Token on every state-changing request' }),
            }),
            403: ProblemSchema,
          },
        },
      },
      async (request) => {
        const s = sessionOf(request);
        return { session_id: s.sessionId, subject: s.subject, tenant_id: s.tenantId, scopes: [...s.scopes], csrf_token: secrets.csrfToken(s.sessionId) };
      },
    );

    app.get(
      '/console/sessions',
      {
        schema: {
          tags: ['console'],
          operationId: 'listConsoleSessions',
          summary: "Open console sessions: the tenant's all with the admin scope, else the caller's own",
          response: { 200: Type.Object({ sessions: Type.Array(SessionInfoSchema), scope: Type.Union([Type.Literal('tenant'), Type.Literal('own')]) }) },
        },
      },
      async (request) => {
        const p = request.principal!;
        const tenant = p.tenantId;
        if (!tenant) throw new AppError('invalid_tenant', 'this request would land in no tenant: name one with the X-Tenant-Id header');
        const all = hasScope(p.scopes, 'admin');
        return { sessions: await sessions.list(tenant, all ? undefined : p.subject), scope: all ? ('tenant' as const) : ('own' as const) };
      },
    );

    app.delete(
      '/console/sessions/:id',
      {
        schema: {
          tags: ['console'],
          operationId: 'revokeConsoleSession',
          summary: "Revokes a console session: any of the tenant's with the admin scope, else one of the caller's own",
          params: Type.Object({ id: Type.String({ pattern: '^cs_[A-Za-z0-9_-]{16}$' }) }),
          response: { 204: Type.Null(), 404: ProblemSchema },
        },
      },
      async (request, reply) => {
        const p = request.principal!;
        const tenant = p.tenantId;
        if (!tenant) throw new AppError('invalid_tenant', 'this request would land in no tenant: name one with the X-Tenant-Id header');
        const actor = p.keyId ?? p.subject;
        await sessions.revoke(tenant, request.params.id, actor, 'revoked', hasScope(p.scopes, 'admin') ? undefined : p.subject);
        return reply.code(204).send(null);
      },
    );
  };
}
