import type { RawData, WebSocket } from 'ws';
import { newId } from '../../platform/ids.js';
import type { ShellPty } from '../runtime/types.js';
import type { AccessLimits } from './limits.js';
import { CLOSE, parseClientFrame, type ServerMessage } from './protocol.js';
import type { AsciicastRecorder } from './recording.js';

/** Who a terminal belongs to: the shell is reattached only for the same scenario, device and learner. */
export interface TerminalOwner {
  readonly scenarioId: string;
  readonly device: string;
  readonly subject: string;
}

/** A frame received before the session was attached: (data, isBinary). */
export type EarlyFrame = readonly [RawData, boolean];

/** How long a PTY that ignored SIGHUP gets before SIGKILL. */
const KILL_AFTER_MS = 2000;

/**
 * One learner shell: a PTY, its recording, and at most one attached WebSocket. The socket may
 * drop and come back (a network blip) within the reconnect grace period without losing the
 * shell; output produced meanwhile is kept (bounded) and replayed on reattach.
 */
export class TerminalSession {
  readonly id = newId('term');
  private socket: WebSocket | undefined;
  private readonly detachedOutput: Buffer[] = [];
  private detachedBytes = 0;
  private tokens: number;
  private lastRefill = Date.now();
  private resumeTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly idleWarnTimer: NodeJS.Timeout;
  private readonly idleEndTimer: NodeJS.Timeout;
  private ended = false;
  private exitCode: number | undefined;
  private readonly endedPromise: Promise<void>;
  private resolveEnded!: () => void;

  constructor(
    readonly owner: TerminalOwner,
    private readonly pty: ShellPty,
    private readonly recorder: AsciicastRecorder,
    private readonly limits: AccessLimits,
    private readonly onEnd: (session: TerminalSession) => void,
  ) {
    this.tokens = limits.outputBurstBytes;
    this.endedPromise = new Promise((resolve) => (this.resolveEnded = resolve));
    pty.onData((data) => this.onOutput(data));
    pty.onExit(({ exitCode, signal }) => {
      this.exitCode = signal ? 128 + signal : exitCode;
      this.send({ type: 'exit', exit_code: this.exitCode });
      void this.end(CLOSE.shellExited, `the shell exited (code ${this.exitCode})`);
    });
    this.idleWarnTimer = setTimeout(() => this.warnIdle(), limits.idleTimeoutMs - limits.idleWarningMs);
    this.idleEndTimer = setTimeout(
      () => void this.end(CLOSE.idle, `closed after ${Math.round(limits.idleTimeoutMs / 1000)} s without input`),
      limits.idleTimeoutMs,
    );
  }

