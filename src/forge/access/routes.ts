import { randomBytes } from 'node:crypto';
import websocket from '@fastify/websocket';
import { Type, type Static } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ProblemSchema, unavailable } from '../../platform/http/problem.js';
import { loadAccessAssets } from './assets.js';
import { accessBasePath, accessCookie } from './cookie.js';
import { AccessRefusedError, assertSameOrigin, authorizeAccess, liveScenario, verifyAccessToken, type AccessGrant } from './grant.js';
import { labPageCsp, REFUSAL_CSP, renderLabPage, renderRefusalPage } from './html.js';
import { accessLimits } from './limits.js';
import { CLOSE } from './protocol.js';
import type { RawData } from 'ws';
import type { EarlyFrame } from './terminal-session.js';
import { TerminalSessions } from './terminals.js';
import { topologySvg } from './topology.js';
import type { AccessDeps } from './types.js';

/** Route patterns of the learner's lab; each authenticates with the scenario access token (TOKEN_ROUTES). */
export const ACCESS_ROUTES = {
  page: '/v1/access/:scenario_id',
  asset: '/v1/access/:scenario_id/assets/:name',
  terminal: '/v1/access/:scenario_id/terminal/:device',
  status: '/v1/access/:scenario_id/status',
  extend: '/v1/access/:scenario_id/extend',
  submit: '/v1/access/:scenario_id/submit',
} as const;

const COOKIE_GRACE_S = 12 * 3600;

/** Messages a browser may send while its shell is starting (typing ahead); more is abuse. */
const MAX_EARLY_FRAMES = 256;

const ScenarioParam = Type.String({ pattern: '^scn_[A-Za-z0-9_-]{1,80}$' });
const DeviceParam = Type.String({ pattern: '^[a-z][a-z0-9-]{0,23}$' });
const errors = { 401: ProblemSchema, 403: ProblemSchema, 404: ProblemSchema, 409: ProblemSchema, 422: ProblemSchema, 503: ProblemSchema };

/** The lab page answers browsers: its refusals are HTML pages too (documentation only; see refusalPage). */
const LAB_PAGE_RESPONSES = {
  200: { description: 'The lab page: tasks, time left, topology and a terminal per device', contentType: 'text/html' },
  303: { description: 'The token was moved into the fg_access cookie; follow Location to the clean URL' },
  401: { description: 'A page saying the access link is missing, invalid, expired or already used', contentType: 'text/html' },
  403: { description: 'A page saying the access link is for another lab', contentType: 'text/html' },
  404: { description: 'A page saying the lab does not exist', contentType: 'text/html' },
  410: { description: 'A page saying the lab has ended', contentType: 'text/html' },
  503: { description: 'A page saying the lab is still being prepared (Refresh: 5)', contentType: 'text/html' },
} as const;

const ScoreSchema = Type.Object({
  total: Type.Number(),
  max: Type.Number(),
  graded_at: Type.String(),
  criteria: Type.Array(Type.Object({ id: Type.String(), description: Type.String(), points: Type.Number(), awarded: Type.Number(), status: Type.String() })),
});
const StatusSchema = Type.Object({
  scenario_id: Type.String(),
  state: Type.String(),
  expires_at: Type.String({ format: 'date-time' }),
  seconds_left: Type.Integer(),
  access_expires_at: Type.String({ format: 'date-time' }),
  grading: Type.Object({
    status: Type.Union([Type.Literal('unavailable'), Type.Literal('not_submitted'), Type.Literal('grading'), Type.Literal('scored'), Type.Literal('failed')]),
    error: Type.Optional(Type.String()),
    score: Type.Optional(ScoreSchema),
  }),
});

type GradingRun = { status: 'grading' } | { status: 'failed'; error: string };

export interface AccessModule {
  readonly plugin: FastifyPluginAsync;
  readonly terminals: TerminalSessions;
}

