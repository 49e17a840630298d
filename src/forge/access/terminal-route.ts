import { Type } from '@sinclair/typebox';
import { AccessRefusedError, assertSameOrigin } from './grant.js';
import { CLOSE } from './protocol.js';
import type { RawData } from 'ws';
import type { EarlyFrame } from './terminal-session.js';
import { LAB_LIVE_STATES } from '../orchestrator/states.js';

import type { AccessApp, AccessContext } from './context.js';
import { ACCESS_ROUTES, DeviceParam, ScenarioParam, MAX_EARLY_FRAMES } from './route-schemas.js';

/** The WebSocket to a login shell in a device, checked on upgrade, closed when the lab ends. */
export function registerTerminalRoute(app: AccessApp, ctx: AccessContext): void {
  const { deps, now, terminals, upgradeGrants, authorize } = ctx;
  app.get(
    ACCESS_ROUTES.terminal,
    {
      websocket: true,
      config: {
        auth: 'token',
        openapiResponses: {
          101: {
            description: 'Switching Protocols: a WebSocket to the shell (text frames in and out; a JSON resize message); closed with a reason when access ends',
          },
        },
      },
      schema: {
        tags: ['forge'],
        operationId: 'openLabTerminal',
        summary: 'WebSocket to a login shell in a device (checked on upgrade: token, scenario, device, origin)',
        security: [{ scenarioAccessCookie: [] }],
        params: Type.Object({ scenario_id: ScenarioParam, device: DeviceParam }),
        querystring: Type.Object({
          session: Type.Optional(Type.String({ pattern: '^term_[A-Za-z0-9_-]{10,40}$' })),
          cols: Type.Integer({ minimum: 2, maximum: 500, default: 80 }),
          rows: Type.Integer({ minimum: 1, maximum: 200, default: 24 }),
        }),
      },
      preValidation: async (request) => {
        const { scenario_id, device } = request.params;
        assertSameOrigin(request, true);
        const grant = await authorize(request, scenario_id, undefined);
        if (!grant.scenario.devices.some((d) => d.name === device))
          throw new AccessRefusedError('unknown_device', `lab ${scenario_id} has no device ${device}`);
        upgradeGrants.set(request, grant);
      },
    },
    (socket, request) => {
      const grant = upgradeGrants.get(request)!;
      const { device } = request.params;
      const { session, cols, rows } = request.query;
      // The shell lives as long as the lab: at its end the lab is read again (it may have been
      // extended meanwhile, in this tab or another) and the socket closes only if it is over.
      let accessEnds: NodeJS.Timeout | undefined;
      const watchLabEnd = (endsAt: number) => {
        accessEnds = setTimeout(
          () => {
            deps.scenarios.get(grant.claims.tenant, grant.scenario.scenario_id).then(
              (s) => {
                const later = Date.parse(s.expires_at);
                if (LAB_LIVE_STATES.has(s.state) && later > now()) watchLabEnd(later);
                else socket.close(CLOSE.labGone, 'the lab has ended; reload the page');
              },
              () => socket.close(CLOSE.labGone, 'the lab has ended; reload the page'),
            );
          },
          Math.min(2 ** 31 - 1, Math.max(0, endsAt - now())),
        );
      };
      watchLabEnd(Math.min(Date.parse(grant.scenario.expires_at), grant.claims.expiresAt.getTime()));
      socket.once('close', () => clearTimeout(accessEnds));
      const owner = { scenarioId: grant.scenario.scenario_id, device, subject: grant.claims.subject };
      // Frames sent while the shell starts are kept (bounded by the socket's own limits) and handed over.
      const early: EarlyFrame[] = [];
      const keep = (data: RawData, isBinary: boolean) => {
        if (early.push([data, isBinary]) > MAX_EARLY_FRAMES) socket.close(CLOSE.policy, 'too many messages before the shell started');
      };
      socket.on('message', keep);
      terminals.open(owner, socket, { cols, rows }, session, early).then(
        (opened) => {
          socket.off('message', keep);
          if (!opened.ok) socket.close(opened.code, opened.reason);
        },
        (err: unknown) => {
          socket.off('message', keep);
          request.log.error({ err, scenario_id: owner.scenarioId, device }, 'could not start a learner shell');
          socket.close(CLOSE.internal, 'the shell could not be started');
        },
      );
    },
  );
}
