import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { CONSOLE_PAGE_ROUTES, PUBLIC_ROUTES, SIGN_IN_ROUTES, TOKEN_ROUTES } from '../../../src/core/auth/gate.js';
import { registeredRoutes } from '../../../src/platform/http/server.js';
import { ROLE_NAMES, type RoleName } from '../../../src/role-names.js';
import { startRoleApp } from '../../helpers/app.js';

interface Operation {
  operationId?: string;
  summary?: string;
  security?: Array<Record<string, string[]>>;
  'x-required-scopes'?: string[];
  parameters?: Array<{ $ref?: string; name?: string; in?: string }>;
  responses?: Record<string, { description?: string; content?: Record<string, unknown> }>;
}
interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, { type: string; in?: string; name?: string }>; parameters?: Record<string, { name: string; in: string }> };
}

/**
 * operationIds clients generate code from: they never change once released. A new route adds its
 * own; renaming one of these breaks every generated client, so it fails here.
 */
const RELEASED_OPERATION_IDS: Readonly<Record<string, string>> = {
  'GET /health/live': 'getLiveness',
  'GET /health/ready': 'getReadiness',
  'GET /health/detailed': 'getHealthDetails',
  'GET /metrics': 'getMetrics',
  'GET /openapi.json': 'getOpenApiDocument',
  'POST /tenants': 'createTenant',
  'GET /tenants': 'listTenants',
  'POST /keys': 'createKey',
  'GET /keys': 'listKeys',
  'GET /keys/{id}': 'getKey',
  'DELETE /keys/{id}': 'revokeKey',
  'POST /defend': 'defendEvent',
  'POST /ingest': 'ingestEvents',
  'GET /ingest/batches/{id}': 'getIngestBatch',
  'GET /decisions': 'listDecisions',
  'GET /decisions/active': 'listActiveBlocks',
  'GET /decisions/{id}': 'getDecision',
  'GET /v1/decisions': 'getBouncerDecisions',
  'GET /v1/decisions/stream': 'streamBouncerDecisions',
  'POST /governance/changes': 'proposeChange',
  'GET /governance/changes': 'listChanges',
  'GET /governance/changes/{id}': 'getChange',
  'POST /governance/changes/{id}/approve': 'approveChange',
  'POST /governance/changes/{id}/reject': 'rejectChange',
  'POST /governance/changes/{id}/withdraw': 'withdrawChange',
  'POST /governance/changes/{id}/canary': 'canaryChange',
  'POST /governance/changes/{id}/deploy': 'deployChange',
  'POST /governance/changes/{id}/rollback': 'rollbackChange',
  'GET /ledger/checkpoint': 'getLedgerCheckpoint',
  'GET /ledger/proof/inclusion': 'getInclusionProof',
  'GET /ledger/proof/consistency': 'getConsistencyProof',
  'GET /ledger/entries': 'listLedgerEntries',
  'POST /v1/spawn': 'spawnLab',
  'POST /api/spawn': 'spawnLabAlias',
  'POST /v1/entitlements/exchange': 'exchangeReceipt',
  'POST /v1/billing/stripe/webhook': 'receiveStripeWebhook',
  'POST /v1/scenarios': 'createScenario',
  'GET /v1/scenarios/{id}': 'getScenario',
  'POST /v1/scenarios/{id}/extend': 'extendScenario',
  'POST /v1/scenarios/{id}/reset': 'resetScenario',
  'DELETE /v1/scenarios/{id}': 'destroyScenario',
  'POST /internal/scenario/{id}/complete': 'completeScenario',
  'GET /v1/scores/{scenario_id}': 'getScore',
  'GET /v1/scores': 'listScores',
  'GET /v1/access/{scenario_id}': 'openLabPage',
  'GET /v1/access/{scenario_id}/assets/{name}': 'getLabAsset',
  'GET /v1/access/{scenario_id}/terminal/{device}': 'openLabTerminal',
  'GET /v1/access/{scenario_id}/status': 'getLabStatus',
  'POST /v1/access/{scenario_id}/extend': 'extendLab',
  'POST /v1/access/{scenario_id}/submit': 'submitLab',
  'POST /v1/access/{scenario_id}/hints': 'unlockLabHint',
  'POST /v1/access/{scenario_id}/end': 'endLab',
  'GET /v1/access/{scenario_id}/results/{name}': 'downloadLabResult',
  'GET /v1/catalog': 'getCatalog',
  'POST /v1/receipts': 'issueReceipt',
};

const openApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** Every $ref in the document, which must point inside it. */
function refsOf(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refsOf(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refsOf(v, out);
    }
  }
  return out;
}

function resolvePointer(doc: unknown, ref: string): unknown {
  return ref
    .slice(2)
    .split('/')
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), doc);
}

async function documentOf(role: RoleName): Promise<{ doc: OpenApiDocument; routes: ReturnType<typeof registeredRoutes> }> {
  const t = await startRoleApp(role);
  try {
    const res = await t.app.inject({ url: '/openapi.json', headers: { 'x-api-key': t.adminKey } });
    assert.equal(res.statusCode, 200, res.body);
    return { doc: res.json<OpenApiDocument>(), routes: registeredRoutes(t.app).filter((r) => r.method !== 'HEAD') };
  } finally {
    await t.close();
  }
}

