import { Type } from '@sinclair/typebox';
import { actorOf } from '../../platform/auth/principal.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { BindTenant } from '../../platform/auth/tenant.js';
import { AppError } from '../../platform/http/problem.js';
import { problemResponses } from '../../platform/http/problem-schema.js';
import { TIERS, TRACKS } from '../templates/schema.js';
import type { EntitlementService, GrantedEntitlement } from './entitlements.js';
import type { SpawnService } from './service.js';
import type { StripeWebhook } from './stripe-webhook.js';

const RequestId = Type.String({
  pattern: '^[A-Za-z0-9._:@-]{1,128}$',
  description: 'idempotency key: a retry with the same request_id answers the same scenario',
});
const Subject = Type.String({ pattern: '^[A-Za-z0-9._@:+-]{1,128}$', description: 'the learner' });

export const SpawnBody = Type.Object(
  {
    track: Type.String({ minLength: 1, maxLength: 64 }),
    subject: Subject,
    request_id: RequestId,
    template: Type.Optional(
      Type.String({
        pattern: '^[a-z][a-z0-9-]{2,63}$',
        description: "a template of the track (GET /v1/catalog); its tier is checked against the entitlement's. Unset: the track's first template by id",
      }),
    ),
  },
  { additionalProperties: false },
);
const SpawnHeaders = Type.Object({
  'x-request-id': Type.Optional(Type.String({ maxLength: 128 })),
  'x-client-id': Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9._@:+-]{1,128}$',
      description: 'the application spawning for the learner (your LMS, a portal), stored with the spawn for support and audits; unset: key:<the API key id>',
    }),
  ),
  'x-entitlement-token': Type.Optional(
    Type.String({ maxLength: 4096, description: 'an entitlement token; without one the learner’s stored entitlement is used' }),
  ),
});
export const SpawnResponseSchema = Type.Object({
  request_id: Type.String(),
  scenario_id: Type.String(),
  access_url: Type.String(),
  access_token: Type.String(),
  expires_at: Type.String({ description: 'when the access token and URL expire' }),
  sat: Type.String(),
  scenario_expires_at: Type.Union([Type.String(), Type.Null()]),
  state: Type.String(),
  replayed: Type.Boolean(),
});
const EntitlementSchema = Type.Object({
  entitlement_id: Type.String(),
  entitlement_token: Type.String(),
  subject: Type.String(),
  track: Type.String(),
  tier: Type.String(),
  credits: Type.Integer(),
  credits_used: Type.Integer(),
  expires_at: Type.String(),
});
const CatalogTemplateSchema = Type.Object({
  id: Type.String(),
  version: Type.String(),
  title: Type.String(),
  description: Type.String(),
  tier: Type.String(),
  difficulty: Type.Union([Type.String(), Type.Null()]),
  duration_minutes: Type.Integer({ description: "the lab's time before any extension" }),
  devices: Type.Integer(),
  allowed: Type.Optional(Type.Boolean({ description: "with ?subject=: the learner's entitlement lets them spawn it" })),
  refusals: Type.Optional(Type.Array(Type.Object({ reason: Type.String(), detail: Type.String() }))),
});
const CatalogSchema = Type.Object({
  subject: Type.Optional(Type.String()),
  tracks: Type.Array(
    Type.Object({
      track: Type.String(),
      templates: Type.Array(CatalogTemplateSchema),
      entitlement: Type.Optional(
        Type.Union([Type.Object({ entitlement_id: Type.String(), tier: Type.String(), credits_left: Type.Integer(), expires_at: Type.String() }), Type.Null()]),
      ),
    }),
  ),
});

function entitlementView(granted: GrantedEntitlement) {
  const e = granted.entitlement;
  return {
    entitlement_id: e.entitlement_id,
    entitlement_token: granted.token,
    subject: e.subject,
    track: e.track,
    tier: e.tier,
    credits: e.credits,
    credits_used: e.credits_used,
    expires_at: e.expires_at,
  };
}

const errors = problemResponses(400, 401, 403, 404, 409, 422, 429, 500, 503);

export interface SpawnRouteDeps {
  readonly spawn: SpawnService;
  readonly entitlements: EntitlementService;
  readonly stripe: StripeWebhook;
  readonly bindTenant: BindTenant;
  /** FG_PUBLIC_URL; undefined: access URLs use the spawn request's scheme and host. */
  readonly publicUrl: string | undefined;
}

/**
 * Spawn, the catalogue, entitlement exchange, fake_charge receipts and the Stripe webhook.
 */
