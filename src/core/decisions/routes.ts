import { Type, type Static } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { ProblemSchema } from '../../platform/http/problem-schema.js';
import type { Logger } from '../../platform/log.js';
import { SecurityEventSchema } from '../engine/event.js';
import { THREAT_LEVELS } from '../engine/ruleset.js';
import type { BindTenant } from '../../platform/auth/tenant.js';
import type { BouncerDecisions } from './bouncer.js';
import type { BlockRemovals } from './block-removals.js';
import { MAX_BATCH_EVENTS, type IngestService } from './ingest.js';
import type { DecisionService } from './service.js';

/** The event schema without its $id, so several routes can embed it. */
const EventBody = Type.Object(SecurityEventSchema.properties, { additionalProperties: false });

const Mitigation = Type.Object({
  action: Type.String(),
  target: Type.Union([Type.String(), Type.Null()]),
  duration_s: Type.Integer(),
  applied: Type.Boolean(),
  gated_by: Type.Union([Type.String(), Type.Null()]),
});
export const DecisionSchema = Type.Object({
  decision_id: Type.String(),
  tenant_id: Type.String(),
  event_id: Type.Union([Type.String(), Type.Null()]),
  event_digest: Type.String(),
  entity: Type.String(),
  threat_level: Type.Union(THREAT_LEVELS.map((l) => Type.Literal(l))),
  score: Type.Integer(),
  rules_triggered: Type.Array(Type.String()),
  mitigations: Type.Array(Mitigation),
  explanation: Type.String(),
  ruleset_version: Type.String(),
  doctrine_version: Type.String(),
  decision_diff: Type.Union([Type.Unknown(), Type.Null()]),
  ledger_index: Type.Integer(),
  path: Type.String(),
  occurred_at: Type.String(),
  created_at: Type.String(),
});
/** GET /decisions/{id}: the decision and whether its row still matches its ledger record. */
const CheckedDecisionSchema = Type.Object({
  ...DecisionSchema.properties,
  integrity: Type.Object(
    {
      status: Type.Union([Type.Literal('match'), Type.Literal('mismatch'), Type.Literal('missing')], {
        description: 'match: the row is what the ledger recorded; mismatch: columns were changed after the fact; missing: no ledger entry at ledger_index',
      }),
      fields: Type.Optional(
        Type.Array(Type.String(), {
          description: 'mismatch: the columns that differ from the ledger record (event: the event no longer hashes to event_digest)',
        }),
      ),
      detail: Type.Optional(Type.String()),
    },
    { description: 'The row against its ledger record; the ledger itself is checked against signed checkpoints by frostgate verify' },
  ),
});
const errors = { 400: ProblemSchema, 401: ProblemSchema, 403: ProblemSchema, 404: ProblemSchema, 413: ProblemSchema, 422: ProblemSchema, 503: ProblemSchema };

/** /defend (decide one event now) and the tenant-bound decisions API. */
const BatchStatusSchema = Type.Object({
  batch_id: Type.String(),
  status: Type.Union([Type.Literal('queued'), Type.Literal('deciding'), Type.Literal('completed'), Type.Literal('failed')]),
  event_count: Type.Integer(),
  decided: Type.Integer(),
  decision_ids: Type.Array(Type.String(), { description: "in the order of the batch's events" }),
  received_at: Type.String(),
  completed_at: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
});

const CrowdSecDecisionSchema = Type.Object({
  id: Type.Integer(),
  origin: Type.String(),
  type: Type.String(),
  scope: Type.String(),
  value: Type.String(),
  duration: Type.String({ description: 'remaining time, Go duration format' }),
  until: Type.String(),
  scenario: Type.String(),
  simulated: Type.Boolean(),
});

const BlockRemovalSchema = Type.Object({
  ip: Type.String(),
  removed_at: Type.String(),
  removed_by: Type.String({ description: "the key id, or the console session's subject" }),
  reason: Type.String(),
  decision_ids: Type.Array(Type.String(), { description: 'the decisions whose blocks were lifted' }),
  blocked_until: Type.String({ description: 'when the longest of them would have ended' }),
  audit_index: Type.Integer({ description: "the removal's entry in the tenant's audit log" }),
});

export const StreamResponseSchema = Type.Object({ new: Type.Array(CrowdSecDecisionSchema), deleted: Type.Array(CrowdSecDecisionSchema) });

