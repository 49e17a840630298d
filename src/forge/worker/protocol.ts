import { AckPolicy, RetentionPolicy, StorageType, type JetStreamManager, type KV, type NatsConnection } from 'nats';
import { LabRuntimeError, type LabErrorCode } from '../runtime/errors.js';
import type { ExecResult, LabHandle, LabSpec, LabSummary } from '../runtime/types.js';

/**
 * The wire contract between orchestrators and worker agents, over NATS:
 *
 * - Workers advertise themselves in the KV bucket `fg_workers` (key: worker id), rewriting
 *   their entry every heartbeat with their capacity and the labs they run. An orchestrator
 *   counts a worker dead when its entry stops changing.
 * - Lab creation is a job on the JetStream work queue `FG_LAB_JOBS`, subject
 *   `fg.labjobs.<worker>`: the orchestrator picks the worker and publishes there; only that
 *   worker's durable consumer reads it. The worker answers on the job's `reply` subject.
 * - Which worker holds which scenario is in the KV bucket `fg_placements` (key: scenario id),
 *   so any orchestrator can route to it and fail the labs of a worker that died.
 * - Everything else about a placed lab (exec, destroy, list, reconcile, copies, shells) is a core
 *   NATS request to `fg.worker.<worker>.rpc`.
 * - A learner's terminal on a worker's lab is a PTY on that worker, relayed over two core subjects
 *   named by a random stream id: `fg.tty.<stream>.out` (worker to lab page: output, exit) and
 *   `fg.tty.<stream>.in` (lab page to worker: input, resize, flow control, close). The worker
 *   opens the connection; nothing dials into it.
 *
 * Every message (adverts, jobs, requests, replies, terminal frames) is sealed with the fleet
 * secret (channel.ts): a NATS client without it can neither command a worker nor answer for one.
 * NATS accounts should still restrict these subjects to platform processes (seals do not hide).
 */

export const LAB_JOBS_STREAM = 'FG_LAB_JOBS';
export const WORKERS_BUCKET = 'fg_workers';
export const PLACEMENTS_BUCKET = 'fg_placements';
export const WORKER_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const jobSubject = (workerId: string): string => `fg.labjobs.${workerId}`;
export const rpcSubject = (workerId: string): string => `fg.worker.${workerId}.rpc`;
export const jobConsumer = (workerId: string): string => `worker-${workerId}`;
export const advertContext = (workerId: string): string => `fg.advert.${workerId}`;
export const replyContext = (requestNonce: string): string => `fg.reply.${requestNonce}`;
export const jobReplyContext = (jobId: string): string => `fg.labreply.${jobId}`;
export const ttySubject = (stream: string, direction: 'in' | 'out'): string => `fg.tty.${stream}.${direction}`;
export const TTY_STREAM_PATTERN = /^[a-f0-9]{32}$/;
/** Each side of a terminal relay pings this often; one silent for TTY_SILENCE_MS is gone. */
export const TTY_PING_MS = 10_000;
export const TTY_SILENCE_MS = 35_000;

/** Lab page to worker, on `fg.tty.<stream>.in`. */
export type TtyIn =
  | { readonly t: 'input'; readonly d: string }
  | { readonly t: 'resize'; readonly cols: number; readonly rows: number }
  | { readonly t: 'pause' }
  | { readonly t: 'resume' }
  | { readonly t: 'kill'; readonly signal: string }
  | { readonly t: 'ping' };

/** Worker to lab page, on `fg.tty.<stream>.out`. */
export type TtyOut =
  { readonly t: 'data'; readonly d: string } | { readonly t: 'exit'; readonly code: number; readonly signal?: number } | { readonly t: 'ping' };

export function isTtyIn(v: unknown): v is TtyIn {
  if (!isObject(v)) return false;
  switch (v.t) {
    case 'input':
      return isStr(v.d);
    case 'resize':
      return isDim(v.cols) && isDim(v.rows);
    case 'kill':
      return v.signal === 'SIGHUP' || v.signal === 'SIGKILL' || v.signal === 'SIGTERM';
    case 'pause':
    case 'resume':
    case 'ping':
      return true;
    default:
      return false;
  }
}

export function isTtyOut(v: unknown): v is TtyOut {
  if (!isObject(v)) return false;
  if (v.t === 'data') return isStr(v.d);
  if (v.t === 'exit') return Number.isInteger(v.code);
  return v.t === 'ping';
}

const isDim = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 1000;

/** A worker's entry in `fg_workers`. */
export interface WorkerAdvert {
  readonly workerId: string;
  /** Random per process start: a new boot id means the worker restarted. */
  readonly bootId: string;
  /** Labs the worker runs at most. */
  readonly capacity: number;
  /** Labs it runs or is building now. */
  readonly labs: number;
  readonly heartbeatMs: number;
  readonly driver: string;
  /** The worker's clock, for humans; liveness is judged by the entry changing, not by this. */
  readonly at: string;
}

export interface CreateJob {
  readonly jobId: string;
  readonly spec: LabSpec;
  /** Core NATS subject the result goes to. */
  readonly reply: string;
  /** After this the orchestrator has given up: the worker drops the job unbuilt. */
  readonly deadline: string;
}

export type JobReply =
  | { readonly jobId: string; readonly workerId: string; readonly ok: true; readonly handle: LabHandle; readonly labs: number }
  | { readonly jobId: string; readonly workerId: string; readonly ok: false; readonly error: WireError };

/** stdin travels base64-encoded (it may be bytes). */
export interface WireExecOptions {
  readonly timeoutMs?: number;
  readonly stdinB64?: string;
  readonly asLearner?: boolean;
  readonly enter?: 'net' | 'mount' | 'probe';
}

