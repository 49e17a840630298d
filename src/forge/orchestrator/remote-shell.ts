import type { NatsConnection, Subscription } from 'nats';
import type { ShellPty } from '../runtime/types.js';
import type { FleetAuth } from '../worker/channel.js';
import { isTtyOut, TTY_PING_MS, TTY_SILENCE_MS, ttySubject, type TtyIn, type TtyOut } from '../worker/protocol.js';

/** Exit code reported when the worker stops answering (its process or link died). */
const LOST_EXIT_CODE = 255;

/**
 * The lab page's end of a shell that runs on a worker agent: node-pty's surface (data, exit,
 * write, resize, kill, pause/resume) over the stream's two sealed subjects. It listens before
 * the shell is asked for, so the first prompt is never lost; frames that fail the seal are dropped.
 */
export class RemoteShell implements ShellPty {
  private pidValue = 0;
  private readonly sub: Subscription;
  private readonly early: TtyOut[] = [];
  private dataListeners: Array<(d: string) => void> = [];
  private exitListeners: Array<(e: { exitCode: number; signal?: number }) => void> = [];
  private exited = false;
  private heardAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private readonly out: string;
  private readonly in: string;

  constructor(
    private readonly nc: NatsConnection,
    private readonly auth: FleetAuth,
    stream: string,
  ) {
    this.out = ttySubject(stream, 'out');
    this.in = ttySubject(stream, 'in');
    this.sub = nc.subscribe(this.out, {
      callback: (err, msg) => {
        if (err) return;
        let frame: unknown;
        try {
          frame = this.auth.open(this.out, msg.data);
        } catch {
          return;
        }
        if (!isTtyOut(frame)) return;
        this.heardAt = Date.now();
        if (this.ready) this.deliver(frame);
        else this.early.push(frame);
      },
    });
  }

  get pid(): number {
    return this.pidValue;
  }

  /** Frames flow to listeners once the shell started and both kinds of listener are set (the first prompt is kept until then). */
  private get ready(): boolean {
    return this.timer !== undefined && this.dataListeners.length > 0 && this.exitListeners.length > 0;
  }

  private flushEarly(): void {
    if (this.ready) for (const f of this.early.splice(0)) this.deliver(f);
  }

  /** The worker started the shell. */
  started(pid: number): void {
    this.pidValue = pid;
    this.timer = setInterval(() => {
      if (Date.now() - this.heardAt > TTY_SILENCE_MS) this.finish({ exitCode: LOST_EXIT_CODE });
      else this.send({ t: 'ping' });
    }, TTY_PING_MS);
    this.timer.unref();
  }

  /** The worker refused or never answered: stop listening. */
  abandon(): void {
    this.sub.unsubscribe();
  }

  onData(listener: (data: string) => void): void {
    this.dataListeners.push(listener);
    queueMicrotask(() => this.flushEarly());
  }

  onExit(listener: (e: { exitCode: number; signal?: number }) => void): void {
    this.exitListeners.push(listener);
    queueMicrotask(() => this.flushEarly());
  }

  write(data: string): void {
    this.send({ t: 'input', d: data });
  }

  resize(cols: number, rows: number): void {
    this.send({ t: 'resize', cols, rows });
  }

  kill(signal = 'SIGHUP'): void {
    if (this.exited) throw new Error('the shell has exited');
    this.send({ t: 'kill', signal: signal === 'SIGKILL' || signal === 'SIGTERM' ? signal : 'SIGHUP' });
    // A worker that is gone cannot answer SIGKILL: the shell counts as ended here.
    if (signal === 'SIGKILL') setTimeout(() => this.finish({ exitCode: LOST_EXIT_CODE }), 5000).unref();
  }

  pause(): void {
    this.send({ t: 'pause' });
  }

  resume(): void {
    this.send({ t: 'resume' });
  }

  private send(frame: TtyIn): void {
    if (this.exited || this.nc.isClosed()) return;
    this.nc.publish(this.in, this.auth.seal(this.in, frame));
  }

  private deliver(frame: TtyOut): void {
    if (this.exited) return;
    if (frame.t === 'data') for (const l of this.dataListeners) l(frame.d);
    else if (frame.t === 'exit') this.finish({ exitCode: frame.code, ...(frame.signal ? { signal: frame.signal } : {}) });
  }

  private finish(e: { exitCode: number; signal?: number }): void {
    if (this.exited) return;
    this.exited = true;
    clearInterval(this.timer);
    this.sub.unsubscribe();
    for (const l of this.exitListeners) l(e);
  }
}
