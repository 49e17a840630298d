import { Type } from '@sinclair/typebox';
import { actorOf } from '../../platform/auth/principal.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { BindTenant } from '../../platform/auth/tenant.js';
import { ProblemSchema, problemResponses } from '../../platform/http/problem-schema.js';
import { TRACKS } from '../templates/schema.js';
import { bestAttempt, type ScoringService } from './service.js';

const ScenarioIdParam = Type.String({ pattern: '^scn_[A-Za-z0-9_]{8,100}$' });
const TrackSchema = Type.Union(TRACKS.map((t) => Type.Literal(t)));

const CriterionScoreSchema = Type.Object({
  id: Type.String(),
  description: Type.String(),
  status: Type.Union([Type.Literal('passed'), Type.Literal('failed'), Type.Literal('skipped'), Type.Literal('error')]),
  points: Type.Integer(),
  awarded: Type.Integer(),
  penalty: Type.Integer(),
  hints_used: Type.Array(Type.Integer()),
  depends_on: Type.Array(Type.String()),
  detail: Type.String(),
  check: Type.Union([Type.String(), Type.Null()]),
  attempts: Type.Integer(),
});

/** score.json as served (the stored canonical bytes are what the verdict signs). */
export const ScoreDocumentSchema = Type.Object({
  v: Type.Literal(1),
  type: Type.Literal('frostgate.forge.score'),
  scenario_id: Type.String(),
  tenant_id: Type.String(),
  template: Type.Object({ id: Type.String(), version: Type.String() }),
  track: Type.String(),
  subject: Type.String(),
  reason: Type.String(),
  criteria: Type.Array(CriterionScoreSchema),
  total: Type.Integer(),
  max: Type.Integer(),
  percent: Type.Number(),
  graded_at: Type.String({ format: 'date-time' }),
  evidence: Type.String(),
});

const GradedSchema = Type.Object({
  scenario_id: Type.String(),
  graded: Type.Boolean({ description: 'false when the scenario had been graded before: the stored artefacts are returned unchanged' }),
  key_id: Type.String({ description: 'verdict signing key id' }),
  attempt: Type.Integer({
    minimum: 1,
    description: 'which graded attempt this is: a reset of a graded scenario starts the next, each with its own files and verdict',
  }),
  artefacts: Type.Record(Type.String(), Type.String(), { description: 'file name -> storage location' }),
  score: ScoreDocumentSchema,
});

const ScoreRowSchema = Type.Object({
  scenario_id: Type.String(),
  attempt: Type.Integer({ minimum: 1 }),
  template_id: Type.String(),
  template_version: Type.String(),
  track: Type.String(),
  subject: Type.String(),
  total: Type.Integer(),
  max: Type.Integer(),
  percent: Type.Number(),
  graded_at: Type.String({ format: 'date-time' }),
});

const VerdictKeySetSchema = Type.Object({
  v: Type.Literal(1),
  type: Type.Literal('frostgate.forge.verdict-keys'),
  updated_at: Type.String({ format: 'date-time' }),
  keys: Type.Array(
    Type.Object({
      key_id: Type.String({ description: 'first 8 bytes, hex, of SHA-256 of the raw public key; verdict.sig names it' }),
      fingerprint_sha256: Type.String({ description: 'SHA-256, hex, of the raw public key: the full-strength pin' }),
      status: Type.Union([Type.Literal('current'), Type.Literal('retired')]),
      valid_from: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'null: in use before the key set was first written' }),
      valid_until: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'null: the current key' }),
      public_key: Type.String({ description: 'SPKI PEM, as in verdict.pub' }),
    }),
  ),
  rotations: Type.Array(Type.Object({ at: Type.String({ format: 'date-time' }), retired: Type.Union([Type.String(), Type.Null()]), activated: Type.String() })),
});

const errors = problemResponses(400, 401, 403, 404, 409, 422);

/**
 * Scoreboard HTTP: grading on completion (internal, forge:operate: the orchestrator or an
 * operator calls it on learner submit or TTL end), a scenario's score, leaderboards and a
 * subject's history. Everything is bound to the key's tenant.
 */
