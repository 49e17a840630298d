import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { BindTenant } from '../../platform/auth/tenant.js';
import { AppError, ProblemSchema } from '../../platform/http/problem.js';
import type { EntitlementService } from './entitlements.js';
import type { SpawnService } from './service.js';
import type { StripeWebhook } from './stripe-webhook.js';

const RequestId = Type.String({
  pattern: '^[A-Za-z0-9._:@-]{1,128}$',
  description: 'idempotency key: a retry with the same request_id answers the same scenario',
});
const Subject = Type.String({ pattern: '^[A-Za-z0-9._@:+-]{1,128}$', description: 'the learner' });

export const SpawnBody = Type.Object(
  { track: Type.String({ minLength: 1, maxLength: 64 }), subject: Subject, request_id: RequestId },
  { additionalProperties: false },
);
const SpawnHeaders = Type.Object({
  'x-request-id': Type.Optional(Type.String({ maxLength: 128 })),
  'x-client-id': Type.String({ pattern: '^[A-Za-z0-9._@:+-]{1,128}$', description: 'the calling client (application or learner id)' }),
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
const errors = {
  400: ProblemSchema,
  401: ProblemSchema,
  403: ProblemSchema,
  404: ProblemSchema,
  409: ProblemSchema,
  422: ProblemSchema,
  429: ProblemSchema,
  500: ProblemSchema,
  503: ProblemSchema,
};

export interface SpawnRouteDeps {
  readonly spawn: SpawnService;
  readonly entitlements: EntitlementService;
  readonly stripe: StripeWebhook;
  readonly bindTenant: BindTenant;
  /** FG_PUBLIC_URL; undefined: access URLs use the spawn request's scheme and host. */
  readonly publicUrl: string | undefined;
}

/**
 * Spawn, entitlement exchange and the Stripe webhook.
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
          const { track, subject, request_id } = request.body;
          const headerId = request.headers['x-request-id'];
          if (headerId !== undefined && headerId !== request_id)
            throw new AppError(
              'bad_request',
              `the x-request-id header (${headerId}) and request_id in the body (${request_id}) differ; send the same value in both, or leave the header out`,
            );
          const token = request.headers['x-entitlement-token'];
          const result = await spawn.spawn(
            bindTenant(request),
            { track, subject, requestId: request_id, clientId: request.headers['x-client-id'], ...(token ? { entitlementToken: token } : {}) },
            { actor: request.principal?.keyId ?? request.principal?.subject ?? 'unknown', baseUrl: baseUrl(request) },
          );
          return reply.code(result.replayed ? 200 : 201).send(result);
        },
      );
    }

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
        const granted = await entitlements.exchange(tenantId, receipt, request.principal?.keyId ?? request.principal?.subject ?? 'unknown');
        const e = granted.entitlement;
        return reply.code(201).send({
          entitlement_id: e.entitlement_id,
          entitlement_token: granted.token,
          subject: e.subject,
          track: e.track,
          tier: e.tier,
          credits: e.credits,
          credits_used: e.credits_used,
          expires_at: e.expires_at,
        });
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
