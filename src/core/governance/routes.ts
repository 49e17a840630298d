import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { AppError } from '../../platform/http/problem.js';
import { problemResponses } from '../../platform/http/problem-schema.js';
import type { BindTenant } from '../../platform/auth/tenant.js';
import { hasScope } from '../../platform/auth/scopes.js';
import type { Principal } from '../../platform/auth/principal.js';
import type { GovernanceService } from './service.js';

const Kind = Type.Union([Type.Literal('ruleset'), Type.Literal('doctrine'), Type.Literal('ratelimit')]);
const Status = Type.Union(['proposed', 'approved', 'deployed', 'rejected', 'withdrawn', 'expired', 'rolled_back'].map((s) => Type.Literal(s)));
const ChangeId = Type.Object({ id: Type.String({ pattern: '^chg_[a-z0-9]{20}$' }) });
const Reason = Type.String({ minLength: 3, maxLength: 2000 });

const ChangeSchema = Type.Object({
  id: Type.String(),
  kind: Kind,
  version: Type.String(),
  status: Status,
  origin: Type.Union([Type.Literal('human'), Type.Literal('analyzer')]),
  risk: Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high')]),
  risk_reasons: Type.Array(Type.String()),
  required_approvals: Type.Integer(),
  approver_scope: Type.String(),
  approvals: Type.Array(
    Type.Object({
      principal: Type.String(),
      subject: Type.String(),
      decision: Type.String(),
      reason: Type.Union([Type.String(), Type.Null()]),
      at: Type.String(),
    }),
  ),
  justification: Type.String(),
  author: Type.String(),
  base_version: Type.String(),
  previous_version: Type.Union([Type.String(), Type.Null()]),
  canary: Type.Union([Type.Unknown(), Type.Null()]),
  content: Type.Unknown(),
  created_at: Type.String(),
  expires_at: Type.String(),
  deployed_at: Type.Union([Type.String(), Type.Null()]),
  rolled_back_at: Type.Union([Type.String(), Type.Null()]),
  rollback_reason: Type.Union([Type.String(), Type.Null()]),
});
const errors = problemResponses(400, 401, 403, 404, 409, 422);