export function scoringRoutes(deps: { scoring: ScoringService; bindTenant: BindTenant }): FastifyPluginAsync {
  const { scoring, bindTenant } = deps;
  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/internal/scenario/:id/complete',
      {
        config: { scopes: ['forge:operate'] },
        schema: {
          tags: ['scoreboard'],
          operationId: 'completeScenario',
          summary: 'Grade a scenario (learner submit or TTL end); idempotent',
          params: Type.Object({ id: ScenarioIdParam }),
          body: Type.Object(
            {
              reason: Type.Optional(Type.Union([Type.Literal('submit'), Type.Literal('ttl'), Type.Literal('operator')], { default: 'submit' })),
              answers: Type.Optional(
                Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
                  description: 'criterion id -> answer (answer checks) or question id -> answer (quiz checks)',
                }),
              ),
              hints_used: Type.Optional(
                Type.Record(Type.String({ maxLength: 64 }), Type.Array(Type.Integer({ minimum: 0, maximum: 100 }), { maxItems: 20 }), {
                  description: 'criterion id -> indices of the hints revealed',
                }),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 200: GradedSchema, ...errors },
        },
      },
      async (request) => {
        const tenant = bindTenant(request);
        const body = request.body;
        const result = await scoring.complete(tenant, request.params.id, {
          reason: body.reason ?? 'submit',
          ...(body.answers ? { answers: body.answers } : {}),
          ...(body.hints_used ? { hintsUsed: body.hints_used } : {}),
          actor: actorOf(request.principal),
        });
        return {
          scenario_id: request.params.id,
          graded: result.graded,
          key_id: result.keyId,
          attempt: result.attempt,
          artefacts: { ...result.artefacts },
          score: result.score,
        };
      },
    );

    // Public keys, the same for every tenant: any valid key may read them (docs/scoreboard.md).
    app.get(
      '/v1/verdicts/keys',
      {
        config: { scopes: [] },
        schema: {
          tags: ['scoreboard'],
          operationId: 'getVerdictKeys',
          summary: 'The verdict key set (verdict-keys.json): every verdict signing key with its validity period and the rotation history',
          response: { 200: VerdictKeySetSchema, 401: ProblemSchema, 503: ProblemSchema },
        },
      },
      async () => {
        const set = await scoring.verdictKeys();
        return { ...set, keys: [...set.keys], rotations: [...set.rotations] };
      },
    );

    app.get(
      '/v1/scores/:scenario_id',
      {
        config: { scopes: ['forge:spawn'] },
        schema: {
          tags: ['scoreboard'],
          operationId: 'getScore',
          summary: "A graded attempt's score.json, verdict key and artefacts (default the latest attempt), with every graded attempt of the scenario",
          params: Type.Object({ scenario_id: ScenarioIdParam }),
          querystring: Type.Object({ attempt: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })) }, { additionalProperties: false }),
          response: {
            200: Type.Composite([
              GradedSchema,
              Type.Object({
                attempts: Type.Array(
                  Type.Object({
                    attempt: Type.Integer(),
                    total: Type.Integer(),
                    max: Type.Integer(),
                    percent: Type.Number(),
                    graded_at: Type.String({ format: 'date-time' }),
                  }),
                  { description: 'every graded attempt, first to last' },
                ),
                best_attempt: Type.Integer({ description: 'the attempt the leaderboard and the learner portal count: highest percent, the earlier on a tie' }),
              }),
            ]),
            ...errors,
          },
        },
      },
      async (request) => {
        const tenant = bindTenant(request);
        const result = await scoring.score(tenant, request.params.scenario_id, request.query.attempt);
        return {
          scenario_id: request.params.scenario_id,
          graded: false,
          key_id: result.keyId,
          attempt: result.attempt,
          artefacts: { ...result.artefacts },
          score: result.score,
          attempts: result.attempts.map((r) => ({ attempt: r.attempt, total: r.total, max: r.max, percent: r.percent, graded_at: r.graded_at })),
          best_attempt: bestAttempt(result.attempts)?.attempt ?? result.attempt,
        };
      },
    );

    app.get(
      '/v1/scores',
      {
        config: { scopes: ['forge:spawn'] },
        schema: {
          tags: ['scoreboard'],
          operationId: 'listScores',
          summary: "Leaderboard per track (best score per subject) and a subject's own history, in the key's tenant",
          querystring: Type.Object(
            {
              track: Type.Optional(TrackSchema),
              subject: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "whose history; default the key's owner" })),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              leaderboards: Type.Array(
                Type.Object({
                  track: Type.String(),
                  entries: Type.Array(
                    Type.Object({
                      rank: Type.Integer(),
                      subject: Type.String(),
                      best_percent: Type.Number(),
                      best_total: Type.Integer(),
                      attempts: Type.Integer(),
                      last_graded_at: Type.String({ format: 'date-time' }),
                    }),
                  ),
                }),
              ),
              history: Type.Object({ subject: Type.String(), scores: Type.Array(ScoreRowSchema) }),
            }),
            ...errors,
          },
        },
      },
      async (request) => {
        const tenant = bindTenant(request);
        const limit = request.query.limit ?? 20;
        const tracks = request.query.track ? [request.query.track] : [...TRACKS];
        const leaderboards = [];
        for (const track of tracks) leaderboards.push({ track, entries: await scoring.leaderboard(tenant, track, limit) });
        const subject = request.query.subject ?? request.principal?.subject ?? '';
        return { leaderboards, history: { subject, scores: await scoring.history(tenant, subject, limit) } };
      },
    );
  };
}
