import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ConsumerMessages, KV, NatsConnection, Subscription } from 'nats';
import type { LabRuntime } from '../runtime/types.js';
import { spawnShellPty } from '../runtime/pty.js';
import { FleetAuthError, type FleetAuth } from './channel.js';
import {
  advertContext,
  ensureFleetResources,
  ensureJobConsumer,
  isCreateJob,
  isRpcRequest,
  isTtyIn,
  jobConsumer,
  jobReplyContext,
  jobSubject,
  LAB_JOBS_STREAM,
  replyContext,
  rpcSubject,
  toWireError,
  TTY_PING_MS,
  TTY_SILENCE_MS,
  ttySubject,
  WORKER_FULL,
  WORKER_ID_PATTERN,
  type CreateJob,
  type JobReply,
  type RpcReply,
  type RpcRequest,
  type TtyOut,
  type WorkerAdvert,
} from './protocol.js';

export interface WorkerAgentOptions {
  readonly nc: NatsConnection;
  /** The local lab runtime (netns driver) labs are built with. */
  readonly runtime: LabRuntime;
  readonly workerId: string;
  readonly capacity: number;
  readonly heartbeatMs: number;
  /** Seals what the worker sends and checks what it receives (the fleet secret). */
  readonly auth: FleetAuth;
  /** Failures of the heartbeat and job loops (they keep running). */
  readonly onError?: (err: unknown, context: string) => void;
  /** Each capacity advert put in the fleet's bucket (telemetry). */
  readonly onAdvertise?: (advert: WorkerAdvert) => void;
}

/**
 * The worker role: builds the labs an orchestrator places on it, with its local runtime, and
 * serves exec/destroy/list/reconcile on them. It advertises its capacity every heartbeat; an
 * orchestrator that stops seeing it marks its labs failed, and removes them through reconcile
 * once it comes back (the worker keeps no list of its own: the scenarios table decides).
 */
export class WorkerAgent {
  readonly workerId: string;
  readonly bootId = randomBytes(8).toString('hex');
  private readonly nc: NatsConnection;
  private readonly runtime: LabRuntime;
  private readonly capacity: number;
  private readonly heartbeatMs: number;
  private readonly onError: (err: unknown, context: string) => void;
  private readonly onAdvertise: ((advert: WorkerAdvert) => void) | undefined;
  private readonly auth: FleetAuth;
  /** Learner shells relayed from here, closed when the agent stops. */
  private readonly shells = new Set<() => void>();
  private workers: KV | undefined;
  private rpc: Subscription | undefined;
  private jobs: ConsumerMessages | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Labs being built now (not yet in runtime.list()). */
  private building = 0;
  private labs = 0;
  /** Bumped whenever a lab is built or removed here, so a listing that raced it is discarded. */
  private labsChanged = 0;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(opts: WorkerAgentOptions) {
    if (!WORKER_ID_PATTERN.test(opts.workerId)) throw new Error(`worker id ${JSON.stringify(opts.workerId)} must be 1-63 characters of a-z, 0-9 and -`);
    this.workerId = opts.workerId;
    this.nc = opts.nc;
    this.runtime = opts.runtime;
    this.capacity = opts.capacity;
    this.heartbeatMs = opts.heartbeatMs;
    this.onError = opts.onError ?? (() => undefined);
    this.onAdvertise = opts.onAdvertise;
    this.auth = opts.auth;
  }