  get attached(): boolean {
    return this.socket !== undefined;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  get recordingFile(): string {
    return this.recorder.file;
  }

  /** Process id of the PTY's child (tests use it to prove the shell is gone). */
  get pid(): number {
    return this.pty.pid;
  }

  /** Resolves once the session is over and its recording closed. */
  whenEnded(): Promise<void> {
    return this.endedPromise;
  }

  /**
   * Binds a socket; a socket already attached (the old side of a blip) is closed as replaced.
   * `early` are frames that arrived while the shell was starting; they are handled first.
   */
  attach(socket: WebSocket, resumed: boolean, early: readonly EarlyFrame[] = []): void {
    if (this.ended) throw new Error('terminal session has ended');
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    const previous = this.socket;
    this.socket = socket;
    if (previous && previous !== socket) previous.close(CLOSE.replaced, 'replaced by a newer connection');
    this.send({ type: 'ready', session: this.id, resumed, device: this.owner.device });
    if (this.detachedBytes > 0) {
      socket.send(Buffer.concat(this.detachedOutput), { binary: true });
      this.detachedOutput.length = 0;
      this.detachedBytes = 0;
    }
    const onMessage = (data: RawData, isBinary: boolean): void => {
      if (this.socket !== socket) return;
      const frame = parseClientFrame(data, isBinary);
      if (!frame.ok) {
        // A bad frame ends this connection only; the shell waits for a well-behaved one.
        socket.close(frame.code, frame.reason);
        return;
      }
      const message = frame.message;
      if (message.type === 'input') {
        this.idleWarnTimer.refresh();
        this.idleEndTimer.refresh();
        this.recorder.input(message.data);
        this.pty.write(message.data);
      } else {
        this.pty.resize(message.cols, message.rows);
        this.recorder.resize(message.cols, message.rows);
      }
    };
    for (const [data, isBinary] of early) onMessage(data, isBinary);
    socket.on('message', onMessage);
    socket.on('close', () => this.detach(socket));
    // The browser may have gone while the shell was starting: wait for a reconnect as after any drop.
    if (socket.readyState !== socket.OPEN) this.detach(socket);
  }

  private detach(socket: WebSocket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    if (this.ended) return;
    this.graceTimer = setTimeout(() => void this.end(CLOSE.goingAway, 'no reconnect within the grace period'), this.limits.reconnectGraceMs);
  }

  resize(cols: number, rows: number): void {
    if (this.ended) return;
    this.pty.resize(cols, rows);
    this.recorder.resize(cols, rows);
  }

  flushRecording(): Promise<void> {
    return this.recorder.flush();
  }

  /** Ends the session: closes the socket with `code`, stops the shell, closes the recording. */
  async end(code: number, reason: string): Promise<void> {
    if (this.ended) return this.endedPromise;
    this.ended = true;
    for (const t of [this.graceTimer, this.resumeTimer, this.idleWarnTimer, this.idleEndTimer]) if (t) clearTimeout(t);
    this.socket?.close(code, reason.slice(0, 120));
    this.socket = undefined;
    if (this.exitCode === undefined) await this.stopShell();
    await this.recorder.close(`session ended: ${reason}`);
    this.onEnd(this);
    this.resolveEnded();
  }

  private async stopShell(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.pty.onExit(() => resolve()));
    try {
      this.pty.kill('SIGHUP');
    } catch {
      return; // already gone
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), KILL_AFTER_MS)));
    if ((await Promise.race([exited, late])) === 'late') {
      try {
        this.pty.kill('SIGKILL');
      } catch {
        /* gone meanwhile */
      }
      await exited;
    }
    clearTimeout(timer);
  }

  private onOutput(data: string): void {
    this.recorder.output(data);
    const bytes = Buffer.from(data, 'utf8');
    this.throttle(bytes.length);
    if (this.socket) {
      this.socket.send(bytes, { binary: true });
      return;
    }
    this.detachedOutput.push(bytes);
    this.detachedBytes += bytes.length;
    while (this.detachedBytes > this.limits.replayBufferBytes && this.detachedOutput.length > 1) {
      this.detachedBytes -= this.detachedOutput.shift()!.length;
    }
  }

  /**
   * Output rate limit as flow control: a token bucket of bytes; when it runs dry the PTY is
   * paused, so the shell blocks on write (nothing is dropped) until the bucket refills.
   */
  private throttle(bytes: number): void {
    const now = Date.now();
    this.tokens = Math.min(this.limits.outputBurstBytes, this.tokens + ((now - this.lastRefill) / 1000) * this.limits.outputBytesPerSecond);
    this.lastRefill = now;
    this.tokens -= bytes;
    if (this.tokens >= 0 || this.resumeTimer || this.ended) return;
    this.pty.pause();
    const waitMs = Math.ceil((-this.tokens / this.limits.outputBytesPerSecond) * 1000);
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = undefined;
      if (!this.ended) this.pty.resume();
    }, waitMs);
  }

  private warnIdle(): void {
    this.send({ type: 'idle_warning', seconds_left: Math.round(this.limits.idleWarningMs / 1000) });
  }

  private send(message: ServerMessage): void {
    if (this.socket && this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(message));
  }
}
