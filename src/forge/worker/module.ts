import { hostname } from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import type { Platform } from '../../platform/platform.js';
import { NetnsLabRuntime } from '../runtime/netns/driver.js';
import { registerLabGauges } from '../orchestrator/metrics.js';
import { WorkerAgent } from './agent.js';
import { FleetAuth, fleetSecretFromConfig } from './channel.js';
import { BusTelemetry } from '../telemetry/publisher.js';
import { PLATFORM_TENANT } from '../telemetry/events.js';

export interface WorkerModule {
  readonly agent: WorkerAgent;
}

/** FG_WORKER_ID, else the host name made into a valid worker id. */
export function workerIdFrom(configured: string | undefined): string {
  if (configured) return configured;
  const fromHost = hostname()
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 63);
  return fromHost || 'worker';
}

/**
 * The worker role of a server process: a worker agent building labs with the netns runtime
 * under `<FG_DATA_DIR>/labs`, taking jobs from orchestrators over NATS JetStream (FG_NATS_URL).
 */
export async function createWorkerModule(platform: Pick<Platform, 'config' | 'log' | 'health' | 'onClose' | 'metrics' | 'bus'>): Promise<WorkerModule> {
  const { config } = platform;
  if (!config.nats.url) throw new Error('the worker role needs FG_NATS_URL: orchestrators place labs on workers through NATS JetStream');
  // Before anything starts: a worker without the fleet secret could not answer anyone.
  const auth = new FleetAuth(fleetSecretFromConfig(config));
  const runtime = new NetnsLabRuntime({ stateDir: path.join(config.dataDir, 'labs'), egressDryRun: config.egress.dryRun });
  const nc = await connect({
    servers: config.nats.url,
    name: 'frostgate-worker',
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    timeout: 3000,
  });
  const telemetry = new BusTelemetry(platform.bus, (err) => platform.log.debug({ err }, 'telemetry not published'));
  const agent = new WorkerAgent({
    nc,
    runtime,
    workerId: workerIdFrom(config.forge.worker.id),
    capacity: config.forge.worker.capacity,
    heartbeatMs: config.forge.worker.heartbeatMs,
    auth,
    onError: (err, context) => platform.log.warn({ err, context }, 'worker agent operation failed'),
    onAdvertise: (advert) =>
      telemetry.emit({
        kind: 'heartbeat',
        event: 'advert',
        tenant_id: PLATFORM_TENANT,
        worker_id: advert.workerId,
        details: { capacity: advert.capacity, labs: advert.labs, driver: advert.driver },
      }),
  });
  await agent.start();
  registerLabGauges(platform.metrics.registry, { worker: agent.workerId, runtime });
  platform.log.info({ worker_id: agent.workerId, boot_id: agent.bootId, capacity: config.forge.worker.capacity }, 'worker agent taking lab jobs');
  platform.health.register({
    name: 'worker',
    check: async () => ({ worker_id: agent.workerId, driver: runtime.driver, dry_run: runtime.egressDryRun, capacity: config.forge.worker.capacity }),
  });
  platform.onClose(async () => {
    await agent.stop();
    await nc.drain().catch(() => undefined);
  });
  return { agent };
}
