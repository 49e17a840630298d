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
import { describeLimits } from '../runtime/spec.js';
import { templateLimits } from '../templates/to-spec.js';
import { topologySvg } from './topology.js';
import { HintLedger, pageHints, pageQuestions } from './questions.js';
import { ExtensionLog } from './extensions.js';
import { extendAuthorizationRequest } from '../../policy/requests.js';
import type { AccessDeps } from './types.js';
import { LAB_LIVE_STATES } from '../orchestrator/states.js';
import { issuePortalSession, PORTAL_BASE, PORTAL_SESSION_TTL_S, portalCookie } from '../portal/session.js';

/** Route patterns of the learner's lab; each authenticates with the scenario access token (TOKEN_ROUTES). */
export const ACCESS_ROUTES = {
  page: '/v1/access/:scenario_id',
  asset: '/v1/access/:scenario_id/assets/:name',
  terminal: '/v1/access/:scenario_id/terminal/:device',
  status: '/v1/access/:scenario_id/status',
  extend: '/v1/access/:scenario_id/extend',
  submit: '/v1/access/:scenario_id/submit',
  hints: '/v1/access/:scenario_id/hints',
  end: '/v1/access/:scenario_id/end',
  results: '/v1/access/:scenario_id/results/:name',
} as const;

/** The result files a learner downloads, each with the media type it is served as. */
const RESULT_FILES: Readonly<Record<string, string>> = {
  'score.json': 'application/json',
  'evidence.tar.zst': 'application/zstd',
  'evidence.tar.gz': 'application/gzip',
  'verdict.sig': 'application/json',
  'verdict.pub': 'application/x-pem-file',
};

/**
 * A lab session outlives its lab by this much, for the results downloads only: every lab route
 * (terminals, extend, submit, the page) refuses it as soon as the lab is no longer live.
 */
const SESSION_AFTER_LAB_S = 24 * 3600;
/** A session is renewed (quietly, a new cookie on a status poll) when it would end this much before it should. */
const SESSION_RENEW_MARGIN_S = 15 * 60;

/** Refusals after which the learner portal is where to go next. */
const PORTAL_REASONS: ReadonlySet<string> = new Set(['replayed', 'expired', 'missing_token', 'lab_ended', 'unknown_lab']);

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

const SubmitBody = Type.Object(
  {
    answers: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_-]{0,63}$' }), Type.Unknown(), {
        maxProperties: 64,
        description: 'criterion id -> the answer (answer criteria: text; quiz criteria: question id -> choice index(es), or left item -> right item)',
      }),
    ),
  },
  { additionalProperties: false },
);
const HintBody = Type.Object(
  { criterion: Type.String({ pattern: '^[a-z][a-z0-9_-]{0,63}$' }), index: Type.Integer({ minimum: 0, maximum: 20 }) },
  { additionalProperties: false },
);

