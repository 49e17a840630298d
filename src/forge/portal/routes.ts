import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { BindTenant } from '../../platform/auth/tenant.js';
import { newId } from '../../platform/ids.js';
import { AppError, unavailable } from '../../platform/http/problem.js';
import { problemResponses } from '../../platform/http/problem-schema.js';
import type { Logger } from '../../platform/log.js';
import { assertSameOrigin } from '../access/grant.js';
import { readCookie } from '../access/cookie.js';
import { RESULT_FILES, sendResultFile } from '../access/result-files.js';
import { LAB_LIVE_STATES } from '../orchestrator/states.js';
import type { Scenario, ScenarioStore } from '../orchestrator/store.js';
import { accessUrl } from '../spawn/access.js';
import type { EntitlementService } from '../spawn/entitlements.js';
import type { SpawnService } from '../spawn/service.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import { TokenRefusedError, type ScenarioTokens } from '../tokens/scenario-tokens.js';
import type { Asset } from '../access/assets.js';
import { certificateView, type PortalScoring } from './certificate.js';
import { PORTAL_CSP, renderCertificatePage, renderPortalPage, renderSignInPage } from './html.js';
import { portalOverview } from './overview.js';
import {
  issuePortalLink,
  issuePortalSession,
  PORTAL_BASE,
  PORTAL_COOKIE,
  PORTAL_LINK_TTL_S,
  PORTAL_SESSION_TTL_S,
  portalCookie,
  portalLinkUrl,
  spendPortalLink,
  verifyPortalSession,
  type Learner,
} from './session.js';

/** Route patterns of the learner portal; all but `links` authenticate with the portal session (TOKEN_ROUTES). */
export const PORTAL_ROUTES = {
  page: PORTAL_BASE,
  asset: `${PORTAL_BASE}/assets/:name`,
  signIn: `${PORTAL_BASE}/sign-in`,
  signOut: `${PORTAL_BASE}/sign-out`,
  start: `${PORTAL_BASE}/labs`,
  enter: `${PORTAL_BASE}/labs/:scenario_id/enter`,
  results: `${PORTAL_BASE}/labs/:scenario_id/results/:name`,
  certificate: `${PORTAL_BASE}/labs/:scenario_id/certificate`,
  links: `${PORTAL_BASE}/links`,
} as const;

const ScenarioParam = Type.String({ pattern: '^scn_[A-Za-z0-9_-]{1,80}$' });
const Subject = Type.String({ pattern: '^[A-Za-z0-9._@:+-]{1,128}$', description: 'the learner' });
const errors = problemResponses(400, 401, 403, 404, 409, 429, 503);
const PAGE_RESPONSES = {
  200: { description: 'The portal (catalogue, my labs, progress) when signed in; else the sign-in page', contentType: 'text/html' },
  303: { description: 'A sign-in link was spent: the session is in the fg_portal cookie; follow Location to the clean URL' },
  401: { description: 'The sign-in page, saying why the sign-in link was refused', contentType: 'text/html' },
} as const;
const LabLink = Type.Object({
  scenario_id: Type.String(),
  access_url: Type.String({ description: 'a one-time access link to the lab page; the browser opens it at once' }),
});

export interface PortalDeps {
  readonly tokens: Pick<ScenarioTokens, 'issue' | 'verify'>;
  readonly spawn: Pick<SpawnService, 'spawn' | 'catalog'>;
  readonly entitlements: Pick<EntitlementService, 'verifyToken'>;
  readonly scenarios: Pick<ScenarioStore, 'get' | 'listForSubject'>;
  readonly templates: Pick<TemplateCatalog, 'get'>;
  /** The scoreboard in this process: scores, results and certificates (absent: labs without scores). */
  readonly scoring?: PortalScoring;
  readonly bindTenant: BindTenant;
  /** FG_PUBLIC_URL; undefined: links use the request's scheme and host. */
  readonly publicUrl: string | undefined;
  readonly assets: ReadonlyMap<string, Asset>;
  readonly security?: Pick<Logger, 'warn' | 'info'>;
}

