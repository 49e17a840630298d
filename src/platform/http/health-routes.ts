import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { Platform } from '../platform.js';
import { problemBody } from './problem.js';
import { ProblemSchema } from './problem-schema.js';
import { trackReadiness } from '../health-metrics.js';

const CheckResult = Type.Object({ ok: Type.Boolean(), latency_ms: Type.Number(), error: Type.Optional(Type.String()) }, { additionalProperties: true });

/** Liveness, readiness (every configured dependency) and the authenticated detailed view. */
export function healthRoutes(
  platform: Pick<Platform, 'health' | 'metrics' | 'config' | 'db' | 'bus'>,
  info: { role: string; version: string },
): FastifyPluginAsync {
  const startedAt = Date.now();
  const readiness = trackReadiness(platform.metrics.registry, platform.health, info);
  return async (app) => {
    app.get(
      '/health/live',
      {
        config: { auth: 'public' },
        schema: {
          tags: ['health'],
          operationId: 'getLiveness',
          summary: 'Liveness: the process is up (no key; for orchestrators)',
          response: { 200: Type.Object({ status: Type.Literal('live') }) },
        },
      },
      async () => ({ status: 'live' as const }),
    );

    app.get(
      '/health/ready',
      {
        config: { auth: 'public' },
        schema: {
          tags: ['health'],
          operationId: 'getReadiness',
          summary: 'Readiness: every configured dependency answers; 503 names the ones that do not (no key)',
          response: { 200: Type.Object({ status: Type.Literal('ready'), checks: Type.Record(Type.String(), CheckResult) }), 503: ProblemSchema },
        },
      },
      async (request, reply) => {
        const result = await readiness();
        if (result.ok) return { status: 'ready' as const, checks: result.checks };
        const failed = Object.entries(result.checks)
          .filter(([, c]) => !c.ok)
          .map(([name]) => name);
        const body = problemBody('unavailable', `not ready: ${failed.join(', ')} failed`, request.id, { failed, checks: result.checks });
        return reply.code(503).type('application/problem+json').send(body);
      },
    );

    app.get(
      '/health/detailed',
      {
        config: { openapiResponses: { 200: { description: 'The detailed health report', contentType: 'application/json' } } },
        schema: { tags: ['health'], operationId: 'getHealthDetails', summary: 'Versions, profile, backends and per-check latencies (any valid key)' },
      },
      async () => {
        const result = await platform.health.run();
        return {
          status: result.ok ? 'ready' : 'degraded',
          version: info.version,
          role: info.role,
          profile: platform.config.env,
          node: process.version,
          uptime_s: Math.round((Date.now() - startedAt) / 1000),
          database: platform.db.kind,
          bus: platform.bus.kind,
          rate_limit_backend: platform.config.rateLimit.backend,
          checks: result.checks,
        };
      },
    );

    app.get(
      '/metrics',
      {
        config: { auth: 'public', openapiResponses: { 200: { description: 'Prometheus text exposition format', contentType: 'text/plain' } } },
        schema: { tags: ['health'], operationId: 'getMetrics', summary: 'Prometheus metrics: no tenant data, network-restricted in deployments (no key)' },
      },
      async (_request, reply) => {
        reply.type(platform.metrics.registry.contentType);
        return platform.metrics.registry.metrics();
      },
    );
  };
}
