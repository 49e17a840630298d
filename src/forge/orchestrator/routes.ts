import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { BindTenant } from '../../platform/auth/tenant.js';
import { AppError } from '../../platform/http/problem.js';
import { actorOf } from '../../platform/auth/principal.js';
import { problemResponses } from '../../platform/http/problem-schema.js';
import { LabRuntimeError } from '../runtime/errors.js';
import type { ScenarioAdmission } from './admission.js';
import type { Orchestrator } from './service.js';
import type { Scenario } from './store.js';
import { SCENARIO_STATES } from './states.js';

const Address = Type.Object({ interface: Type.String(), network: Type.String(), address: Type.String() });
export const ScenarioSchema = Type.Object({
  scenario_id: Type.String(),
  tenant_id: Type.String(),
  template_id: Type.String(),
  template_version: Type.String(),
  track: Type.String(),
  subject: Type.String(),
  state: Type.Union(SCENARIO_STATES.map((s) => Type.Literal(s))),
  expires_at: Type.String(),
  created_at: Type.String(),
  updated_at: Type.String(),
  error: Type.Union([Type.String(), Type.Null()]),
  attempt: Type.Integer({
    minimum: 1,
    description: 'the attempt the lab is on: a reset of a graded scenario starts the next; graded attempts keep their scores',
  }),
  devices: Type.Array(Type.Object({ name: Type.String(), kind: Type.Union([Type.Literal('host'), Type.Literal('router')]), addresses: Type.Array(Address) })),
});

const ScenarioParams = Type.Object({ id: Type.String({ pattern: '^scn_[A-Za-z0-9_]{8,100}$' }) });
const errors = problemResponses(400, 401, 403, 404, 409, 422, 503);

/**
 * Operator endpoints of the orchestrator (scope forge:operate). Creating a scenario also needs
 * the SAT spawn issued (X-SAT header): an operator key alone cannot build a lab for a learner.
 */
export function orchestratorRoutes(deps: { orchestrator: Orchestrator; admission: ScenarioAdmission; bindTenant: BindTenant }): FastifyPluginAsync {
  const { orchestrator, admission, bindTenant } = deps;
  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/v1/scenarios',
      {
        config: { scopes: ['forge:operate'], rateLimitClass: 'write' },
        schema: {
          tags: ['forge'],
          operationId: 'createScenario',
          summary: 'Build the lab a SAT admits; answers once it runs',
          headers: Type.Object({ 'x-sat': Type.Optional(Type.String({ maxLength: 4096 })) }),
          body: Type.Object({}, { additionalProperties: false }),
          response: { 201: ScenarioSchema, ...errors },
        },
      },
      async (request, reply) => {
        const scenario = await labErrors(admission.admit(request.headers['x-sat'], (claimed) => bindTenant(request, claimed), 'http'));
        return reply.code(201).send(view(scenario));
      },
    );

    app.get(
      '/v1/scenarios',
      {
        config: { scopes: ['forge:operate'], rateLimitClass: 'read' },
        schema: {
          tags: ['forge'],
          operationId: 'listScenarios',
          summary: "The tenant's labs, newest first: those not yet over unless `all` (the operators' console lists them)",
          querystring: Type.Object({ all: Type.Optional(Type.Boolean({ default: false })) }, { additionalProperties: false }),
          response: { 200: Type.Object({ scenarios: Type.Array(ScenarioSchema) }), ...errors },
        },
      },
      async (request) => {
        const tenant = bindTenant(request);
        const scenarios = await orchestrator.list(tenant);
        const live = new Set(['pending', 'provisioning', 'running', 'grading']);
        return {
          scenarios: scenarios
            .filter((s) => request.query.all === true || live.has(s.state))
            .slice(0, 1000)
            .map(view),
        };
      },
    );

    app.get(
      '/v1/scenarios/:id',
      {
        config: { scopes: ['forge:operate'], rateLimitClass: 'read' },
        schema: {
          tags: ['forge'],
          operationId: 'getScenario',
          summary: "A scenario's state, template, devices and expiry",
          params: ScenarioParams,
          response: { 200: ScenarioSchema, ...errors },
        },
      },
      async (request) => view(await orchestrator.get(bindTenant(request), request.params.id)),
    );

    app.post(
      '/v1/scenarios/:id/extend',
      {
        config: { scopes: ['forge:operate'], rateLimitClass: 'write' },
        schema: {
          tags: ['forge'],
          operationId: 'extendScenario',
          summary: 'Push the expiry out by `minutes` (default 30; from now or the current expiry, whichever is later)',
          params: ScenarioParams,
          body: Type.Object({ minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 1440, default: 30 })) }, { additionalProperties: false }),
          response: { 200: ScenarioSchema, ...errors },
        },
      },
      async (request) => view(await orchestrator.extend(bindTenant(request), request.params.id, request.body.minutes ?? 30)),
    );

    app.post(
      '/v1/scenarios/:id/reset',
      {
        config: { scopes: ['forge:operate'], rateLimitClass: 'write' },
        schema: {
          tags: ['forge'],
          operationId: 'resetScenario',
          summary:
            "Rebuild the lab from its template's initial state; a graded scenario starts its next attempt (earlier attempts keep their scores and files), audited as scenario.reset",
          params: ScenarioParams,
          body: Type.Object({}, { additionalProperties: false }),
          response: { 200: ScenarioSchema, ...errors },
        },
      },
      async (request) => view(await labErrors(orchestrator.reset(bindTenant(request), request.params.id, actorOf(request.principal)))),
    );

    app.delete(
      '/v1/scenarios/:id',
      {
        config: { scopes: ['forge:operate'], rateLimitClass: 'write' },
        schema: {
          tags: ['forge'],
          operationId: 'destroyScenario',
          summary: 'Destroy the lab',
          params: ScenarioParams,
          response: { 200: ScenarioSchema, ...errors },
        },
      },
      async (request) => view(await orchestrator.destroy(bindTenant(request), request.params.id)),
    );
  };
}

/** The answer shape of a scenario (runtime_ref is internal). */
function view(s: Scenario) {
  const { runtime_ref: _internal, ...rest } = s;
  return { ...rest, devices: s.devices.map((d) => ({ name: d.name, kind: d.kind, addresses: d.addresses.map((a) => ({ ...a })) })) };
}

/** A lab the runtime could not build is 503 naming why (the scenario is then `failed`). */
async function labErrors<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof LabRuntimeError) throw new AppError('unavailable', `the lab could not be built: ${err.message}`, { reason: `lab_${err.code}` });
    throw err;
  }
}
