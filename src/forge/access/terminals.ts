import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { WebSocket } from 'ws';
import type { ShellPty } from '../runtime/types.js';
import type { AccessLimits } from './limits.js';
import { CLOSE } from './protocol.js';
import { AsciicastRecorder, RecordingBudget, recordingsDir } from './recording.js';
import { TerminalSession, type EarlyFrame, type TerminalOwner } from './terminal-session.js';

export interface TerminalsDeps {
  /** A learner login shell inside a device: a local PTY, or one relayed from the worker agent holding the lab. */
  readonly openShell: (scenarioId: string, device: string, size: { cols: number; rows: number }) => Promise<ShellPty>;
  readonly storageDir: string;
  readonly limits: AccessLimits;
  readonly publishRecording?: (scenarioId: string, file: string) => Promise<void>;
  readonly onPublishError?: (err: unknown, file: string) => void;
  /** A learner's shell started or ended (telemetry). */
  readonly onSession?: (event: 'started' | 'ended', owner: TerminalOwner, sessionId: string) => void;
}

export type OpenResult = { ok: true; session: TerminalSession; resumed: boolean } | { ok: false; code: number; reason: string };

/**
 * Every learner shell of this process, by session id and by scenario. Enforces the per-scenario
 * terminal limit and the per-scenario recording budget (measured on disk, so it survives restarts).
 */
export class TerminalSessions {
  private readonly byId = new Map<string, TerminalSession>();
  private readonly byScenario = new Map<string, Set<TerminalSession>>();
  private readonly budgets = new Map<string, Promise<RecordingBudget>>();
  /** Sessions being opened, counted against the limit before their PTY exists. */
  private readonly opening = new Map<string, number>();

  constructor(private readonly deps: TerminalsDeps) {}

  /** Reattaches `resumeId` when it is the same owner's live shell, else starts a new one (within the limit). */
  async open(
    owner: TerminalOwner,
    socket: WebSocket,
    size: { cols: number; rows: number },
    resumeId?: string,
    early: readonly EarlyFrame[] = [],
  ): Promise<OpenResult> {
    const existing = resumeId ? this.byId.get(resumeId) : undefined;
    if (existing && !existing.isEnded && sameOwner(existing.owner, owner)) {
      existing.attach(socket, true, early);
      existing.resize(size.cols, size.rows);
      return { ok: true, session: existing, resumed: true };
    }
    const live = (this.byScenario.get(owner.scenarioId)?.size ?? 0) + (this.opening.get(owner.scenarioId) ?? 0);
    if (live >= this.deps.limits.terminalsPerScenario) {
      return { ok: false, code: CLOSE.tooManyTerminals, reason: `at most ${this.deps.limits.terminalsPerScenario} terminals per lab; close one first` };
    }
    this.opening.set(owner.scenarioId, (this.opening.get(owner.scenarioId) ?? 0) + 1);
    try {
      const budget = await this.budgetFor(owner.scenarioId);
      const startedAt = new Date();
      const pty = await this.deps.openShell(owner.scenarioId, owner.device, size);
      const file = path.join(
        recordingsDir(this.deps.storageDir, owner.scenarioId),
        `${startedAt.toISOString().replace(/[:.]/g, '-')}_${owner.device}_${pty.pid}.cast`,
      );
      let recorder: AsciicastRecorder;
      try {
        recorder = await AsciicastRecorder.open(
          file,
          {
            width: size.cols,
            height: size.rows,
            timestamp: Math.floor(startedAt.getTime() / 1000),
            title: `${owner.scenarioId} ${owner.device}`,
            env: { TERM: 'xterm-256color', SHELL: '/bin/bash' },
          },
          budget,
        );
      } catch (err) {
        pty.kill('SIGKILL');
        throw err;
      }
      const session = new TerminalSession(owner, pty, recorder, this.deps.limits, (s) => this.forget(s));
      this.byId.set(session.id, session);
      let set = this.byScenario.get(owner.scenarioId);
      if (!set) this.byScenario.set(owner.scenarioId, (set = new Set()));
      set.add(session);
      session.attach(socket, false, early);
      this.deps.onSession?.('started', owner, session.id);
      return { ok: true, session, resumed: false };
    } finally {
      const n = (this.opening.get(owner.scenarioId) ?? 1) - 1;
      if (n > 0) this.opening.set(owner.scenarioId, n);
      else this.opening.delete(owner.scenarioId);
    }
  }

  get(sessionId: string): TerminalSession | undefined {
    // An ending session stays in the map until its recording is closed, but is no longer live.
    const session = this.byId.get(sessionId);
    return session && !session.isEnded ? session : undefined;
  }

  /** Live shells of a scenario (attached or waiting for a reconnect). */
  sessionsOf(scenarioId: string): TerminalSession[] {
    return [...(this.byScenario.get(scenarioId) ?? [])];
  }

  /** Writes out every recording of the scenario (before the grader packs them). */
  async flushScenario(scenarioId: string): Promise<void> {
    await Promise.all(
      this.sessionsOf(scenarioId).map(async (s) => {
        await s.flushRecording();
        await this.deps.publishRecording?.(scenarioId, s.recordingFile);
      }),
    );
  }

  async endScenario(scenarioId: string, code: number, reason: string): Promise<void> {
    await Promise.all(this.sessionsOf(scenarioId).map((s) => s.end(code, reason)));
  }

  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.byId.values()].map((s) => s.end(CLOSE.goingAway, reason)));
  }

  private forget(session: TerminalSession): void {
    this.deps.onSession?.('ended', session.owner, session.id);
    // The recording is closed by now: its final version goes to the evidence store.
    this.deps
      .publishRecording?.(session.owner.scenarioId, session.recordingFile)
      .catch((err: unknown) => this.deps.onPublishError?.(err, session.recordingFile));
    this.byId.delete(session.id);
    const set = this.byScenario.get(session.owner.scenarioId);
    set?.delete(session);
    if (set && set.size === 0) {
      this.byScenario.delete(session.owner.scenarioId);
      this.budgets.delete(session.owner.scenarioId);
    }
  }

  /** What is left of the scenario's recording budget, from the sizes of the files already written. */
  private budgetFor(scenarioId: string): Promise<RecordingBudget> {
    let budget = this.budgets.get(scenarioId);
    if (!budget) {
      budget = (async () => {
        const dir = recordingsDir(this.deps.storageDir, scenarioId);
        const names = await readdir(dir).catch(() => [] as string[]);
        let used = 0;
        for (const n of names) used += (await stat(path.join(dir, n)).catch(() => ({ size: 0 }))).size;
        return new RecordingBudget(Math.max(0, this.deps.limits.recordingBytesPerScenario - used));
      })();
      this.budgets.set(scenarioId, budget);
    }
    return budget;
  }
}

function sameOwner(a: TerminalOwner, b: TerminalOwner): boolean {
  return a.scenarioId === b.scenarioId && a.device === b.device && a.subject === b.subject;
}
