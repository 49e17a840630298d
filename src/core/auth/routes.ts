import { Type } from '@sinclair/typebox';
import { actorOf } from '../../platform/auth/principal.js';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { InvalidDurationError, parseDuration } from '../../platform/duration.js';
import { AppError } from '../../platform/http/problem.js';
import { problemResponses } from '../../platform/http/problem-schema.js';
import { SCOPES, hasScope } from '../../platform/auth/scopes.js';
import type { KeyStore, Minter } from './store.js';
import type { BindTenant } from '../../platform/auth/tenant.js';
import type { KeyResolver } from './key-resolver.js';
import { KEY_REVOKED_SUBJECT } from './key-resolver.js';
import type { Bus } from '../../platform/bus/bus.js';

const TenantId = Type.String({
  minLength: 2,
  maxLength: 63,
  pattern: '^[a-z0-9][a-z0-9-]{1,62}$',
  description: "lowercase letters, digits, dashes; not 'unknown'",
});
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

const TenantSchema = Type.Object({ id: Type.String(), name: Type.String(), created_at: Timestamp, disabled_at: NullableTimestamp });
const KeyInfoSchema = Type.Object({
  id: Type.String(),
  tenant_id: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Type.String()),
  created_at: Timestamp,
  expires_at: NullableTimestamp,
  revoked_at: NullableTimestamp,
  last_used_at: NullableTimestamp,
  created_by: Type.Union([Type.String(), Type.Null()], { description: "the key (or operator tool: 'cli', 'bootstrap') that minted this one" }),
  created_by_identity: Type.Union([Type.String(), Type.Null()], { description: "the minting principal's identity: the minting key's owner, or 'operator'" }),
  owner: Type.String({ description: 'the identity the key acts for; governance approvals compare identities and who minted each key' }),
});
const CreatedKeySchema = Type.Intersect([KeyInfoSchema, Type.Object({ key: Type.String({ description: 'the full key; shown once, store it now' }) })]);

const ScopeList = Type.Array(Type.Union(SCOPES.map((s) => Type.Literal(s))), { minItems: 1, uniqueItems: true });
const CreateTenantBody = Type.Object(
  {
    id: TenantId,
    name: Type.Optional(Type.String({ maxLength: 200 })),
    first_key: Type.Optional(
      Type.Object(
        { scopes: ScopeList, name: Type.Optional(Type.String({ maxLength: 200 })), owner: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
        { additionalProperties: false, description: "the new tenant's first key, created with it and shown once (e.g. keys:admin)" },
      ),
    ),
  },
  { additionalProperties: false },
);
const CreateKeyBody = Type.Object(
  {
    scopes: ScopeList,
    name: Type.Optional(Type.String({ maxLength: 200 })),
    expires_in: Type.Optional(Type.String({ description: 'e.g. 90d, 12h, 30m', maxLength: 20 })),
    tenant_id: Type.Optional(Type.String({ maxLength: 63 })),
    owner: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description:
          "the creating key's own identity (the default); any other is refused, 403 " +
          'owner_not_vouched: the operator enrols people (frostgate keys create --owner)',
      }),
    ),
  },
  { additionalProperties: false },
);
const KeyIdParams = Type.Object({ id: Type.String({ pattern: '^key_[a-z2-9]{12}$' }) });

export interface AuthRouteDeps {
  readonly store: KeyStore;
  readonly resolver: KeyResolver;
  readonly bindTenant: BindTenant;
  readonly bus: Pick<Bus, 'publish'>;
  /**
   * The operator's tenant (FG_BOOTSTRAP_TENANT): only its admin keys manage tenants. An admin key
   * of any other tenant is an admin of that tenant alone and must not even list the others.
   */
  readonly platformTenant: string;
}

