import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { AppError } from '../../platform/http/problem.js';
import { accessBasePath } from './cookie.js';
import { AccessRefusedError, liveScenario, verifyAccessToken, type AccessGrant } from './grant.js';
import { labPageCsp, renderLabPage } from './html.js';
import { describeLimits } from '../runtime/spec.js';
import { templateLimits } from '../templates/to-spec.js';
import { topologySvg } from './topology.js';
import { pageHints, pageQuestions } from './questions.js';
import { issuePortalSession, PORTAL_SESSION_TTL_S, portalCookie } from '../portal/session.js';

import type { AccessApp, AccessContext } from './context.js';
import type { Asset } from './assets.js';
import { ACCESS_ROUTES, LAB_PAGE_RESPONSES, ScenarioParam } from './route-schemas.js';

/** The lab page (the access link's landing, opening the lab session) and its static assets. */
export function registerPageRoutes(app: AccessApp, ctx: AccessContext, assets: ReadonlyMap<string, Asset>): void {
  const { deps, extendMinutes, hintLedger, logged, authorize, refusalPage, labEnd, openSession, renewSession } = ctx;
  app.get(
    ACCESS_ROUTES.page,
    {
      config: { auth: 'token', openapiResponses: LAB_PAGE_RESPONSES },
      schema: {
        tags: ['forge'],
        operationId: 'openLabPage',
        summary: "The learner's lab page; ?token= on first load moves into a cookie and the URL is cleaned",
        security: [{ scenarioAccessToken: [] }, { scenarioAccessCookie: [] }],
        params: Type.Object({ scenario_id: ScenarioParam }),
        querystring: Type.Object({ token: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })) }),
      },
    },
    async (request, reply) => {
      const scenarioId = request.params.scenario_id;
      let grant: AccessGrant;
      try {
        const verified = await logged(request, scenarioId, () => verifyAccessToken(deps, request, scenarioId, request.query.token));
        if (request.query.token !== undefined) {
          // The one-time link opens a lab session: out of the URL (history, logs, Referer) and into
          // an HttpOnly cookie that lives as long as the lab; then a clean URL, whatever state the
          // lab is in (a lab still being built is shown from the clean URL).
          if (verified.fromUrl) {
            await openSession(reply, verified.claims, await labEnd(verified.claims));
            // The link signs the browser in to the learner portal too ("my labs", results, the next lab).
            const portal = await issuePortalSession(deps.tokens, { tenant: verified.claims.tenant, subject: verified.claims.subject });
            reply.header('set-cookie', portalCookie(portal.token, PORTAL_SESSION_TTL_S, request.protocol === 'https'));
          }
          return reply.code(303).header('location', accessBasePath(scenarioId)).send();
        }
        grant = { ...verified, scenario: await logged(request, scenarioId, () => liveScenario(deps, verified.claims, scenarioId)) };
        await renewSession(reply, grant);
      } catch (err) {
        if (err instanceof AccessRefusedError) return refusalPage(reply, err);
        throw err;
      }
      const s = grant.scenario;
      const template = deps.templates.get(s.template_id, s.template_version);
      const nonce = randomBytes(16).toString('base64');
      const networks = template ? template.topology.networks.map((n) => ({ name: n.name, cidr: n.cidr })) : [];
      reply.header('content-security-policy', labPageCsp(nonce));
      return reply.type('text/html; charset=utf-8').send(
        renderLabPage({
          scenarioId,
          title: template?.title ?? s.template_id,
          track: s.track,
          description: template?.description,
          tasks: template?.tasks ?? [],
          devices: s.devices,
          networks,
          expiresAt: s.expires_at,
          accessExpiresAt: grant.claims.expiresAt.toISOString(),
          extendMinutes,
          gradingAvailable: deps.grading !== undefined,
          basePath: accessBasePath(scenarioId),
          assetBase: `${accessBasePath(scenarioId)}/assets`,
          styleNonce: nonce,
          topologySvg: topologySvg(s.devices, networks),
          questions: template ? pageQuestions(template) : [],
          hints: template ? pageHints(template, await hintLedger.unlocked(scenarioId)) : [],
          canEnd: deps.scenarios.destroy !== undefined,
          limits: template ? describeLimits(templateLimits(template)) : undefined,
        }),
      );
    },
  );

  app.get(
    ACCESS_ROUTES.asset,
    {
      config: {
        auth: 'token',
        openapiResponses: {
          200: { description: "A static asset of the lab page (the terminal's script and styles)", contentType: 'application/octet-stream' },
          304: { description: 'Not modified (If-None-Match matched its ETag)' },
        },
      },
      schema: {
        tags: ['forge'],
        operationId: 'getLabAsset',
        summary: "A script or stylesheet of the lab page, for the learner holding the lab's access cookie",
        security: [{ scenarioAccessCookie: [] }],
        params: Type.Object({ scenario_id: ScenarioParam, name: Type.String({ maxLength: 64 }) }),
      },
    },
    async (request, reply) => {
      await authorize(request, request.params.scenario_id, undefined);
      const asset = assets.get(request.params.name);
      if (!asset) throw new AppError('not_found', `no asset ${request.params.name}`);
      reply.header('cache-control', 'private, max-age=300').header('etag', asset.etag);
      if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
      return reply.type(asset.contentType).send(asset.body);
    },
  );
}