export function spawnRoutes(deps: SpawnRouteDeps): FastifyPluginAsync {
  const { spawn, entitlements, stripe, bindTenant } = deps;
  const baseUrl = (request: FastifyRequest) => deps.publicUrl ?? `${request.protocol}://${request.host}`;
  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();

    for (const url of ['/v1/spawn', '/api/spawn']) {
      app.post(
        url,
        {
          config: { scopes: ['forge:spawn'], rateLimitClass: 'write' },
          bodyLimit: 4096,
          schema: {
            tags: ['forge'],
            operationId: url === '/v1/spawn' ? 'spawnLab' : 'spawnLabAlias',
            summary: url === '/v1/spawn' ? 'Launch a lab for a learner (entitlement, Cedar policy and quotas checked first)' : 'Alias of POST /v1/spawn',
            headers: SpawnHeaders,
            body: SpawnBody,
            response: { 200: SpawnResponseSchema, 201: SpawnResponseSchema, ...errors },
          },
        },
        async (request, reply) => {
          const { track, subject, request_id, template } = request.body;
          const headerId = request.headers['x-request-id'];
          if (headerId !== undefined && headerId !== request_id)
            throw new AppError(
              'bad_request',
              `the x-request-id header (${headerId}) and request_id in the body (${request_id}) differ; send the same value in both, or leave the header out`,
            );
          const token = request.headers['x-entitlement-token'];
          const clientId = request.headers['x-client-id'] ?? `key:${actorOf(request.principal)}`;
          const result = await spawn.spawn(
            bindTenant(request),
            { track, subject, requestId: request_id, clientId, ...(template ? { template } : {}), ...(token ? { entitlementToken: token } : {}) },
            { actor: actorOf(request.principal), baseUrl: baseUrl(request) },
          );
          return reply.code(result.replayed ? 200 : 201).send(result);
        },
      );
    }

    app.get(
      '/v1/catalog',
      {
        config: { scopes: ['forge:spawn'] },
        schema: {
          tags: ['forge'],
          operationId: 'getCatalog',
          summary: "The labs offered, by track; with ?subject= also what that learner's entitlement allows (the spawn's Cedar training gate)",
          querystring: Type.Object({ subject: Type.Optional(Subject) }),
          response: { 200: CatalogSchema, ...errors },
        },
      },
      async (request) => spawn.catalog(bindTenant(request), request.query.subject),
    );

    app.post(
      '/v1/receipts',
      {
        config: { scopes: ['admin'], rateLimitClass: 'write' },
        bodyLimit: 2048,
        schema: {
          tags: ['forge'],
          operationId: 'issueReceipt',
          summary: 'Issue and exchange a receipt paid with fake_charge (BILLING_MODE=fake_charge, dev/test/staging only): an entitlement without a payment',
          body: Type.Object(
            {
              track: Type.Union(TRACKS.map((t) => Type.Literal(t))),
              subject: Subject,
              tier: Type.Optional(
                Type.Union(
                  TIERS.map((t) => Type.Literal(t)),
                  { default: 'pro' },
                ),
              ),
              credits: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 5 })),
              days: Type.Optional(Type.Integer({ minimum: 1, maximum: 365, default: 30, description: 'days until the entitlement ends' })),
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Intersect([EntitlementSchema, Type.Object({ receipt: Type.String(), billing_mode: Type.Literal('fake_charge') })]), ...errors },
        },
      },
      async (request, reply) => {
        const tenantId = bindTenant(request);
        const issued = await entitlements.issueDevReceipt(tenantId, request.body, actorOf(request.principal));
        return reply.code(201).send({ ...entitlementView(issued), receipt: issued.receipt, billing_mode: 'fake_charge' as const });
      },
    );

    app.post(
      '/v1/entitlements/exchange',
      {
        config: { scopes: ['forge:spawn'], rateLimitClass: 'write' },
        bodyLimit: 8192,
        schema: {
          tags: ['forge'],
          operationId: 'exchangeReceipt',
          summary: 'Exchange a signed purchase receipt for an entitlement token (once per receipt)',
          body: Type.Object({ receipt: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false }),
          response: { 201: EntitlementSchema, ...errors },
        },
      },
      async (request, reply) => {
        const receipt = entitlements.verifyReceipt(request.body.receipt);
        const tenantId = bindTenant(request, receipt.tenant);
        const granted = await entitlements.exchange(tenantId, receipt, actorOf(request.principal));
        return reply.code(201).send(entitlementView(granted));
      },
    );

    // The Stripe webhook needs the raw body (the signature covers the exact bytes), so it lives in
    // its own plugin scope with a string parser; every other route keeps parsing JSON.
    await app.register(async (child) => {
      child.removeContentTypeParser('application/json');
      child.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 256 * 1024 }, (_req, body, done) => done(null, body));
      child.withTypeProvider<TypeBoxTypeProvider>().post(
        '/v1/billing/stripe/webhook',
        {
          config: { auth: 'token', rateLimitClass: 'write' },
          schema: {
            tags: ['forge'],
            operationId: 'receiveStripeWebhook',
            summary: 'Stripe checkout webhook (authenticated by the Stripe-Signature header)',
            security: [{ stripeSignature: [] }],
            headers: Type.Object({ 'stripe-signature': Type.Optional(Type.String({ maxLength: 2048 })) }),
            body: Type.String(),
            response: {
              200: Type.Object({ received: Type.Literal(true), outcome: Type.String(), entitlement_id: Type.Optional(Type.String()) }),
              ...errors,
            },
          },
        },
        async (request) => stripe.handle(request.body, request.headers['stripe-signature']),
      );
    });
  };
}
