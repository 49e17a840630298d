import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { JetStreamClient, KV, NatsConnection, Subscription } from 'nats';
import { AppError } from '../../platform/http/problem.js';
import type { ExecOptions, ExecResult, LabHandle, LabRuntime, LabSpec, LabSummary, ShellCommand, ShellPty } from '../runtime/types.js';
import type { FleetAuth } from '../worker/channel.js';
import { RemoteShell } from './remote-shell.js';
import {
  advertContext,
  encode,
  ensureFleetResources,
  fromWireError,
  isJobReply,
  isWorkerAdvert,
  jobReplyContext,
  jobSubject,
  replyContext,
  rpcSubject,
  type CreateJob,
  type JobReply,
  type RpcReply,
  type RpcRequest,
  type RpcResults,
  type WorkerAdvert,
  WORKER_FULL,
} from '../worker/protocol.js';

export interface WorkerFleetOptions {
  /** Seals what the fleet sends and checks what workers answer (the fleet secret). */
  readonly auth: FleetAuth;
  /** A worker whose advert has not changed for this long is dead. Default: 5 heartbeats of the worker. */
  readonly deadAfterMs?: number;
  /** How often the adverts are read. Default 1 s. */
  readonly pollMs?: number;
  /** How long a lab build on a worker may take. Default 2 min. */
  readonly createTimeoutMs?: number;
  /** Deadline of a request that is not an exec (exec: its own timeout plus this). Default 15 s. */
  readonly rpcTimeoutMs?: number;
  readonly clock?: () => number;
}

export interface FleetEvents {
  /** A worker stopped heartbeating: these scenarios were placed on it. */
  readonly workerLost: (workerId: string, scenarioIds: readonly string[]) => Promise<void>;
  /** A worker that was dead (or restarted) heartbeats again: its leftovers should be reconciled. */
  readonly workerReturned: (workerId: string) => Promise<void>;
  readonly error: (err: unknown) => void;
}

interface WorkerView {
  advert: WorkerAdvert;
  revision: number;
  /** Local time the advert last changed (liveness never compares clocks of two hosts). */
  seenAt: number;
  alive: boolean;
  /** Builds this orchestrator sent that the advert does not count yet. */
  reserved: number;
}

interface PendingJob {
  readonly workerId: string;
  readonly resolve: (reply: JobReply) => void;
  readonly reject: (err: Error) => void;
}

/**
 * A LabRuntime whose labs live on worker agents (src/forge/worker): create() places the lab on
 * the live worker with the most free capacity through the JetStream work queue; the other
 * operations go to the worker holding the scenario. It watches the workers' heartbeats and
 * reports a worker that died (its scenarios are failed by the orchestrator) and one that came
 * back (the orchestrator reconciles it, removing the labs of those failed scenarios).
 */
export class WorkerFleet implements LabRuntime {
  readonly driver = 'workers';
  private ncRef: NatsConnection | undefined;
  private readonly opts: Required<Omit<WorkerFleetOptions, 'deadAfterMs' | 'auth'>> & { deadAfterMs: number | undefined };
  private readonly auth: FleetAuth;
  private readonly instance = randomBytes(8).toString('hex');
  private readonly workers = new Map<string, WorkerView>();
  private readonly placementCache = new Map<string, string>();
  private readonly pendingJobs = new Map<string, PendingJob>();
  private events: FleetEvents = { workerLost: async () => undefined, workerReturned: async () => undefined, error: () => undefined };
  private handles: { js: JetStreamClient; workersKv: KV; placements: KV } | undefined;
  private replies: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();

  constructor(opts: WorkerFleetOptions) {
    this.auth = opts.auth;
    this.opts = {
      deadAfterMs: opts.deadAfterMs,
      pollMs: opts.pollMs ?? 1000,
      createTimeoutMs: opts.createTimeoutMs ?? 120_000,
      rpcTimeoutMs: opts.rpcTimeoutMs ?? 15_000,
      clock: opts.clock ?? (() => Date.now()),
    };
  }

  private get replySubject(): string {
    return `fg.labreply.${this.instance}`;
  }