export function authRoutes(deps: AuthRouteDeps): FastifyPluginAsync {
  const { store, bindTenant } = deps;
  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    const errors = problemResponses(400, 401, 403, 404, 409);
    /**
     * A key belongs to the identity of the key that creates it (a holder cannot invent "someone
     * else" to approve their own governance change). The dev-only global key and auth-disabled
     * mode stand for the operator and may name owners.
     */
    const minterOf = (request: FastifyRequest): Minter => {
      const p = request.principal;
      if (p?.kind === 'api_key' && p.keyId) return { kind: 'principal', id: p.keyId, identity: p.subject };
      // A console session mints for the signed-in person, like their own key would.
      if (p?.kind === 'session') return { kind: 'principal', id: p.subject, identity: p.subject };
      return { kind: 'operator', id: p?.subject ?? 'unknown-principal', identity: p?.subject ?? 'unknown-principal' };
    };
    const requirePlatformAdmin = (request: FastifyRequest) => {
      const p = request.principal;
      // Global and auth-disabled principals exist only in dev and test, and act for every tenant.
      if ((p?.kind === 'api_key' || p?.kind === 'session') && p.tenantId !== deps.platformTenant) {
        throw new AppError('forbidden', "managing tenants needs an admin key of the platform operator's tenant");
      }
    };

    app.post(
      '/tenants',
      {
        config: { scopes: ['admin'] },
        schema: {
          tags: ['tenants'],
          operationId: 'createTenant',
          summary: 'Create a tenant (platform admins), optionally with its first key (shown once)',
          body: CreateTenantBody,
          response: { 201: Type.Intersect([TenantSchema, Type.Object({ first_key: Type.Optional(CreatedKeySchema) })]), ...errors },
        },
      },
      async (request, reply) => {
        requirePlatformAdmin(request);
        const actor = actorOf(request.principal);
        const first = request.body.first_key;
        // A platform admin is the operator here: the first key acts for whoever it names, else for
        // itself (not for the creating admin: it belongs to another tenant's people).
        const minter: Minter = { kind: 'operator', id: actor, identity: request.principal?.subject ?? actor };
        const tenant = await store.createTenant(
          request.body.id,
          request.body.name ?? '',
          actor,
          first
            ? {
                scopes: first.scopes,
                ...(first.name !== undefined ? { name: first.name } : {}),
                ...(first.owner !== undefined ? { owner: first.owner } : {}),
                minter,
              }
            : undefined,
        );
        return reply.code(201).send(tenant);
      },
    );

    app.get(
      '/tenants',
      {
        config: { scopes: ['admin'] },
        schema: {
          tags: ['tenants'],
          operationId: 'listTenants',
          summary: 'List tenants (platform admins)',
          response: { 200: Type.Object({ tenants: Type.Array(TenantSchema) }), ...errors },
        },
      },
      async (request) => {
        requirePlatformAdmin(request);
        return { tenants: await store.listTenants() };
      },
    );

    app.post(
      '/keys',
      {
        config: { scopes: ['keys:admin'] },
        schema: {
          tags: ['keys'],
          operationId: 'createKey',
          summary: "Create an API key in the caller's tenant; the key is shown once",
          body: CreateKeyBody,
          response: { 201: CreatedKeySchema, ...errors },
        },
      },
      async (request, reply) => {
        const tenantId = bindTenant(request, request.body.tenant_id);
        const held = request.principal?.scopes ?? [];
        const escalation = request.body.scopes.filter((s) => !hasScope(held, s));
        if (escalation.length > 0)
          throw new AppError('missing_scope', `a key cannot grant scopes it does not hold: ${escalation.join(', ')}`, { missing_scopes: escalation });
        let expiresAt: Date | undefined;
        if (request.body.expires_in !== undefined) {
          try {
            expiresAt = new Date(Date.now() + parseDuration(request.body.expires_in));
          } catch (err) {
            if (err instanceof InvalidDurationError) throw new AppError('validation_failed', `body/expires_in: ${err.message}`);
            throw err;
          }
        }
        const created = await store.createKey({
          tenantId,
          scopes: request.body.scopes,
          ...(request.body.name !== undefined ? { name: request.body.name } : {}),
          ...(expiresAt ? { expiresAt } : {}),
          minter: minterOf(request),
          ...(request.body.owner !== undefined ? { owner: request.body.owner } : {}),
        });
        return reply.code(201).send(created);
      },
    );

    app.get(
      '/keys',
      {
        config: { scopes: ['keys:admin'] },
        schema: {
          tags: ['keys'],
          operationId: 'listKeys',
          summary: "List the caller's tenant's keys (never their secrets)",
          response: { 200: Type.Object({ keys: Type.Array(KeyInfoSchema) }), ...errors },
        },
      },
      async (request) => ({ keys: await store.listKeys(bindTenant(request)) }),
    );

    app.get(
      '/keys/:id',
      {
        config: { scopes: ['keys:admin'] },
        schema: {
          tags: ['keys'],
          operationId: 'getKey',
          summary: "One key of the caller's tenant: scopes, owner, expiry, revocation and last use (never its secret)",
          params: KeyIdParams,
          response: { 200: KeyInfoSchema, ...errors },
        },
      },
      async (request) => store.getKey(bindTenant(request), request.params.id),
    );

    app.delete(
      '/keys/:id',
      {
        config: { scopes: ['keys:admin'] },
        schema: {
          tags: ['keys'],
          operationId: 'revokeKey',
          summary: 'Revoke a key; effective at once on this node, within the documented bound elsewhere',
          params: KeyIdParams,
          response: { 200: KeyInfoSchema, ...errors },
        },
      },
      async (request) => {
        // Audit entries name the key that acted (its owner is on the key's own record).
        const revoked = await store.revokeKey(bindTenant(request), request.params.id, actorOf(request.principal));
        deps.resolver.invalidate(revoked.id);
        await deps.bus.publish(KEY_REVOKED_SUBJECT, { id: revoked.id });
        return revoked;
      },
    );
  };
}