/** The learner portal: sign-in, catalogue, "my labs" with re-entry and results, progress per track. */
export function portalRoutes(deps: PortalDeps): FastifyPluginAsync {
  const baseUrl = (request: FastifyRequest) => deps.publicUrl ?? `${request.protocol}://${request.host}`;
  const session = (request: FastifyRequest) => verifyPortalSession(deps.tokens, readCookie(request.headers.cookie, PORTAL_COOKIE));
  /** The signed-in learner, or 401 (for the JSON routes). */
  const learnerOf = async (request: FastifyRequest): Promise<Learner> => {
    const s = await session(request);
    if (!s) throw new AppError('unauthorized', 'sign in to the portal first: open your sign-in link or a lab access link, or use your entitlement token');
    return s;
  };
  const signIn = async (reply: FastifyReply, learner: Learner) => {
    const issued = await issuePortalSession(deps.tokens, learner);
    reply.header('set-cookie', portalCookie(issued.token, PORTAL_SESSION_TTL_S, reply.request.protocol === 'https'));
  };
  /** The learner's own scenario; another learner's (or tenant's) is not found, never revealed. */
  const ownLab = async (learner: Learner, scenarioId: string): Promise<Scenario> => {
    const s = await deps.scenarios.get(learner.tenant, scenarioId);
    if (s.subject !== learner.subject) throw new AppError('not_found', `scenario ${scenarioId} not found`);
    return s;
  };
  const html = (reply: FastifyReply, status: number, body: string) =>
    reply.code(status).header('content-security-policy', PORTAL_CSP).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(body);

  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      PORTAL_ROUTES.page,
      {
        config: { auth: 'token', openapiResponses: PAGE_RESPONSES },
        schema: {
          tags: ['forge'],
          operationId: 'openPortal',
          summary: 'The learner portal: catalogue, my labs (running, graded, expired) and progress; ?token= is a one-time sign-in link',
          security: [{ portalSignInLink: [] }, { portalSessionCookie: [] }],
          querystring: Type.Object({ token: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })) }),
        },
      },
      async (request, reply) => {
        if (request.query.token !== undefined) {
          try {
            await signIn(reply, await spendPortalLink(deps.tokens, request.query.token));
            return reply.code(303).header('location', PORTAL_BASE).send();
          } catch (err) {
            if (!(err instanceof TokenRefusedError)) throw err;
            deps.security?.warn({ type: 'portal_link_refused', reason: err.problem, request_id: request.id, ip: request.ip }, 'portal sign-in link refused');
            // A used link still lands in the portal when this browser is signed in already.
            if (await session(request)) return reply.code(303).header('location', PORTAL_BASE).send();
            const heading =
              err.problem === 'replayed'
                ? 'This sign-in link was already used'
                : err.problem === 'expired'
                  ? 'This sign-in link has expired'
                  : 'This sign-in link is not valid';
            return html(
              reply,
              401,
              renderSignInPage({ heading, message: 'Sign-in links work once, for 30 minutes. Ask for a new one, or sign in below.', reason: err.problem }),
            );
          }
        }
        const learner = await session(request);
        if (!learner) return html(reply, 200, renderSignInPage({ heading: 'Sign in to your labs' }));
        const overview = await portalOverview(
          {
            catalog: (t, s) => deps.spawn.catalog(t, s),
            labs: (t, s, n) => deps.scenarios.listForSubject(t, s, n),
            templates: deps.templates,
            ...(deps.scoring ? { scores: (t: string, s: string, n: number) => deps.scoring!.history(t, s, n) } : {}),
          },
          learner,
        );
        return html(reply, 200, renderPortalPage({ ...overview, gradingAvailable: deps.scoring !== undefined }));
      },
    );

    app.get(
      PORTAL_ROUTES.asset,
      {
        config: {
          auth: 'token',
          openapiResponses: { 200: { description: "The portal's script or stylesheet (static, no learner data)", contentType: 'application/octet-stream' } },
        },
        schema: {
          tags: ['forge'],
          operationId: 'getPortalAsset',
          security: [{ portalSessionCookie: [] }, {}],
          summary: 'A script or stylesheet of the portal (the sign-in page uses them before any session)',
          params: Type.Object({ name: Type.String({ maxLength: 64 }) }),
        },
      },
      async (request, reply) => {
        const asset = deps.assets.get(request.params.name);
        if (!asset) throw new AppError('not_found', `no asset ${request.params.name}`);
        reply.header('cache-control', 'public, max-age=300').header('etag', asset.etag);
        if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
        return reply.type(asset.contentType).send(asset.body);
      },
    );

    app.post(
      PORTAL_ROUTES.signIn,
      {
        config: { auth: 'token', rateLimitClass: 'write' },
        bodyLimit: 8192,
        schema: {
          tags: ['forge'],
          operationId: 'portalSignIn',
          // The credential is the entitlement token in the body (no OpenAPI scheme describes a body field).
          security: [{}],
          summary: "Signs this browser in as the learner an entitlement token names (the token stays in the browser's request, never in a URL)",
          body: Type.Object({ entitlement_token: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false }),
          response: { 200: Type.Object({ subject: Type.String() }), ...errors },
        },
      },
      async (request, reply) => {
        assertSameOrigin(request, false);
        let learner: Learner;
        try {
          const e = await deps.entitlements.verifyToken(request.body.entitlement_token.trim());
          learner = { tenant: e.tenant, subject: e.subject };
        } catch (err) {
          if (err instanceof AppError) {
            deps.security?.warn({ type: 'portal_sign_in_refused', detail: err.detail, request_id: request.id, ip: request.ip }, 'portal sign-in refused');
            throw new AppError('unauthorized', `${err.detail}; ask your training provider for a sign-in link`);
          }
          throw err;
        }
        await signIn(reply, learner);
        deps.security?.info(
          { type: 'portal_sign_in', tenant_id: learner.tenant, subject: learner.subject, request_id: request.id },
          'learner signed in to the portal',
        );
        return { subject: learner.subject };
      },
    );

    app.post(
      PORTAL_ROUTES.signOut,
      {
        config: { auth: 'token' },
        schema: {
          tags: ['forge'],
          operationId: 'portalSignOut',
          security: [{ portalSessionCookie: [] }],
          summary: 'Signs this browser out of the portal (lab sessions of open lab pages are kept)',
          body: Type.Optional(Type.Object({}, { additionalProperties: false })),
          response: { 204: Type.Null(), ...errors },
        },
      },
      async (request, reply) => {
        assertSameOrigin(request, false);
        return reply
          .code(204)
          .header('set-cookie', portalCookie('', 0, request.protocol === 'https'))
          .send(null);
      },
    );

    app.post(
      PORTAL_ROUTES.start,
      {
        config: { auth: 'token', rateLimitClass: 'write' },
        bodyLimit: 1024,
        schema: {
          tags: ['forge'],
          operationId: 'portalStartLab',
          security: [{ portalSessionCookie: [] }],
          summary: 'Starts a lab for the signed-in learner (the spawn path: entitlement, Cedar policy and quotas) and answers its one-time access link',
          body: Type.Object(
            { track: Type.String({ minLength: 1, maxLength: 64 }), template: Type.String({ pattern: '^[a-z][a-z0-9-]{2,63}$' }) },
            { additionalProperties: false },
          ),
          response: { 201: LabLink, ...errors },
        },
      },
      async (request, reply) => {
        assertSameOrigin(request, false);
        const learner = await learnerOf(request);
        const res = await deps.spawn.spawn(
          learner.tenant,
          { track: request.body.track, template: request.body.template, subject: learner.subject, requestId: newId('req'), clientId: 'portal' },
          { actor: `learner:${learner.subject}`, baseUrl: baseUrl(request) },
        );
        return reply.code(201).send({ scenario_id: res.scenario_id, access_url: res.access_url });
      },
    );

    app.post(
      PORTAL_ROUTES.enter,
      {
        config: { auth: 'token', rateLimitClass: 'write' },
        schema: {
          tags: ['forge'],
          operationId: 'portalEnterLab',
          security: [{ portalSessionCookie: [] }],
          summary: "A new one-time access link to one of the learner's labs that still runs (re-entry from another browser, or after the first link was used)",
          params: Type.Object({ scenario_id: ScenarioParam }),
          body: Type.Optional(Type.Object({}, { additionalProperties: false })),
          response: { 200: LabLink, ...errors },
        },
      },
      async (request) => {
        assertSameOrigin(request, false);
        const learner = await learnerOf(request);
        const s = await ownLab(learner, request.params.scenario_id);
        if (!LAB_LIVE_STATES.has(s.state) && s.state !== 'pending' && s.state !== 'provisioning')
          throw new AppError('conflict', `this lab is ${s.state}: its devices are gone; its results stay on the portal`, { reason: 'lab_ended' });
        const issued = await deps.tokens.issue('access', { tenant: learner.tenant, subject: learner.subject, scenarioId: s.scenario_id, track: s.track });
        deps.security?.info(
          { type: 'portal_lab_entered', tenant_id: learner.tenant, scenario_id: s.scenario_id, request_id: request.id },
          'access link issued from the portal',
        );
        return { scenario_id: s.scenario_id, access_url: accessUrl(baseUrl(request), s.scenario_id, issued.token) };
      },
    );

    app.get(
      PORTAL_ROUTES.results,
      {
        config: {
          auth: 'token',
          openapiResponses: { 200: { description: 'The file, as an attachment', contentType: 'application/octet-stream' } },
        },
        schema: {
          tags: ['forge'],
          operationId: 'portalDownloadResult',
          security: [{ portalSessionCookie: [] }],
          summary: "Downloads a result file of one of the learner's graded labs (also long after the lab has ended)",
          params: Type.Object({ scenario_id: ScenarioParam, name: Type.Union(['evidence', ...Object.keys(RESULT_FILES)].map((n) => Type.Literal(n))) }),
        },
      },
      async (request, reply) => {
        const learner = await learnerOf(request);
        const { scenario_id: scenarioId, name } = request.params;
        await ownLab(learner, scenarioId);
        if (!deps.scoring) throw unavailable('results are kept by the scoreboard, which this server does not run');
        const found = await deps.scoring.results(learner.tenant, scenarioId);
        if (!found) throw new AppError('not_found', `lab ${scenarioId} has no results: it was not graded`);
        return sendResultFile(reply, scenarioId, found, name);
      },
    );

    app.get(
      PORTAL_ROUTES.certificate,
      {
        config: { auth: 'token', openapiResponses: { 200: { description: 'The result summary page, with the verdict check', contentType: 'text/html' } } },
        schema: {
          tags: ['forge'],
          operationId: 'portalCertificate',
          security: [{ portalSessionCookie: [] }],
          summary: "A certificate-style summary of a graded lab: score, criteria, and the verdict's signature checked against the scoreboard's published keys",
          params: Type.Object({ scenario_id: ScenarioParam }),
        },
      },
      async (request, reply) => {
        const learner = await session(request);
        if (!learner) return html(reply, 401, renderSignInPage({ heading: 'Sign in to see this result', reason: 'missing_session' }));
        const s = await ownLab(learner, request.params.scenario_id);
        if (!deps.scoring) throw unavailable('results are kept by the scoreboard, which this server does not run');
        const view = await certificateView(deps.scoring, deps.templates, learner, s);
        if (!view) throw new AppError('not_found', `lab ${s.scenario_id} has no results: it was not graded`);
        return html(reply, 200, renderCertificatePage(view));
      },
    );

    app.post(
      PORTAL_ROUTES.links,
      {
        config: { scopes: ['forge:spawn'], rateLimitClass: 'write' },
        bodyLimit: 1024,
        schema: {
          tags: ['forge'],
          operationId: 'issuePortalLink',
          summary: 'A one-time sign-in link to the learner portal for a learner (your LMS or an operator hands it to them); it works once, for 30 minutes',
          body: Type.Object({ subject: Subject }, { additionalProperties: false }),
          response: { 201: Type.Object({ subject: Type.String(), portal_url: Type.String(), expires_at: Type.String({ format: 'date-time' }) }), ...errors },
        },
      },
      async (request, reply) => {
        const tenant = deps.bindTenant(request);
        const issued = await issuePortalLink(deps.tokens, { tenant, subject: request.body.subject });
        deps.security?.info(
          {
            type: 'portal_link_issued',
            tenant_id: tenant,
            subject: request.body.subject,
            key_id: request.principal?.keyId,
            ttl_s: PORTAL_LINK_TTL_S,
            request_id: request.id,
          },
          'portal sign-in link issued',
        );
        return reply
          .code(201)
          .send({ subject: request.body.subject, portal_url: portalLinkUrl(baseUrl(request), issued.token), expires_at: issued.expiresAt.toISOString() });
      },
    );
  };
}