  private get nc(): NatsConnection {
    if (!this.ncRef) throw new Error('WorkerFleet.start() was not called');
    return this.ncRef;
  }

  /** Opens the queue and buckets, reads the adverts once, then watches them every pollMs. */
  async start(nc: NatsConnection, events: FleetEvents): Promise<void> {
    this.ncRef = nc;
    this.events = events;
    const { workers, placements } = await ensureFleetResources(this.nc);
    this.handles = { js: this.nc.jetstream(), workersKv: workers, placements };
    this.replies = this.nc.subscribe(this.replySubject, {
      callback: (err, msg) => {
        if (err) return this.events.error(err);
        // Only a reply sealed for one of our pending jobs counts (a forged "built" never resolves one).
        for (const [jobId, pending] of this.pendingJobs) {
          let reply: unknown;
          try {
            reply = this.auth.open(jobReplyContext(jobId), msg.data);
          } catch {
            continue;
          }
          if (isJobReply(reply) && reply.jobId === jobId && reply.workerId === pending.workerId) pending.resolve(reply);
          return;
        }
      },
    });
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.opts.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.replies?.unsubscribe();
    await this.polling;
    for (const [id, p] of this.pendingJobs) {
      p.reject(new Error('the orchestrator is stopping'));
      this.pendingJobs.delete(id);
    }
  }

  /** Live workers and what they advertise, most free capacity first (the placement order). */
  liveWorkers(): Array<{ workerId: string; capacity: number; labs: number; free: number }> {
    return [...this.workers.values()]
      .filter((w) => w.alive)
      .map((w) => ({
        workerId: w.advert.workerId,
        capacity: w.advert.capacity,
        labs: w.advert.labs + w.reserved,
        free: w.advert.capacity - w.advert.labs - w.reserved,
      }))
      .sort((a, b) => b.free - a.free || a.workerId.localeCompare(b.workerId));
  }

  /** The worker a scenario was placed on, if any. */
  async placementOf(scenarioId: string): Promise<string | undefined> {
    const cached = this.placementCache.get(scenarioId);
    if (cached) return cached;
    const entry = await this.kv().placements.get(scenarioId);
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
    const workerId = entry.json<{ workerId?: unknown }>().workerId;
    if (typeof workerId !== 'string') return undefined;
    this.placementCache.set(scenarioId, workerId);
    return workerId;
  }

  /** Reads every advert, then declares dead the workers that stopped changing. Never throws. */
  poll(): Promise<void> {
    this.polling = this.polling.then(() => this.pollOnce()).catch(this.events.error);
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    const now = this.opts.clock();
    const { workersKv } = this.kv();
    for (const key of await collect(await workersKv.keys())) {
      const entry = await workersKv.get(key);
      if (!entry || entry.operation !== 'PUT' || entry.length === 0) continue;
      let advert: unknown;
      try {
        // Adverts are rewritten every heartbeat: the same one read again is not a replay.
        advert = this.auth.open(advertContext(key), entry.value, true);
      } catch (err) {
        if (!this.workers.has(key)) this.events.error(err);
        continue;
      }
      if (!isWorkerAdvert(advert) || advert.workerId !== key) continue;
      const known = this.workers.get(key);
      if (!known) {
        // First sight (also after an orchestrator restart): alive until proven otherwise.
        this.workers.set(key, { advert, revision: entry.revision, seenAt: now, alive: true, reserved: 0 });
        continue;
      }
      if (entry.revision === known.revision) continue;
      const restarted = known.advert.bootId !== advert.bootId;
      const wasDead = !known.alive;
      known.advert = advert;
      known.revision = entry.revision;
      known.seenAt = now;
      known.alive = true;
      if (wasDead || restarted) await this.events.workerReturned(key).catch(this.events.error);
    }
    for (const w of this.workers.values()) {
      const deadAfter = this.opts.deadAfterMs ?? 5 * w.advert.heartbeatMs;
      if (!w.alive || now - w.seenAt <= deadAfter) continue;
      w.alive = false;
      await this.workerDied(w.advert.workerId);
    }
  }