  async start(): Promise<void> {
    const { jsm, workers } = await ensureFleetResources(this.nc);
    await ensureJobConsumer(jsm, this.workerId);
    this.workers = workers;
    this.rpc = this.nc.subscribe(rpcSubject(this.workerId), {
      callback: (err, msg) => {
        if (err) return this.onError(err, 'rpc subscription');
        let req: unknown;
        let nonce: string;
        try {
          nonce = this.auth.nonceOf(msg.data);
          req = this.auth.open(rpcSubject(this.workerId), msg.data);
        } catch (e) {
          // Unsealed, forged or replayed: not answered at all (an answer would only help a prober).
          return this.onError(e, 'refused request');
        }
        this.track(this.answer(req).then((reply) => msg.respond(this.auth.seal(replyContext(nonce), reply))));
      },
    });
    // Counts the labs already here (a restarted worker's leftovers) before taking any job.
    await this.advertise();
    const consumer = await this.nc.jetstream().consumers.get(LAB_JOBS_STREAM, jobConsumer(this.workerId));
    this.jobs = await consumer.consume({ max_messages: Math.max(1, this.capacity) });
    void (async () => {
      for await (const msg of this.jobs!) {
        // At most once: a worker that dies mid-build has its scenario failed by the
        // orchestrator; building it again after a restart would only make an orphan.
        msg.ack();
        let job: unknown;
        try {
          job = this.auth.open(jobSubject(this.workerId), msg.data);
        } catch (err) {
          this.onError(err, err instanceof FleetAuthError ? 'refused lab job' : 'malformed lab job');
          continue;
        }
        if (!isCreateJob(job)) {
          this.onError(new Error('lab job of unexpected shape'), 'malformed lab job');
          continue;
        }
        this.track(this.build(job));
      }
    })().catch((err: unknown) => this.onError(err, 'job loop'));
    this.heartbeat = setInterval(() => void this.advertise().catch((err: unknown) => this.onError(err, 'heartbeat')), this.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Stops taking work and heartbeating; labs stay (a restarted worker is reconciled). */
  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const close of this.shells) close();
    this.jobs?.stop();
    this.rpc?.unsubscribe();
    await Promise.allSettled([...this.pending]);
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.onError(err, 'request')).finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  /** Freed capacity is announced now rather than at the next heartbeat. */
  private advertiseSoon(): void {
    void this.advertise().catch((err: unknown) => this.onError(err, 'heartbeat'));
  }

  /**
   * Counts finished labs (a lab being built is `partial` and counted in `building`), unless a
   * build finished or a lab went while the listing ran: that count is stale, the local one stays.
   */
  private async countLabs(): Promise<void> {
    const before = this.labsChanged;
    const running = (await this.runtime.list()).filter((l) => l.status === 'running').length;
    if (before === this.labsChanged) this.labs = running;
  }

  private async advertise(): Promise<void> {
    await this.countLabs();
    const advert: WorkerAdvert = {
      workerId: this.workerId,
      bootId: this.bootId,
      capacity: this.capacity,
      labs: this.labs + this.building,
      heartbeatMs: this.heartbeatMs,
      driver: this.runtime.driver,
      at: new Date().toISOString(),
    };
    await this.workers!.put(this.workerId, this.auth.seal(advertContext(this.workerId), advert));
    this.onAdvertise?.(advert);
  }

  private async build(job: CreateJob): Promise<void> {
    let reply: JobReply;
    if (Date.parse(job.deadline) < Date.now()) return; // the orchestrator gave up on it
    // Capacity is a promise, not a hint: placements made on an old advert are refused.
    if (this.labs + this.building >= this.capacity) {
      const full: JobReply = {
        jobId: job.jobId,
        workerId: this.workerId,
        ok: false,
        error: { name: WORKER_FULL, message: `worker ${this.workerId} runs ${this.labs + this.building} of ${this.capacity} labs` },
      };
      this.nc.publish(job.reply, this.auth.seal(jobReplyContext(job.jobId), full));
      return;
    }
    this.building++;
    try {
      const handle = await this.runtime.create(job.spec);
      // In one tick: the lab moves from `building` to `labs` (and a count in flight is stale).
      this.building--;
      this.labs++;
      this.labsChanged++;
      reply = { jobId: job.jobId, workerId: this.workerId, ok: true, handle, labs: this.labs + this.building };
    } catch (err) {
      this.building--;
      reply = { jobId: job.jobId, workerId: this.workerId, ok: false, error: toWireError(err) };
    }
    this.nc.publish(job.reply, this.auth.seal(jobReplyContext(job.jobId), reply));
  }