describe('the OpenAPI document is the contract of every route', () => {
  const idsSeen = new Map<string, string>();

  for (const role of ROLE_NAMES) {
    it(`role ${role}: every registered route is documented with its method, scopes, security, operationId, summary and problem+json errors, and the document is valid OpenAPI 3.1`, async () => {
      const { doc, routes } = await documentOf(role);
      assert.equal(doc.openapi, '3.1.0');
      const validator = new Validator();
      const result = await validator.validate(structuredClone(doc) as unknown as Parameters<Validator['validate']>[0]);
      assert.equal(validator.version, '3.1');
      assert.ok(result.valid, `not valid OpenAPI 3.1: ${JSON.stringify(result.errors, null, 1)?.slice(0, 3000)}`);
      for (const ref of refsOf(doc)) {
        assert.match(ref, /^#\/components\//, ref);
        assert.ok(resolvePointer(doc, ref) !== undefined, `${ref} resolves`);
      }
      const schemes = doc.components.securitySchemes;
      assert.deepEqual(doc.components.parameters?.TenantId && { name: doc.components.parameters.TenantId.name, in: doc.components.parameters.TenantId.in }, {
        name: 'X-Tenant-Id',
        in: 'header',
      });

      const operationIds = new Set<string>();
      const documented = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
      assert.equal(documented, routes.length, `the document has one operation per registered route (${role})`);
      for (const route of routes) {
        const id = `${route.method} ${openApiPath(route.url)}`;
        const op = doc.paths[openApiPath(route.url)]?.[route.method.toLowerCase()];
        assert.ok(op, `${role}: ${id} is in the document`);

        assert.ok(op.operationId && /^[a-z][A-Za-z0-9]+$/.test(op.operationId), `${id}: operationId ${op.operationId}`);
        assert.ok(!operationIds.has(op.operationId), `${id}: operationId ${op.operationId} is unique`);
        operationIds.add(op.operationId);
        if (RELEASED_OPERATION_IDS[id]) assert.equal(op.operationId, RELEASED_OPERATION_IDS[id], `${id}: a released operationId never changes`);
        const before = idsSeen.get(id);
        if (before) assert.equal(op.operationId, before, `${id}: the same operationId in every role`);
        idsSeen.set(id, op.operationId);
        assert.ok(op.summary && op.summary.length >= 10, `${id}: a summary`);

        // Who may call it: exactly what the gate enforces.
        assert.deepEqual(op['x-required-scopes'], [...route.scopes], `${id}: x-required-scopes`);
        const gateKey = `${route.method} ${route.url}`;
        if (route.auth === 'public') {
          assert.ok(PUBLIC_ROUTES.has(gateKey), `${id} is on the gate's public list`);
          assert.deepEqual(op.security, [], `${id}: a public route needs no credential`);
        } else if (route.auth === 'token') {
          assert.ok(TOKEN_ROUTES.has(gateKey), `${id} is on the gate's token list`);
          assert.ok(op.security && op.security.length > 0, `${id}: a token route declares its own credential`);
          for (const requirement of op.security) {
            for (const scheme of Object.keys(requirement)) {
              assert.ok(schemes[scheme], `${id}: security scheme ${scheme} is defined`);
              assert.notEqual(scheme, 'apiKey', `${id}: a token route takes no API key`);
            }
          }
        } else if (route.auth === 'sign_in') {
          assert.ok(SIGN_IN_ROUTES.has(gateKey), `${id} is on the gate's sign-in list`);
          assert.deepEqual(op.security, [], `${id}: a sign-in step needs no credential`);
        } else if (route.auth === 'console_page') {
          assert.ok(CONSOLE_PAGE_ROUTES.has(gateKey), `${id} is on the gate's console page list`);
          assert.deepEqual(op.security, [{ consoleSession: [] }], `${id}: the console session`);
        } else {
          // A key, or a console session, with the same scopes: one authorization path.
          assert.deepEqual(op.security, [{ apiKey: [...route.scopes] }, { consoleSession: [...route.scopes] }], `${id}: the API key with its scopes`);
          assert.ok(
            op.parameters?.some((p) => p.$ref === '#/components/parameters/TenantId'),
            `${id}: documents X-Tenant-Id`,
          );
          for (const status of ['401', '403', '429']) assert.ok(op.responses?.[status], `${id}: documents ${status}`);
        }

        // Errors are problem+json (the learner's lab page and the console's sign-in also answer refusals as an HTML page).
        const responses = op.responses ?? {};
        // Sign-in steps answer a person mid-redirect, so their refusals are pages too.
        const servesHtml = Object.keys(responses['200']?.content ?? {}).includes('text/html') || route.auth === 'sign_in';
        assert.ok(responses.default, `${id}: documents its other errors`);
        for (const [status, res] of Object.entries(responses)) {
          assert.ok(res.description && res.description !== 'Default Response', `${id} ${status}: a description`);
          if (status !== 'default' && !/^[45]/.test(status)) continue;
          const types = Object.keys(res.content ?? {});
          assert.ok(types.length > 0, `${id} ${status}: a body`);
          assert.ok(!types.includes('application/json'), `${id} ${status}: errors are not declared application/json`);
          assert.ok(types.includes('application/problem+json') || (servesHtml && types.includes('text/html')), `${id} ${status}: ${types.join(', ')}`);
        }
      }
    });
  }

  it('every released operationId is served by some role', () => {
    for (const [id, operationId] of Object.entries(RELEASED_OPERATION_IDS)) assert.equal(idsSeen.get(id), operationId, id);
  });
});
