import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { BindTenant } from '../platform/auth/tenant.js';
import { hasScope } from '../platform/auth/scopes.js';
import { AppError } from '../platform/http/problem.js';
import { problemResponses } from '../platform/http/problem-schema.js';
import type { LedgerName } from '../platform/db/schema.js';
import type { LedgerService } from './service.js';

const LogQuery = Type.Optional(
  Type.Union([Type.Literal('decisions'), Type.Literal('audit')], { default: 'decisions', description: 'which log of the tenant' }),
);
const Size = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const CheckpointSchema = Type.Object({
  origin: Type.String(),
  tree_size: Type.Integer(),
  root_hash: Type.String({ description: 'base64 SHA-256' }),
  note: Type.String({ description: 'C2SP signed note (tlog-checkpoint)' }),
  key_id: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
  verifier_keys: Type.Array(Type.String(), { description: 'vkeys of every key that signed checkpoints (rotation)' }),
});
const errors = problemResponses(400, 401, 403, 422);
const MAX_ENTRIES_PAGE = 1000;

/** The tenant-bound ledger API: checkpoint, inclusion and consistency proofs, entries. */
export function ledgerRoutes(deps: { ledger: LedgerService; bindTenant: BindTenant }): FastifyPluginAsync {
  const { ledger, bindTenant } = deps;
  /** The decisions log needs decisions:read; the audit log is for admins. */
  const authorizeLog = (request: Parameters<BindTenant>[0], log: LedgerName) => {
    if (log === 'audit' && !hasScope(request.principal?.scopes ?? [], 'admin'))
      throw new AppError('missing_scope', 'the audit log needs the admin scope', { missing_scopes: ['admin'] });
    return bindTenant(request);
  };
  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/ledger/checkpoint',
      {
        config: { scopes: ['decisions:read'] },
        schema: {
          tags: ['ledger'],
          operationId: 'getLedgerCheckpoint',
          summary: 'Latest signed checkpoint; fresh=true issues one now if the log grew',
          querystring: Type.Object({ log: LogQuery, fresh: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
          response: { 200: CheckpointSchema, ...errors },
        },
      },
      async (request) => {
        const log = request.query.log ?? 'decisions';
        const tenant = authorizeLog(request, log);
        const cp = await ledger.checkpoint(tenant, log, { fresh: request.query.fresh === true });
        return { ...cp, verifier_keys: await ledger.verifierKeys() };
      },
    );

    app.get(
      '/ledger/proof/inclusion',
      {
        config: { scopes: ['decisions:read'] },
        schema: {
          tags: ['ledger'],
          operationId: 'getInclusionProof',
          summary: 'RFC 9162 audit path proving entry `index` is in the log at `tree_size`',
          querystring: Type.Object(
            { log: LogQuery, index: Size, tree_size: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              log: Type.String(),
              index: Type.Integer(),
              tree_size: Type.Integer(),
              leaf_hash: Type.String(),
              root_hash: Type.String(),
              proof: Type.Array(Type.String()),
            }),
            ...errors,
          },
        },
      },
      async (request) => {
        const log = request.query.log ?? 'decisions';
        const tenant = authorizeLog(request, log);
        const { index, tree_size } = request.query;
        const r = await ledger.inclusion(tenant, log, index, tree_size);
        return {
          log,
          index,
          tree_size,
          leaf_hash: r.leafHash.toString('base64'),
          root_hash: r.root.toString('base64'),
          proof: r.proof.map((p) => p.toString('base64')),
        };
      },
    );

    app.get(
      '/ledger/proof/consistency',
      {
        config: { scopes: ['decisions:read'] },
        schema: {
          tags: ['ledger'],
          operationId: 'getConsistencyProof',
          summary: 'RFC 9162 proof that the log at `to` extends the log at `from`',
          // RFC 9162 2.1.4: a consistency proof is between sizes 0 < from <= to (nothing to prove from the empty tree).
          querystring: Type.Object(
            {
              log: LogQuery,
              from: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'the older tree size, 0 < from <= to' }),
              to: Size,
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              log: Type.String(),
              from: Type.Integer(),
              to: Type.Integer(),
              from_root: Type.String(),
              to_root: Type.String(),
              proof: Type.Array(Type.String()),
            }),
            ...errors,
          },
        },
      },
      async (request) => {
        const log = request.query.log ?? 'decisions';
        const tenant = authorizeLog(request, log);
        const { from, to } = request.query;
        const r = await ledger.consistency(tenant, log, from, to);
        return {
          log,
          from,
          to,
          from_root: r.fromRoot.toString('base64'),
          to_root: r.toRoot.toString('base64'),
          proof: r.proof.map((p) => p.toString('base64')),
        };
      },
    );

    app.get(
      '/ledger/entries',
      {
        config: { scopes: ['decisions:read'] },
        schema: {
          tags: ['ledger'],
          operationId: 'listLedgerEntries',
          summary: `Entries [start, end), at most ${MAX_ENTRIES_PAGE} per call`,
          querystring: Type.Object({ log: LogQuery, start: Size, end: Size }, { additionalProperties: false }),
          response: {
            200: Type.Object({
              log: Type.String(),
              entries: Type.Array(Type.Object({ index: Type.Integer(), leaf_hash: Type.String(), record: Type.Unknown() })),
            }),
            ...errors,
          },
        },
      },
      async (request) => {
        const log = request.query.log ?? 'decisions';
        const tenant = authorizeLog(request, log);
        const { start, end } = request.query;
        if (end < start) throw new AppError('validation_failed', 'querystring/end must not be below start');
        if (end - start > MAX_ENTRIES_PAGE) throw new AppError('validation_failed', `querystring/end: at most ${MAX_ENTRIES_PAGE} entries per call`);
        return { log, entries: await ledger.entries(tenant, log, start, end) };
      },
    );
  };
}