export function decisionRoutes(deps: {
  service: DecisionService;
  ingest: IngestService;
  bouncer: BouncerDecisions;
  removals: BlockRemovals;
  bindTenant: BindTenant;
  security?: Logger;
}): FastifyPluginAsync {
  const { service, ingest, bouncer, removals, bindTenant, security } = deps;
  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/defend',
      {
        config: { scopes: ['defend:write'], rateLimitClass: 'write' },
        // One event needs no more; a smaller FG_BODY_LIMIT still applies (/ingest takes FG_BODY_LIMIT itself).
        bodyLimit: Math.min(64 * 1024, app.initialConfig.bodyLimit ?? Number.POSITIVE_INFINITY),
        schema: {
          tags: ['decisions'],
          operationId: 'defendEvent',
          summary: 'Decide one event; the decision is stored in the ledger before the answer',
          body: EventBody,
          response: { 200: DecisionSchema, ...errors },
        },
      },
      async (request) => service.decide(bindTenant(request, request.body.tenant_id, 'body/tenant_id'), request.body, 'defend'),
    );

    app.post(
      '/ingest',
      {
        config: { scopes: ['ingest:write'], rateLimitClass: 'write' },
        schema: {
          tags: ['decisions'],
          operationId: 'ingestEvents',
          summary: `Queue a batch of up to ${MAX_BATCH_EVENTS} events; 202 once the batch is durable, decided in order through the same evaluate() as /defend`,
          body: Type.Object(
            {
              events: Type.Array(EventBody, { description: `1 to ${MAX_BATCH_EVENTS} events; more is 413` }),
              tenant_id: Type.Optional(Type.String({ maxLength: 63 })),
            },
            { additionalProperties: false },
          ),
          response: { 202: Type.Object({ batch_id: Type.String(), event_count: Type.Integer(), status_url: Type.String() }), ...errors },
        },
      },
      async (request, reply) => {
        // Every tenant the batch names, its own and each event's, is held against the key's, like
        // /defend holds its event's: one refused claim refuses the whole batch before anything is stored.
        if (request.body.tenant_id !== undefined) bindTenant(request, request.body.tenant_id, 'body/tenant_id');
        request.body.events.forEach((event, i) => event.tenant_id !== undefined && bindTenant(request, event.tenant_id, `body/events/${i}/tenant_id`));
        const accepted = await ingest.accept(bindTenant(request), request.body.events);
        return reply.code(202).header('location', accepted.status_url).send(accepted);
      },
    );

    app.get(
      '/ingest/batches/:id',
      {
        config: { scopes: ['ingest:write'], rateLimitClass: 'read' },
        schema: {
          tags: ['decisions'],
          operationId: 'getIngestBatch',
          summary: 'Progress of an ingest batch and its decision ids',
          params: Type.Object({ id: Type.String({ pattern: '^ing_[a-z0-9]{24}$' }) }),
          response: { 200: BatchStatusSchema, ...errors },
        },
      },
      async (request) => ingest.status(bindTenant(request), request.params.id),
    );

    app.get(
      '/decisions',
      {
        config: { scopes: ['decisions:read'], rateLimitClass: 'read' },
        schema: {
          tags: ['decisions'],
          operationId: 'listDecisions',
          summary: "The tenant's decisions, newest first, filtered by threat level, time, entity or rule; cursor-paginated",
          querystring: Type.Object(
            {
              threat_level: Type.Optional(Type.Union(THREAT_LEVELS.map((l) => Type.Literal(l)))),
              since: Type.Optional(Type.String({ format: 'date-time' })),
              until: Type.Optional(Type.String({ format: 'date-time' })),
              entity: Type.Optional(Type.String({ maxLength: 200, description: 'an IP address, or an entity key such as user:alice' })),
              rule: Type.Optional(Type.String({ maxLength: 64 })),
              cursor: Type.Optional(Type.String({ maxLength: 512 })),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
              tenant_id: Type.Optional(Type.String({ maxLength: 63 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ decisions: Type.Array(DecisionSchema), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...errors },
        },
      },
      async (request) => {
        const { tenant_id, limit, ...filters } = request.query;
        return service.list(bindTenant(request, tenant_id), { ...filters, limit: limit ?? 100 });
      },
    );

    app.get(
      '/decisions/active',
      {
        config: { scopes: ['decisions:read'], rateLimitClass: 'read' },
        schema: {
          tags: ['decisions'],
          operationId: 'listActiveBlocks',
          summary: 'Blocks in force (FrostGate view; bouncers use /v1/decisions)',
          querystring: Type.Object({ ip: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false }),
          response: { 200: Type.Object({ decisions: Type.Array(DecisionSchema) }), ...errors },
        },
      },
      async (request) => {
        const tenantId = bindTenant(request);
        return { decisions: await removals.withoutLifted(tenantId, await service.activeBlocks(tenantId, request.query.ip)) };
      },
    );

    app.delete(
      '/decisions/active/:ip',
      {
        config: { scopes: ['decisions:write'], rateLimitClass: 'write' },
        schema: {
          tags: ['decisions'],
          operationId: 'removeBlock',
          summary: "Lift an IP's blocks before they end (audited); bouncers see the IP in their stream's deleted list",
          params: Type.Object({ ip: Type.String({ maxLength: 64 }) }),
          querystring: Type.Object({ tenant_id: Type.Optional(Type.String({ maxLength: 63 })) }, { additionalProperties: false }),
          body: Type.Object(
            { reason: Type.String({ minLength: 3, maxLength: 500, description: 'why the block is lifted early: kept in the audit log' }) },
            { additionalProperties: false },
          ),
          response: { 200: BlockRemovalSchema, ...errors },
        },
      },
      async (request) => {
        const tenantId = bindTenant(request, request.query.tenant_id);
        const actor = request.principal?.keyId ?? request.principal?.subject ?? 'unknown';
        const removal = await removals.remove(tenantId, request.params.ip, actor, request.body.reason);
        bouncer.invalidate(tenantId);
        return removal;
      },
    );

    // CrowdSec Local API bouncer protocol (docs/bouncers.md): keys with the read-only bouncer:read scope.
    app.get(
      '/v1/decisions',
      {
        config: { scopes: ['bouncer:read'], rateLimitClass: 'bouncer', errorShape: 'crowdsec' },
        schema: {
          tags: ['bouncers'],
          operationId: 'getBouncerDecisions',
          summary: 'Blocks in force for an IP, a range or all (CrowdSec LAPI shape; null when none)',
          querystring: Type.Object(
            {
              ip: Type.Optional(Type.String({ maxLength: 64 })),
              range: Type.Optional(Type.String({ maxLength: 64 })),
              scope: Type.Optional(Type.String({ maxLength: 32 })),
              value: Type.Optional(Type.String({ maxLength: 64 })),
              type: Type.Optional(Type.String({ maxLength: 32 })),
              contains: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: true },
          ),
          response: { 200: Type.Union([Type.Array(CrowdSecDecisionSchema), Type.Null()]), ...errors },
        },
      },
      async (request) => bouncer.query(bindTenant(request), request.query),
    );

    app.get(
      '/v1/decisions/stream',
      {
        config: { scopes: ['bouncer:read'], rateLimitClass: 'bouncer_stream', errorShape: 'crowdsec' },
        schema: {
          tags: ['bouncers'],
          operationId: 'streamBouncerDecisions',
          summary: "Blocks new and ended since this bouncer key's last pull (all in force with startup=true)",
          querystring: Type.Object(
            { startup: Type.Optional(Type.Boolean({ default: false })), scopes: Type.Optional(Type.String({ maxLength: 64 })) },
            { additionalProperties: true },
          ),
          response: { 200: StreamResponseSchema, ...errors },
        },
      },
      async (request, reply) => {
        const tenantId = bindTenant(request);
        const keyId = request.principal?.keyId ?? request.principal?.subject ?? 'unknown';
        const body = await bouncer.streamBody(tenantId, keyId, {
          startup: request.query.startup ?? false,
          ...(request.query.scopes ? { scopes: request.query.scopes } : {}),
        });
        // Serialized by the block set (a startup can be 10,000 decisions, shared by the startups of a
        // second): Fastify sends a Buffer as it is, without the schema serializer; a test checks it
        // against the schema.
        return reply.type('application/json').send(body as unknown as Static<typeof StreamResponseSchema>);
      },
    );

    app.get(
      '/decisions/:id',
      {
        config: { scopes: ['decisions:read'], rateLimitClass: 'read' },
        schema: {
          tags: ['decisions'],
          operationId: 'getDecision',
          summary: 'One decision with its ledger index, and whether its row still matches its ledger record',
          params: Type.Object({ id: Type.String({ pattern: '^dec_[a-z0-9]{24}$' }) }),
          response: { 200: CheckedDecisionSchema, ...errors },
        },
      },
      async (request) => {
        const decision = await service.getChecked(bindTenant(request), request.params.id);
        if (decision.integrity.status !== 'match') {
          security?.error(
            { type: 'decision_integrity', decision_id: decision.decision_id, ledger_index: decision.ledger_index, integrity: decision.integrity },
            'decision row differs from its ledger record: served with integrity.status mismatch; run frostgate verify',
          );
        }
        return decision;
      },
    );
  };
}