/** Governance API: propose, approve/reject/withdraw, canary, deploy, rollback, history. */
export function governanceRoutes(deps: { service: GovernanceService; bindTenant: BindTenant }): FastifyPluginAsync {
  const { service, bindTenant } = deps;
  const principalOf = (request: FastifyRequest): Principal => {
    if (!request.principal) throw new AppError('unauthorized', 'a valid API key is required in the X-API-Key header');
    return request.principal;
  };
  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    // A key refused by the gate for a missing scope is a governance refusal too: audited like the others.
    app.addHook('onError', async (request, _reply, error) => {
      const refused = request.refusedPrincipal;
      if (request.method !== 'POST' || !refused?.tenantId || !(error instanceof AppError) || error.code !== 'missing_scope') return;
      const action = /\/(approve|reject|withdraw|canary|deploy|rollback)$/.exec(request.routeOptions.url ?? '')?.[1] ?? 'propose';
      const id = (request.params as { id?: string }).id;
      await service.recordRefusal(refused.tenantId, refused, action, id && /^chg_[a-z0-9]{20}$/.test(id) ? id : undefined, error);
    });

    app.post(
      '/governance/changes',
      {
        config: { scopes: ['governance:write'], rateLimitClass: 'admin' },
        schema: {
          tags: ['governance'],
          operationId: 'proposeChange',
          summary: 'Propose a new version of a ruleset, doctrine or rate-limit policy; the server computes its risk and required approvals',
          body: Type.Object(
            {
              kind: Kind,
              content: Type.Object({}, { additionalProperties: true }),
              justification: Reason,
              origin: Type.Optional(Type.Union([Type.Literal('human'), Type.Literal('analyzer')])),
              tenant_id: Type.Optional(Type.String()),
            },
            { additionalProperties: false },
          ),
          response: { 201: ChangeSchema, ...errors },
        },
      },
      async (request, reply) => {
        const tenant = bindTenant(request, request.body.tenant_id);
        const change = await service.propose(tenant, principalOf(request), {
          kind: request.body.kind,
          content: request.body.content,
          justification: request.body.justification,
          origin: request.body.origin ?? 'human',
        });
        return reply.code(201).send(change);
      },
    );

    const canRead = (request: FastifyRequest) => {
      const scopes = principalOf(request).scopes;
      if (!hasScope(scopes, 'governance:write') && !hasScope(scopes, 'governance:approve')) {
        throw new AppError('missing_scope', 'reading governance changes needs governance:write or governance:approve', {
          missing_scopes: ['governance:write'],
        });
      }
    };

    app.get(
      '/governance/changes',
      {
        schema: {
          tags: ['governance'],
          operationId: 'listChanges',
          summary: "The tenant's change requests, newest first (a key with governance:write or governance:approve)",
          querystring: Type.Object(
            { status: Type.Optional(Status), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ changes: Type.Array(ChangeSchema) }), ...errors },
        },
      },
      async (request) => {
        canRead(request);
        return {
          changes: await service.list(bindTenant(request), {
            ...(request.query.status ? { status: request.query.status as never } : {}),
            ...(request.query.limit ? { limit: request.query.limit } : {}),
          }),
        };
      },
    );

    app.get(
      '/governance/changes/:id',
      {
        schema: {
          tags: ['governance'],
          operationId: 'getChange',
          summary: 'One change request with its approvals, canary result and reasons (a key with governance:write or governance:approve)',
          params: ChangeId,
          response: { 200: ChangeSchema, ...errors },
        },
      },
      async (request) => {
        canRead(request);
        return service.get(bindTenant(request), request.params.id);
      },
    );

    app.post(
      '/governance/changes/:id/approve',
      {
        config: { scopes: ['governance:approve'], rateLimitClass: 'admin' },
        schema: {
          tags: ['governance'],
          operationId: 'approveChange',
          summary: 'Approve a proposed change; its author cannot (admin keys for high-risk changes)',
          params: ChangeId,
          body: Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false }),
          response: { 200: ChangeSchema, ...errors },
        },
      },
      async (request) => service.approve(bindTenant(request), principalOf(request), request.params.id, request.body.reason),
    );

    app.post(
      '/governance/changes/:id/reject',
      {
        config: { scopes: ['governance:approve'], rateLimitClass: 'admin' },
        schema: {
          tags: ['governance'],
          operationId: 'rejectChange',
          summary: 'Reject a proposed or approved change, with a reason',
          params: ChangeId,
          body: Type.Object({ reason: Reason }, { additionalProperties: false }),
          response: { 200: ChangeSchema, ...errors },
        },
      },
      async (request) => service.reject(bindTenant(request), principalOf(request), request.params.id, request.body.reason),
    );

    app.post(
      '/governance/changes/:id/withdraw',
      {
        config: { scopes: ['governance:write'], rateLimitClass: 'admin' },
        schema: {
          tags: ['governance'],
          operationId: 'withdrawChange',
          summary: 'Withdraw a change its author proposed',
          params: ChangeId,
          body: Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false }),
          response: { 200: ChangeSchema, ...errors },
        },
      },
      async (request) => service.withdraw(bindTenant(request), principalOf(request), request.params.id, request.body.reason),
    );

    app.post(
      '/governance/changes/:id/canary',
      {
        config: { scopes: ['governance:write'], rateLimitClass: 'admin' },
        schema: {
          tags: ['governance'],
          operationId: 'canaryChange',
          summary: "Replay the tenant's recent events through the deployed and proposed versions, without side effects",
          params: ChangeId,
          body: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })) }, { additionalProperties: false }),
          response: { 200: ChangeSchema, ...errors },
        },
      },
      async (request) => service.canary(bindTenant(request), principalOf(request), request.params.id, request.body.limit),
    );

    app.post(
      '/governance/changes/:id/deploy',
      {
        config: { scopes: ['governance:write'], rateLimitClass: 'admin' },
        schema: {
          tags: ['governance'],
          operationId: 'deployChange',
          summary: 'Make an approved change the active version, if the Cedar deploy gate permits it',
          params: ChangeId,
          response: { 200: ChangeSchema, ...errors },
        },
      },
      async (request) => service.deploy(bindTenant(request), principalOf(request), request.params.id),
    );

    app.post(
      '/governance/changes/:id/rollback',
      {
        config: { scopes: ['governance:write'], rateLimitClass: 'admin' },
        schema: {
          tags: ['governance'],
          operationId: 'rollbackChange',
          summary: 'Undo a deployed change: the previous version is active again',
          params: ChangeId,
          body: Type.Object({ reason: Reason }, { additionalProperties: false }),
          response: { 200: ChangeSchema, ...errors },
        },
      },
      async (request) => service.rollback(bindTenant(request), principalOf(request), request.params.id, request.body.reason),
    );
  };
}