export type RpcRequest =
  | { readonly op: 'exec'; readonly scenarioId: string; readonly device: string; readonly argv: readonly string[]; readonly opts: WireExecOptions }
  | { readonly op: 'destroy'; readonly scenarioId: string }
  | { readonly op: 'list' }
  | { readonly op: 'reconcile'; readonly keep: readonly string[] }
  | { readonly op: 'copyIn'; readonly scenarioId: string; readonly device: string; readonly devicePath: string; readonly contentB64: string }
  | { readonly op: 'copyOut'; readonly scenarioId: string; readonly device: string; readonly devicePath: string }
  | {
      readonly op: 'shell';
      readonly scenarioId: string;
      readonly device: string;
      readonly stream: string;
      readonly cols: number;
      readonly rows: number;
    };

export interface RpcResults {
  exec: ExecResult;
  destroy: null;
  list: LabSummary[];
  reconcile: { removed: string[] };
  copyIn: null;
  copyOut: { contentB64: string };
  shell: { pid: number };
}

/** WireError.name of a job refused because the worker is at capacity (the orchestrator tries another). */
export const WORKER_FULL = 'WorkerFull';

export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: LabErrorCode;
}

export type RpcReply<T = unknown> = { readonly ok: true; readonly result: T } | { readonly ok: false; readonly error: WireError };

export function toWireError(err: unknown): WireError {
  if (err instanceof LabRuntimeError) return { name: err.name, message: err.message, code: err.code };
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message };
}

/** A lab runtime error keeps its code across the wire (lab_not_found stays lab_not_found). */
export function fromWireError(err: WireError, workerId: string): Error {
  if (err.code) return new LabRuntimeError(err.code, err.message);
  return new Error(`worker ${workerId}: ${err.message}`);
}

export const encode = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value));
export function decode(data: Uint8Array): unknown {
  return JSON.parse(Buffer.from(data).toString('utf8')) as unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';

/** Shape checks of what arrives from the bus: a malformed message is refused, never half-used. */
export function isWorkerAdvert(v: unknown): v is WorkerAdvert {
  return (
    isObject(v) &&
    isStr(v.workerId) &&
    WORKER_ID_PATTERN.test(v.workerId) &&
    isStr(v.bootId) &&
    Number.isInteger(v.capacity) &&
    Number.isInteger(v.labs) &&
    Number.isInteger(v.heartbeatMs) &&
    isStr(v.driver)
  );
}

export function isCreateJob(v: unknown): v is CreateJob {
  return (
    isObject(v) &&
    isStr(v.jobId) &&
    isStr(v.reply) &&
    isStr(v.deadline) &&
    isObject(v.spec) &&
    isStr(v.spec.scenarioId) &&
    Array.isArray(v.spec.devices) &&
    Array.isArray(v.spec.networks)
  );
}

export function isJobReply(v: unknown): v is JobReply {
  return (
    isObject(v) &&
    isStr(v.jobId) &&
    isStr(v.workerId) &&
    typeof v.ok === 'boolean' &&
    (v.ok ? isObject(v.handle) && Number.isInteger(v.labs) : isObject(v.error))
  );
}

export function isRpcRequest(v: unknown): v is RpcRequest {
  if (!isObject(v) || !isStr(v.op)) return false;
  switch (v.op) {
    case 'exec':
      return isStr(v.scenarioId) && isStr(v.device) && Array.isArray(v.argv) && v.argv.every(isStr) && isObject(v.opts);
    case 'destroy':
      return isStr(v.scenarioId);
    case 'list':
      return true;
    case 'reconcile':
      return Array.isArray(v.keep) && v.keep.every(isStr);
    case 'copyIn':
      return isStr(v.scenarioId) && isStr(v.device) && isStr(v.devicePath) && isStr(v.contentB64);
    case 'copyOut':
      return isStr(v.scenarioId) && isStr(v.device) && isStr(v.devicePath);
    case 'shell':
      return isStr(v.scenarioId) && isStr(v.device) && isStr(v.stream) && TTY_STREAM_PATTERN.test(v.stream) && isDim(v.cols) && isDim(v.rows);
    default:
      return false;
  }
}

/** The work-queue stream and both KV buckets, created when missing (any side may come up first). */
export async function ensureFleetResources(nc: NatsConnection): Promise<{ jsm: JetStreamManager; workers: KV; placements: KV }> {
  const jsm = await nc.jetstreamManager();
  try {
    await jsm.streams.info(LAB_JOBS_STREAM);
  } catch {
    await jsm.streams
      .add({ name: LAB_JOBS_STREAM, subjects: ['fg.labjobs.>'], storage: StorageType.File, retention: RetentionPolicy.Workqueue, max_age: 24 * 3600 * 1e9 })
      .catch(async (err: unknown) => {
        // Created concurrently by another process: fine if it now exists.
        await jsm.streams.info(LAB_JOBS_STREAM).catch(() => Promise.reject(err));
      });
  }
  const js = nc.jetstream();
  const workers = await js.views.kv(WORKERS_BUCKET, { history: 1 });
  const placements = await js.views.kv(PLACEMENTS_BUCKET, { history: 1 });
  return { jsm, workers, placements };
}

/** The worker's durable consumer on its own job subject (work-queue streams need disjoint filters). */
export async function ensureJobConsumer(jsm: JetStreamManager, workerId: string): Promise<void> {
  const name = jobConsumer(workerId);
  try {
    await jsm.consumers.info(LAB_JOBS_STREAM, name);
  } catch {
    await jsm.consumers.add(LAB_JOBS_STREAM, { durable_name: name, filter_subject: jobSubject(workerId), ack_policy: AckPolicy.Explicit, ack_wait: 30e9 });
  }
}