const ScoreSchema = Type.Object({
  total: Type.Number(),
  max: Type.Number(),
  graded_at: Type.String(),
  evidence: Type.Optional(Type.String({ description: 'the evidence archive file name, for the results download' })),
  criteria: Type.Array(Type.Object({ id: Type.String(), description: Type.String(), points: Type.Number(), awarded: Type.Number(), status: Type.String() })),
});
const StatusSchema = Type.Object({
  scenario_id: Type.String(),
  state: Type.String(),
  expires_at: Type.String({ format: 'date-time' }),
  seconds_left: Type.Integer(),
  access_expires_at: Type.String({ format: 'date-time', description: "when this browser's lab session ends (renewed as the lab is extended)" }),
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
  const hintLedger = new HintLedger(deps.storageDir);
  const extensions = new ExtensionLog(deps.storageDir);
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
      .send(
        renderRefusalPage({
          heading: err.heading,
          message: err.detail,
          reason: err.reason,
          requestId: reply.request.id,
          // A used, expired or missing link is not a dead end: the portal re-enters a running lab and keeps results.
          ...(PORTAL_REASONS.has(err.reason) ? { next: { href: PORTAL_BASE, text: 'Go to my labs' } } : {}),
        }),
      );
  };

  /** When the scenario's lab ends; a scenario not readable yet counts as ending an access link's life from now. */
  const labEnd = async (claims: AccessGrant['claims']): Promise<number> => {
    const s = await deps.scenarios.get(claims.tenant, claims.scenarioId).catch(() => undefined);
    return s ? Date.parse(s.expires_at) : now() + 30 * 60_000;
  };
  /** Issues the lab session (until the lab's end, plus the results window) into the cookie. */
  const openSession = async (reply: FastifyReply, claims: AccessGrant['claims'], labEndsAt: number): Promise<void> => {
    const ttlS = Math.max(60, Math.ceil((labEndsAt - now()) / 1000) + SESSION_AFTER_LAB_S);
    const { tenant, subject, scenarioId, track } = claims;
    const session = await deps.tokens.issue('session', { tenant, subject, scenarioId, track }, ttlS);
    reply.header('set-cookie', accessCookie(session.token, scenarioId, ttlS, reply.request.protocol === 'https'));
  };
  /** Extends the session when the lab was extended past what it covers (or it came from an old cookie). */
  const renewSession = async (reply: FastifyReply, grant: AccessGrant): Promise<void> => {
    const shouldEnd = Date.parse(grant.scenario.expires_at) + SESSION_AFTER_LAB_S * 1000;
    if (grant.claims.expiresAt.getTime() < shouldEnd - SESSION_RENEW_MARGIN_S * 1000)
      await openSession(reply, grant.claims, Date.parse(grant.scenario.expires_at));
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
          const { scenario_id, device } = request.params;
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
        // The shell lives as long as the lab: at its end the lab is read again (it may have been
        // extended meanwhile, in this tab or another) and the socket closes only if it is over.
        let accessEnds: NodeJS.Timeout | undefined;
        const watchLabEnd = (endsAt: number) => {
          accessEnds = setTimeout(
            () => {
              deps.scenarios.get(grant.claims.tenant, grant.scenario.scenario_id).then(
                (s) => {
                  const later = Date.parse(s.expires_at);
                  if (LAB_LIVE_STATES.has(s.state) && later > now()) watchLabEnd(later);
                  else socket.close(CLOSE.labGone, 'the lab has ended; reload the page');
                },
                () => socket.close(CLOSE.labGone, 'the lab has ended; reload the page'),
              );
            },
            Math.min(2 ** 31 - 1, Math.max(0, endsAt - now())),
          );
        };
        watchLabEnd(Math.min(Date.parse(grant.scenario.expires_at), grant.claims.expiresAt.getTime()));
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
      async (request, reply) => {
        const grant = await authorize(request, request.params.scenario_id, undefined);
        await renewSession(reply, grant);
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
          summary:
            "Extends the lab's time, as often as the extension gate allows (policies/extend.cedar: the template's max_extensions, else its tier's default); each extension is audited",
          params: Type.Object({ scenario_id: ScenarioParam }),
          body: Type.Object({}, { additionalProperties: false }),
          response: { 200: Type.Object({ expires_at: Type.String({ format: 'date-time' }) }), ...errors },
        },
      },
      async (request, reply) => {
        assertSameOrigin(request, false);
        const grant = await authorize(request, request.params.scenario_id, undefined);
        if (extendMinutes <= 0) throw new AppError('forbidden', 'extending labs is not allowed on this server');
        const s = grant.scenario;
        const extended = await extensions.serialized(s.scenario_id, async () => {
          const taken = (await extensions.list(s.scenario_id)).length;
          const template = deps.templates.get(s.template_id, s.template_version);
          if (deps.policy && template) {
            const decision = deps.policy.authorize(
              extendAuthorizationRequest({
                subject: grant.claims.subject,
                template: {
                  id: template.id,
                  track: template.track,
                  tier: template.tier,
                  ...(template.max_extensions !== undefined ? { maxExtensions: template.max_extensions } : {}),
                },
                extensionsTaken: taken,
              }),
            );
            if (decision.decision !== 'allow') {
              deps.security?.warn(
                {
                  type: 'extend_refused',
                  scenario_id: s.scenario_id,
                  tenant_id: grant.claims.tenant,
                  reasons: decision.reasons,
                  taken,
                  request_id: request.id,
                },
                'lab extension refused by policy',
              );
              throw new AppError(
                'forbidden',
                `this lab cannot be extended again (extended ${taken} time${taken === 1 ? '' : 's'}, the most it allows); submit or end it before its time runs out`,
                {
                  reason: 'extension_limit',
                  reasons: [...decision.reasons],
                  extensions_taken: taken,
                },
              );
            }
          }
          const done = await deps.scenarios.extend(grant.claims.tenant, s.scenario_id, extendMinutes);
          await extensions.append(s.scenario_id, {
            at: new Date(now()).toISOString(),
            subject: grant.claims.subject,
            minutes: extendMinutes,
            expires_at: done.expires_at,
          });
          await deps.audit?.(grant.claims.tenant, {
            action: 'scenario.extended',
            actor: `learner:${grant.claims.subject}`,
            target: s.scenario_id,
            details: { minutes: extendMinutes, extension: taken + 1, expires_at: done.expires_at },
          });
          return done;
        });
        await renewSession(reply, { ...grant, scenario: extended });
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
          summary: "Submits the lab for grading with the learner's answers (the hints unlocked are added by the server); poll status for the score",
          params: Type.Object({ scenario_id: ScenarioParam }),
          body: SubmitBody,
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
        const given = { answers: request.body.answers ?? {}, hintsUsed: await hintLedger.unlocked(id) };
        grading.complete(grant.claims.tenant, id, grant.claims.subject, given).then(
          () => runs.delete(id),
          (err: unknown) => {
            request.log.warn({ err, scenario_id: id }, 'grading failed');
            runs.set(id, { status: 'failed', error: err instanceof AppError ? err.detail : 'grading failed; try again or ask an instructor' });
          },
        );
        return reply.code(202).send({ status: 'grading' });
      },
    );

    app.post(
      ACCESS_ROUTES.hints,
      {
        config: { auth: 'token' },
        schema: {
          tags: ['forge'],
          operationId: 'unlockLabHint',
          security: [{ scenarioAccessCookie: [] }],
          summary: "Reveals a criterion's hint; its penalty is taken from that criterion when graded, and the unlock is kept for the evidence",
          params: Type.Object({ scenario_id: ScenarioParam }),
          body: HintBody,
          response: {
            200: Type.Object({ criterion: Type.String(), index: Type.Integer(), text: Type.String(), penalty: Type.Integer() }),
            ...errors,
          },
        },
      },
      async (request) => {
        assertSameOrigin(request, false);
        const grant = await authorize(request, request.params.scenario_id, undefined);
        const s = grant.scenario;
        const template = deps.templates.get(s.template_id, s.template_version);
        const { criterion, index } = request.body;
        const hint = template?.successCriteria.find((c) => c.id === criterion)?.hints?.[index];
        if (!hint) throw new AppError('not_found', `criterion ${criterion} has no hint ${index}`);
        if (s.state !== 'running') throw new AppError('conflict', `the lab is ${s.state}: hints can be unlocked while it runs`, { reason: 'lab_not_running' });
        const penalty = hint.penalty ?? 0;
        await hintLedger.unlock(s.scenario_id, { criterion, index, penalty, at: new Date(now()).toISOString(), subject: grant.claims.subject });
        deps.security?.info(
          { type: 'hint_unlocked', scenario_id: s.scenario_id, tenant_id: grant.claims.tenant, criterion, index, penalty, request_id: request.id },
          'hint unlocked',
        );
        return { criterion, index, text: hint.text, penalty };
      },
    );

    app.get(
      ACCESS_ROUTES.results,
      {
        config: {
          auth: 'token',
          openapiResponses: {
            200: {
              description: 'The file, as an attachment (score.json, the evidence archive, verdict.sig or verdict.pub)',
              contentType: 'application/octet-stream',
            },
          },
        },
        schema: {
          tags: ['forge'],
          operationId: 'downloadLabResult',
          security: [{ scenarioAccessCookie: [] }],
          summary:
            "Downloads one of the graded lab's result files with the lab session, also after the lab has ended (verify them with frostgate verify-verdict)",
          params: Type.Object({ scenario_id: ScenarioParam, name: Type.Union(Object.keys(RESULT_FILES).map((n) => Type.Literal(n))) }),
        },
      },
      async (request, reply) => {
        const { scenario_id: scenarioId, name } = request.params;
        // The session, not the lab: results stay downloadable after the lab's devices are gone.
        const { claims } = await logged(request, scenarioId, () => verifyAccessToken(deps, request, scenarioId, undefined));
        if (!deps.grading) throw unavailable('grading is not available on this server');
        const found = await deps.grading.results(claims.tenant, scenarioId);
        if (!found) throw new AppError('not_found', `lab ${scenarioId} has no results yet: submit it, or end it, to have it graded`);
        const bytes =
          name === 'score.json'
            ? found.score
            : name === 'verdict.sig'
              ? found.sig
              : name === 'verdict.pub'
                ? found.pub
                : name === found.evidenceName
                  ? found.evidence
                  : undefined;
        if (!bytes) throw new AppError('not_found', `this lab's evidence is ${found.evidenceName}`);
        return reply
          .header('content-disposition', `attachment; filename="${scenarioId}-${name}"`)
          .header('cache-control', 'private, no-store')
          .type(RESULT_FILES[name]!)
          .send(bytes);
      },
    );

    app.post(
      ACCESS_ROUTES.end,
      {
        config: { auth: 'token' },
        schema: {
          tags: ['forge'],
          operationId: 'endLab',
          security: [{ scenarioAccessCookie: [] }],
          summary: "Ends the lab now: grades it first if it was not graded (with the answers given), then removes its devices and frees the learner's lab slot",
          params: Type.Object({ scenario_id: ScenarioParam }),
          body: SubmitBody,
          response: {
            200: Type.Object({ state: Type.String(), score: Type.Optional(ScoreSchema), grading_error: Type.Optional(Type.String()) }),
            ...errors,
          },
        },
      },
      async (request) => {
        assertSameOrigin(request, false);
        const grant = await authorize(request, request.params.scenario_id, undefined);
        const destroy = deps.scenarios.destroy;
        if (!destroy) throw unavailable('ending labs needs the orchestrator in this process');
        const id = grant.scenario.scenario_id;
        let gradingError: string | undefined;
        if (deps.grading && grant.scenario.state === 'running' && runs.get(id)?.status !== 'grading') {
          await terminals.flushScenario(id);
          runs.set(id, { status: 'grading' });
          try {
            await deps.grading.complete(grant.claims.tenant, id, grant.claims.subject, {
              answers: request.body.answers ?? {},
              hintsUsed: await hintLedger.unlocked(id),
            });
          } catch (err) {
            request.log.warn({ err, scenario_id: id }, 'grading at end of lab failed');
            gradingError = err instanceof AppError ? err.detail : 'grading failed';
          } finally {
            runs.delete(id);
          }
        }
        const score = deps.grading ? await deps.grading.score(grant.claims.tenant, id) : undefined;
        await terminals.endScenario(id, CLOSE.labGone, 'the lab has ended');
        const ended = await destroy.call(deps.scenarios, grant.claims.tenant, id);
        await deps.audit?.(grant.claims.tenant, {
          action: 'scenario.ended',
          actor: `learner:${grant.claims.subject}`,
          target: id,
          details: { graded: score !== undefined, ...(score ? { total: score.total, max: score.max } : {}) },
        });
        deps.security?.info(
          { type: 'lab_ended', scenario_id: id, tenant_id: grant.claims.tenant, subject: grant.claims.subject, request_id: request.id },
          'learner ended the lab',
        );
        return {
          state: ended.state,
          ...(score ? { score: { ...score, criteria: score.criteria.map((c) => ({ ...c })) } } : {}),
          ...(gradingError ? { grading_error: gradingError } : {}),
        };
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