  private async workerDied(workerId: string): Promise<void> {
    for (const [jobId, p] of this.pendingJobs) {
      if (p.workerId !== workerId) continue;
      this.pendingJobs.delete(jobId);
      p.reject(new Error(`worker ${workerId} stopped heartbeating while building the lab`));
    }
    const { placements } = this.kv();
    const lost: string[] = [];
    for (const scenarioId of await collect(await placements.keys())) {
      if ((await this.placementOf(scenarioId)) === workerId) lost.push(scenarioId);
    }
    await this.events.workerLost(workerId, lost).catch(this.events.error);
  }

  /**
   * Places the lab on the live worker with the most free capacity. A worker that turns out to
   * be full (adverts lag behind other orchestrators' placements) refuses the job; the next
   * worker in order is tried.
   */
  async create(spec: LabSpec): Promise<LabHandle> {
    const tried = new Set<string>();
    for (;;) {
      const target = this.liveWorkers().find((w) => w.free > 0 && !tried.has(w.workerId));
      if (!target) {
        throw new AppError(
          'unavailable',
          'no worker agent has free lab capacity; try again later',
          { reason: 'no_worker_capacity', workers: this.liveWorkers().length },
          { 'retry-after': '30' },
        );
      }
      tried.add(target.workerId);
      const answer = await this.placeOn(target.workerId, spec);
      if (answer.ok) return answer.handle;
      if (answer.error.name === WORKER_FULL) continue;
      throw fromWireError(answer.error, target.workerId);
    }
  }

