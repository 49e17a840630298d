import websocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { loadAccessAssets } from './assets.js';
import type { AccessContext } from './context.js';
import { registerLabRoutes } from './lab-routes.js';
import { registerPageRoutes } from './page-routes.js';
import { registerResultRoutes } from './result-routes.js';
import { registerResetRoute } from './reset-route.js';
import { registerTerminalRoute } from './terminal-route.js';
import type { TerminalSessions } from './terminals.js';

export interface AccessModule {
  readonly plugin: FastifyPluginAsync;
  readonly terminals: TerminalSessions;
}

/** The access routes on one plugin: the page and its assets, the terminals, the lab's actions, results and End lab. */
export function accessPlugin(ctx: AccessContext): FastifyPluginAsync {
  return async (base) => {
    const app = base.withTypeProvider<TypeBoxTypeProvider>();
    const assets = await loadAccessAssets();
    await app.register(websocket, { options: { maxPayload: ctx.limits.maxMessageBytes } });
    app.addHook('onClose', async () => ctx.terminals.closeAll('the server is shutting down'));
    registerPageRoutes(app, ctx, assets);
    registerTerminalRoute(app, ctx);
    registerLabRoutes(app, ctx);
    registerResultRoutes(app, ctx);
    registerResetRoute(app, ctx);
  };
}