  private async answer(req: unknown): Promise<RpcReply> {
    try {
      if (!isRpcRequest(req)) throw new Error('request of unexpected shape');
      return { ok: true, result: await this.perform(req) };
    } catch (err) {
      return { ok: false, error: toWireError(err) };
    }
  }

  private async perform(req: RpcRequest): Promise<unknown> {
    switch (req.op) {
      case 'exec': {
        const { stdinB64, ...rest } = req.opts;
        return this.runtime.exec(req.scenarioId, req.device, req.argv, {
          ...rest,
          ...(stdinB64 !== undefined ? { stdin: Buffer.from(stdinB64, 'base64') } : {}),
        });
      }
      case 'destroy':
        await this.runtime.destroy(req.scenarioId);
        this.labsChanged++;
        this.advertiseSoon();
        return null;
      case 'list':
        return this.runtime.list();
      case 'reconcile': {
        const result = await this.runtime.reconcile(new Set(req.keep));
        if (result.removed.length > 0) {
          this.labsChanged++;
          this.advertiseSoon();
        }
        return result;
      }
      case 'copyIn':
        return this.viaTempFile(async (file) => {
          await writeFile(file, Buffer.from(req.contentB64, 'base64'));
          await this.runtime.copyIn(req.scenarioId, req.device, file, req.devicePath);
          return null;
        });
      case 'copyOut':
        return this.viaTempFile(async (file) => {
          await this.runtime.copyOut(req.scenarioId, req.device, file, req.devicePath);
          return { contentB64: (await readFile(file)).toString('base64') };
        });
      case 'shell':
        return this.relayShell(req);
    }
  }

  /**
   * A learner shell in a lab of this worker, relayed to the lab page that asked: output and exit
   * go out on the stream's `out` subject, input and resizes come in on `in`, each frame sealed.
   * Either side silent for TTY_SILENCE_MS (the lab page's process died) ends the shell.
   */
  private async relayShell(req: Extract<RpcRequest, { op: 'shell' }>): Promise<{ pid: number }> {
    const pty = spawnShellPty(await this.runtime.spawnShell(req.scenarioId, req.device), { cols: req.cols, rows: req.rows });
    const out = ttySubject(req.stream, 'out');
    const inbound = ttySubject(req.stream, 'in');
    const send = (frame: TtyOut) => this.nc.publish(out, this.auth.seal(out, frame));
    let heardAt = Date.now();
    let exited = false;
    const sub = this.nc.subscribe(inbound, {
      callback: (err, msg) => {
        if (err) return this.onError(err, 'terminal relay');
        let frame: unknown;
        try {
          frame = this.auth.open(inbound, msg.data);
        } catch (e) {
          return this.onError(e, 'refused terminal frame');
        }
        if (!isTtyIn(frame)) return this.onError(new Error('terminal frame of unexpected shape'), 'refused terminal frame');
        heardAt = Date.now();
        try {
          if (frame.t === 'input') pty.write(frame.d);
          else if (frame.t === 'resize') pty.resize(frame.cols, frame.rows);
          else if (frame.t === 'pause') pty.pause();
          else if (frame.t === 'resume') pty.resume();
          else if (frame.t === 'kill') pty.kill(frame.signal);
        } catch (e) {
          this.onError(e, 'terminal relay');
        }
      },
    });
    const ping = setInterval(() => {
      if (Date.now() - heardAt > TTY_SILENCE_MS) return close();
      send({ t: 'ping' });
    }, TTY_PING_MS);
    ping.unref();
    const close = () => {
      if (!exited) {
        try {
          pty.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
    };
    this.shells.add(close);
    pty.onData((d) => send({ t: 'data', d }));
    pty.onExit(({ exitCode, signal }) => {
      exited = true;
      clearInterval(ping);
      this.shells.delete(close);
      send({ t: 'exit', code: exitCode, ...(signal ? { signal } : {}) });
      sub.unsubscribe();
    });
    return { pid: pty.pid };
  }

  private async viaTempFile<T>(fn: (file: string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(path.join(tmpdir(), 'fg-worker-copy-'));
    try {
      return await fn(path.join(dir, 'file'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
