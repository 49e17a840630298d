import { connect } from 'nats';
import { loadConfig } from '../../config/config.js';
import { ObserverHub } from '../../forge/telemetry/hub.js';
import { TELEMETRY_PREFIX, telemetrySubject, type TelemetryKind } from '../../forge/telemetry/events.js';
import type { Command } from '../command.js';
import { CliError, UsageError } from '../errors.js';
import { printErr } from '../output.js';

const KINDS: readonly TelemetryKind[] = ['lab', 'session', 'grading', 'heartbeat'];

export const observeCommand: Command = {
  name: 'observe',
  help: `Usage: frostgate observe [--tenant ID] [--kind lab|session|grading|heartbeat]

The observer hub: subscribes to the lab and service telemetry every FrostGate process publishes on
NATS (FG_NATS_URL), subjects ${TELEMETRY_PREFIX}.<tenant>.<kind>, and writes each event to stdout as
one JSON line labelled with tenant_id, kind, scenario_id, track and worker_id, for a log shipper
(promtail, then Loki) to collect. Runs until interrupted.

Events: lab (every state a scenario enters), session (a learner's terminal started or ended),
grading (a verdict with its score), heartbeat (a worker's capacity advert; tenant _platform).

Options:
  --tenant ID   only this tenant's events
  --kind K      only events of this kind
  -h, --help    this help

Example:
  FG_NATS_URL=nats://127.0.0.1:4222 frostgate observe --kind grading`,
  options: { tenant: { type: 'string' }, kind: { type: 'string' } },
  async run({ values }) {
    const kind = values.kind as string | undefined;
    if (kind !== undefined && !KINDS.includes(kind as TelemetryKind)) throw new UsageError(`--kind must be one of ${KINDS.join(', ')}`);
    const tenant = values.tenant as string | undefined;
    try {
      if (tenant) telemetrySubject(tenant, 'lab');
    } catch (err) {
      throw new UsageError(`--tenant: ${(err as Error).message}`);
    }
    const subject = `${TELEMETRY_PREFIX}.${tenant ?? '*'}.${kind ?? '*'}`;
    const { config } = loadConfig();
    if (!config.nats.url)
      throw new CliError('config_invalid', 'the observer hub needs FG_NATS_URL', 'set FG_NATS_URL to the NATS server the FrostGate processes use');
    const nc = await connect({ servers: config.nats.url, name: 'frostgate-observer', reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    const hub = new ObserverHub(nc, (line) => process.stdout.write(`${line}\n`), subject);
    await hub.start();
    printErr(`observing ${subject} on ${config.nats.url}`);
    await new Promise<void>((resolve) => {
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
    });
    await hub.stop();
    await nc.drain();
    return 0;
  },
};