/** The learner's lab page, its terminals (WebSocket to a PTY in each device), extend and submit. */
export function createAccessModule(deps: AccessDeps): AccessModule {
  const limits = accessLimits(deps.limits);
  const now = deps.now ?? Date.now;
  const extendMinutes = deps.extendMinutes ?? 15;
  const terminals = new TerminalSessions({
    spawnShell: (s, d) => deps.runtime.spawnShell(s, d),
    storageDir: deps.storageDir,
    limits,
    ...(deps.onSession ? { onSession: deps.onSession } : {}),
    ...(deps.publishRecording
      ? {
          publishRecording: deps.publishRecording,
          onPublishError: (err: unknown, file: string) => deps.security?.warn({ err, file }, 'a terminal recording could not be copied to the evidence store'),
        }
      : {}),
  });
  /** Grading started by this process, until its score can be read. */
  const runs = new Map<string, GradingRun>();
  /** Grants checked before a WebSocket upgrade, read by its handler. */
  const upgradeGrants = new WeakMap<FastifyRequest, AccessGrant>();

  /** Runs a check, with every refusal in the security log (the reason, never the token). */
  const logged = async <T>(request: FastifyRequest, scenarioId: string, check: () => Promise<T>): Promise<T> => {
    try {
      return await check();
    } catch (err) {
      if (err instanceof AccessRefusedError) {
        deps.security?.warn(
          { type: 'access_refused', reason: err.reason, scenario_id: scenarioId, route: request.routeOptions.url, request_id: request.id, ip: request.ip },
          'learner access refused',
        );
      }
      throw err;
    }
  };
  const authorize = (request: FastifyRequest, scenarioId: string, urlToken: string | undefined): Promise<AccessGrant> =>
    logged(request, scenarioId, () => authorizeAccess(deps, request, scenarioId, urlToken));

  const refusalPage = (reply: FastifyReply, err: AccessRefusedError) => {
    reply.header('content-security-policy', REFUSAL_CSP);
    if (err.reason === 'lab_not_ready') reply.header('refresh', '5');
    return reply
      .code(err.pageStatus)
      .type('text/html; charset=utf-8')
      .send(renderRefusalPage({ heading: err.heading, message: err.detail, reason: err.reason, requestId: reply.request.id }));
  };

  const plugin: FastifyPluginAsync = async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    const assets = await loadAccessAssets();
    await app.register(websocket, { options: { maxPayload: limits.maxMessageBytes } });
    app.addHook('onClose', async () => terminals.closeAll('the server is shutting down'));

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
            // Out of the URL (history, logs, Referer) and into an HttpOnly cookie; then a clean URL,
            // whatever state the lab is in (a lab still being built is shown from the clean URL).
            // The cookie outlives its token by a while, so a learner coming back late is told the
            // access expired (the token inside is checked on every request), not that none was given.
            const maxAge = (verified.claims.expiresAt.getTime() - now()) / 1000 + COOKIE_GRACE_S;
            if (verified.fromUrl) reply.header('set-cookie', accessCookie(verified.token, scenarioId, maxAge, request.protocol === 'https'));
            return reply.code(303).header('location', accessBasePath(scenarioId)).send();
          }
          grant = { ...verified, scenario: await logged(request, scenarioId, () => liveScenario(deps, verified.claims, scenarioId)) };
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

    app.get(
      ACCESS_ROUTES.terminal,
      {
        websocket: true,
        config: {
          auth: 'token',
          openapiResponses: {
            101: {
              description:
                'Switching Protocols: a WebSocket to the shell (text frames in and out; a JSON resize message); closed with a reason when access ends',
            },
          },
        },
        schema: {
          tags: ['forge'],
          operationId: 'openLabTerminal',
          summary: 'WebSocket to a login shell in a device (checked on upgrade: token, scenario, device, origin)',
          security: [{ scenarioAccessCookie: [] }],
          params: Type.Object({ scenario_id: ScenarioParam, device: DeviceParam }),
          querystring: Type.Object({
            session: Type.Optional(Type.String({ pattern: '^term_[A-Za-z0-9_-]{10,40}$' })),
            cols: Type.Integer({ minimum: 2, maximum: 500, default: 80 }),
            rows: Type.Integer({ minimum: 1, maximum: 200, default: 24 }),
          }),
        },
        preValidation: async (request) => {
          const { scenario_id, device } = request.params as { scenario_id: string; device: string };
          assertSameOrigin(request, true);
          const grant = await authorize(request, scenario_id, undefined);
          if (!grant.scenario.devices.some((d) => d.name === device))
            throw new AccessRefusedError('unknown_device', `lab ${scenario_id} has no device ${device}`);
          upgradeGrants.set(request, grant);
        },
      },
      (socket, request) => {
        const grant = upgradeGrants.get(request)!;
        const { device } = request.params;
        const { session, cols, rows } = request.query;
        const accessEnds = setTimeout(
          () => socket.close(CLOSE.accessEnded, 'your access has expired; reload the page'),
          Math.max(0, grant.claims.expiresAt.getTime() - now()),
        );
        socket.once('close', () => clearTimeout(accessEnds));
        const owner = { scenarioId: grant.scenario.scenario_id, device, subject: grant.claims.subject };
        // Frames sent while the shell starts are kept (bounded by the socket's own limits) and handed over.
        const early: EarlyFrame[] = [];
        const keep = (data: RawData, isBinary: boolean) => {
          if (early.push([data, isBinary]) > MAX_EARLY_FRAMES) socket.close(CLOSE.policy, 'too many messages before the shell started');
        };
        socket.on('message', keep);
        terminals.open(owner, socket, { cols, rows }, session, early).then(
          (opened) => {
            socket.off('message', keep);
            if (!opened.ok) socket.close(opened.code, opened.reason);
          },
          (err: unknown) => {
            socket.off('message', keep);
            request.log.error({ err, scenario_id: owner.scenarioId, device }, 'could not start a learner shell');
            socket.close(CLOSE.internal, 'the shell could not be started');
          },
        );
      },
    );

    app.get(
      ACCESS_ROUTES.status,
      {
        config: { auth: 'token' },
        schema: {
          tags: ['forge'],
          operationId: 'getLabStatus',
          security: [{ scenarioAccessCookie: [] }],
          summary: 'Time left and grading progress of the lab',
          params: Type.Object({ scenario_id: ScenarioParam }),
          response: { 200: StatusSchema, ...errors },
        },
      },
      async (request) => {
        const grant = await authorize(request, request.params.scenario_id, undefined);
        const s = grant.scenario;
        return {
          scenario_id: s.scenario_id,
          state: s.state,
          expires_at: s.expires_at,
          seconds_left: Math.max(0, Math.floor((Date.parse(s.expires_at) - now()) / 1000)),
          access_expires_at: grant.claims.expiresAt.toISOString(),
          grading: await gradingStatus(grant),
        };
      },
    );

    app.post(
      ACCESS_ROUTES.extend,
      {
        config: { auth: 'token' },
        schema: {
          tags: ['forge'],
          operationId: 'extendLab',
          security: [{ scenarioAccessCookie: [] }],
          summary: `Extends the lab's time`,
          params: Type.Object({ scenario_id: ScenarioParam }),
          body: Type.Object({}, { additionalProperties: false }),
          response: { 200: Type.Object({ expires_at: Type.String({ format: 'date-time' }) }), ...errors },
        },
      },
      async (request) => {
        assertSameOrigin(request, false);
        const grant = await authorize(request, request.params.scenario_id, undefined);
        if (extendMinutes <= 0) throw new AppError('forbidden', 'extending labs is not allowed on this server');
        const extended = await deps.scenarios.extend(grant.claims.tenant, grant.scenario.scenario_id, extendMinutes);
        return { expires_at: extended.expires_at };
      },
    );

    app.post(
      ACCESS_ROUTES.submit,
      {
        config: { auth: 'token' },
        schema: {
          tags: ['forge'],
          operationId: 'submitLab',
          security: [{ scenarioAccessCookie: [] }],
          summary: 'Submits the lab for grading; poll status for the score',
          params: Type.Object({ scenario_id: ScenarioParam }),
          body: Type.Object({}, { additionalProperties: false }),
          response: { 202: Type.Object({ status: Type.Literal('grading') }), ...errors },
        },
      },
      async (request, reply) => {
        assertSameOrigin(request, false);
        const grant = await authorize(request, request.params.scenario_id, undefined);
        const grading = deps.grading;
        if (!grading) throw unavailable('grading is not available on this server');
        const id = grant.scenario.scenario_id;
        if (runs.get(id)?.status === 'grading') return reply.code(202).send({ status: 'grading' });
        // The recordings are part of the evidence: everything typed so far is on disk before grading packs it.
        await terminals.flushScenario(id);
        runs.set(id, { status: 'grading' });
        grading.complete(grant.claims.tenant, id, grant.claims.subject).then(
          () => runs.delete(id),
          (err: unknown) => {
            request.log.warn({ err, scenario_id: id }, 'grading failed');
            runs.set(id, { status: 'failed', error: err instanceof AppError ? err.detail : 'grading failed; try again or ask an instructor' });
          },
        );
        return reply.code(202).send({ status: 'grading' });
      },
    );
  };

  async function gradingStatus(grant: AccessGrant): Promise<Static<typeof StatusSchema>['grading']> {
    if (!deps.grading) return { status: 'unavailable' };
    const id = grant.scenario.scenario_id;
    const run = runs.get(id);
    if (run?.status === 'grading') return { status: 'grading' };
    const score = await deps.grading.score(grant.claims.tenant, id);
    if (score) return { status: 'scored', score: { ...score, criteria: score.criteria.map((c) => ({ ...c })) } };
    if (run?.status === 'failed') return { status: 'failed', error: run.error };
    return { status: grant.scenario.state === 'grading' ? 'grading' : 'not_submitted' };
  }

  return { plugin, terminals };
}