  private async placeOn(workerId: string, spec: LabSpec): Promise<JobReply> {
    const view = this.workers.get(workerId)!;
    view.reserved++;
    try {
      await this.kv().placements.put(spec.scenarioId, encode({ workerId, at: new Date(this.opts.clock()).toISOString() }));
      this.placementCache.set(spec.scenarioId, workerId);
      const jobId = randomBytes(12).toString('hex');
      const job: CreateJob = { jobId, spec, reply: this.replySubject, deadline: new Date(this.opts.clock() + this.opts.createTimeoutMs).toISOString() };
      const reply = new Promise<JobReply>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pendingJobs.delete(jobId);
          reject(new Error(`worker ${workerId} did not build the lab within ${this.opts.createTimeoutMs} ms`));
        }, this.opts.createTimeoutMs);
        timer.unref();
        const done = (fn: () => void) => {
          clearTimeout(timer);
          this.pendingJobs.delete(jobId);
          fn();
        };
        this.pendingJobs.set(jobId, { workerId, resolve: (r) => done(() => resolve(r)), reject: (e) => done(() => reject(e)) });
      });
      try {
        await this.kv().js.publish(jobSubject(workerId), this.auth.seal(jobSubject(workerId), job), { timeout: 5000 });
      } catch (err) {
        // Not queued (NATS unreachable): settle the waiter so nothing rejects unobserved.
        this.pendingJobs.get(jobId)?.reject(err as Error);
        await reply.catch(() => undefined);
        throw new AppError('unavailable', `the lab job could not be queued for worker ${workerId}: ${(err as Error).message}`, {
          reason: 'lab_queue_unavailable',
        });
      }
      const answer = await reply;
      view.advert = { ...view.advert, labs: answer.ok ? answer.labs : answer.error.name === WORKER_FULL ? view.advert.capacity : view.advert.labs };
      return answer;
    } finally {
      view.reserved--;
    }
  }

  async exec(scenarioId: string, device: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const { stdin, ...rest } = opts;
    const wire = { ...rest, ...(stdin !== undefined ? { stdinB64: Buffer.from(stdin).toString('base64') } : {}) };
    return this.call(await this.holder(scenarioId), { op: 'exec', scenarioId, device, argv, opts: wire }, (opts.timeoutMs ?? 30_000) + this.opts.rpcTimeoutMs);
  }

  /** A command line cannot run a shell on another host: terminals use openShell. */
  async spawnShell(scenarioId: string): Promise<ShellCommand> {
    throw new AppError('unavailable', `scenario ${scenarioId} runs on a worker agent; its shells are opened there (openShell)`, {
      reason: 'terminal_on_worker',
    });
  }

  /**
   * A learner shell in the lab, run by the worker agent holding it and relayed over NATS
   * (the worker's own connection: nothing dials into the worker). Output that arrives before the
   * worker's answer is kept for the caller.
   */
  async openShell(scenarioId: string, device: string, size: { cols: number; rows: number }): Promise<ShellPty> {
    const workerId = await this.holder(scenarioId);
    const stream = randomBytes(16).toString('hex');
    const shell = new RemoteShell(this.nc, this.auth, stream);
    try {
      const { pid } = await this.call(workerId, { op: 'shell', scenarioId, device, stream, cols: size.cols, rows: size.rows });
      shell.started(pid);
      return shell;
    } catch (err) {
      shell.abandon();
      throw err;
    }
  }

  async copyIn(scenarioId: string, device: string, hostPath: string, devicePath: string): Promise<void> {
    const contentB64 = (await readFile(hostPath)).toString('base64');
    await this.call(await this.holder(scenarioId), { op: 'copyIn', scenarioId, device, devicePath, contentB64 });
  }

  async copyOut(scenarioId: string, device: string, hostPath: string, devicePath: string): Promise<void> {
    const out = await this.call(await this.holder(scenarioId), { op: 'copyOut', scenarioId, device, devicePath });
    await writeFile(hostPath, Buffer.from(out.contentB64, 'base64'));
  }

  /** A lab on a dead worker is left for reconcile when the worker returns. */
  async destroy(scenarioId: string): Promise<void> {
    const workerId = await this.placementOf(scenarioId);
    if (!workerId) return;
    if (this.workers.get(workerId)?.alive) await this.call(workerId, { op: 'destroy', scenarioId });
    await this.forget(scenarioId);
  }

  /** The labs of every live worker (a worker that does not answer is left out). */
  async list(): Promise<LabSummary[]> {
    const all = await Promise.all(
      this.liveWorkers().map(async (w) => {
        try {
          const labs = await this.call(w.workerId, { op: 'list' });
          for (const lab of labs) if (lab.scenarioId) this.placementCache.set(lab.scenarioId, w.workerId);
          return labs;
        } catch (err) {
          this.events.error(err);
          return [];
        }
      }),
    );
    return all.flat();
  }

  async reconcile(keep: ReadonlySet<string>): Promise<{ removed: string[] }> {
    const removed: string[] = [];
    for (const w of this.liveWorkers()) {
      try {
        const res = await this.call(w.workerId, { op: 'reconcile', keep: [...keep] });
        removed.push(...res.removed);
      } catch (err) {
        this.events.error(err);
      }
    }
    for (const id of removed) if (id.startsWith('scn_')) await this.forget(id);
    return { removed };
  }

  private async forget(scenarioId: string): Promise<void> {
    this.placementCache.delete(scenarioId);
    await this.kv().placements.delete(scenarioId).catch(this.events.error);
  }

  private async holder(scenarioId: string): Promise<string> {
    const workerId = await this.placementOf(scenarioId);
    if (!workerId) throw new AppError('not_found', `scenario ${scenarioId} has no lab on any worker`);
    if (!this.workers.get(workerId)?.alive)
      throw new AppError('unavailable', `worker ${workerId} holding scenario ${scenarioId} is not heartbeating`, { reason: 'worker_down' });
    return workerId;
  }

  private async call<Op extends RpcRequest['op']>(
    workerId: string,
    req: Extract<RpcRequest, { op: Op }>,
    timeoutMs = this.opts.rpcTimeoutMs,
  ): Promise<RpcResults[Op]> {
    const sealed = this.auth.seal(rpcSubject(workerId), req);
    const msg = await this.nc.request(rpcSubject(workerId), sealed, { timeout: timeoutMs });
    // Sealed to this request: a reply from anyone but a holder of the secret, or to another request, is refused.
    const reply = this.auth.open(replyContext(this.auth.nonceOf(sealed)), msg.data) as RpcReply<RpcResults[Op]>;
    if (!reply.ok) throw fromWireError(reply.error, workerId);
    return reply.result;
  }

  private kv(): { js: JetStreamClient; workersKv: KV; placements: KV } {
    if (!this.handles) throw new Error('WorkerFleet.start() was not called');
    return this.handles;
  }
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const k of it) out.push(k);
  return out;
}
