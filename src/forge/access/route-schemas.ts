import { Type } from '@sinclair/typebox';
import { problemResponses } from '../../platform/http/problem-schema.js';

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
  reset: '/v1/access/:scenario_id/reset',
} as const;

/**
 * A lab session outlives its lab by this much, for the results downloads only: every lab route
 * (terminals, extend, submit, the page) refuses it as soon as the lab is no longer live.
 */
export const SESSION_AFTER_LAB_S = 24 * 3600;
/** A session is renewed (quietly, a new cookie on a status poll) when it would end this much before it should. */
export const SESSION_RENEW_MARGIN_S = 15 * 60;

/** Refusals after which the learner portal is where to go next. */
export const PORTAL_REASONS: ReadonlySet<string> = new Set(['replayed', 'expired', 'missing_token', 'lab_ended', 'unknown_lab']);

/** Messages a browser may send while its shell is starting (typing ahead); more is abuse. */
export const MAX_EARLY_FRAMES = 256;

export const ScenarioParam = Type.String({ pattern: '^scn_[A-Za-z0-9_-]{1,80}$' });
export const DeviceParam = Type.String({ pattern: '^[a-z][a-z0-9-]{0,23}$' });
export const errors = problemResponses(401, 403, 404, 409, 422, 503);

/** The lab page answers browsers: its refusals are HTML pages too (documentation only; see refusalPage). */
export const LAB_PAGE_RESPONSES = {
  200: { description: 'The lab page: tasks, time left, topology and a terminal per device', contentType: 'text/html' },
  303: { description: 'The token was moved into the fg_access cookie; follow Location to the clean URL' },
  401: { description: 'A page saying the access link is missing, invalid, expired or already used', contentType: 'text/html' },
  403: { description: 'A page saying the access link is for another lab', contentType: 'text/html' },
  404: { description: 'A page saying the lab does not exist', contentType: 'text/html' },
  410: { description: 'A page saying the lab has ended', contentType: 'text/html' },
  503: { description: 'A page saying the lab is still being prepared (Refresh: 5)', contentType: 'text/html' },
} as const;

export const SubmitBody = Type.Object(
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
export const HintBody = Type.Object(
  { criterion: Type.String({ pattern: '^[a-z][a-z0-9_-]{0,63}$' }), index: Type.Integer({ minimum: 0, maximum: 20 }) },
  { additionalProperties: false },
);

export const ScoreSchema = Type.Object({
  attempt: Type.Optional(Type.Integer({ minimum: 1, description: 'which graded attempt of the lab this score is' })),
  total: Type.Number(),
  max: Type.Number(),
  graded_at: Type.String(),
  evidence: Type.Optional(Type.String({ description: 'the evidence archive file name, for the results download' })),
  criteria: Type.Array(Type.Object({ id: Type.String(), description: Type.String(), points: Type.Number(), awarded: Type.Number(), status: Type.String() })),
});
export const StatusSchema = Type.Object({
  scenario_id: Type.String(),
  state: Type.String(),
  expires_at: Type.String({ format: 'date-time' }),
  seconds_left: Type.Integer(),
  attempt: Type.Integer({
    minimum: 1,
    description: 'the attempt the lab is on: Reset after grading starts the next; each graded attempt keeps its own results',
  }),
  access_expires_at: Type.String({ format: 'date-time', description: "when this browser's lab session ends (renewed as the lab is extended)" }),
  grading: Type.Object({
    status: Type.Union([Type.Literal('unavailable'), Type.Literal('not_submitted'), Type.Literal('grading'), Type.Literal('scored'), Type.Literal('failed')]),
    error: Type.Optional(Type.String()),
    score: Type.Optional(ScoreSchema),
  }),
});

export type GradingRun = { status: 'grading' } | { status: 'failed'; error: string };
