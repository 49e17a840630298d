import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line, then one
 * JSON array per event `[seconds_since_start, code, data]`; codes used here are "o" (output),
 * "i" (input), "r" (resize, "COLSxROWS") and "m" (marker).
 */
export interface AsciicastHeader {
  readonly version: 2;
  readonly width: number;
  readonly height: number;
  /** Unix time (seconds) the recording started. */
  readonly timestamp: number;
  readonly title: string;
  readonly env: Readonly<Record<string, string>>;
}

export type AsciicastEventCode = 'o' | 'i' | 'r' | 'm';
export type AsciicastEvent = [number, AsciicastEventCode, string];

/** Where a scenario's terminal recordings live; the grader packs this directory into the evidence. */
export function recordingsDir(storageDir: string, scenarioId: string): string {
  return path.join(storageDir, 'scenarios', scenarioId, 'recordings');
}

/** Bytes a scenario's recordings may still take; shared by all its recorders. */
export class RecordingBudget {
  constructor(private remaining: number) {}
  take(bytes: number): boolean {
    if (bytes > this.remaining) {
      this.remaining = 0;
      return false;
    }
    this.remaining -= bytes;
    return true;
  }
}

/** Appends one terminal session to a .cast file. Writes are ordered; flush() resolves once all are on disk. */
export class AsciicastRecorder {
  private readonly startedAt = performance.now();
  private stopped = false;
  private closed = false;

  private constructor(
    readonly file: string,
    private readonly stream: WriteStream,
    private readonly budget: RecordingBudget,
  ) {}

  static async open(file: string, header: Omit<AsciicastHeader, 'version'>, budget: RecordingBudget): Promise<AsciicastRecorder> {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o750 });
    const stream = createWriteStream(file, { flags: 'wx', mode: 0o640 });
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    const recorder = new AsciicastRecorder(file, stream, budget);
    recorder.line(JSON.stringify({ version: 2, ...header }));
    return recorder;
  }

  output(data: string): void {
    this.event('o', data);
  }

  input(data: string): void {
    this.event('i', data);
  }

  resize(cols: number, rows: number): void {
    this.event('r', `${cols}x${rows}`);
  }

  marker(label: string): void {
    this.event('m', label);
  }

  /** Resolves when everything written so far has reached the file. */
  flush(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.stream.write('', () => resolve()));
  }

  async close(reason?: string): Promise<void> {
    if (this.closed) return;
    if (reason) this.event('m', reason);
    this.closed = true;
    await new Promise<void>((resolve) => this.stream.end(() => resolve()));
  }

  private event(code: AsciicastEventCode, data: string): void {
    if (this.closed || this.stopped) return;
    const seconds = Math.round(performance.now() - this.startedAt) / 1000;
    this.line(JSON.stringify([seconds, code, data] satisfies AsciicastEvent));
  }

  private line(text: string): void {
    const bytes = Buffer.byteLength(text) + 1;
    if (!this.budget.take(bytes)) {
      // The scenario's recording budget is spent: say so once, then record nothing more.
      this.stopped = true;
      this.stream.write(
        `${JSON.stringify([Math.round(performance.now() - this.startedAt) / 1000, 'm', 'recording stopped: the scenario reached its recording size limit'])}\n`,
      );
      return;
    }
    this.stream.write(`${text}\n`);
  }
}

/** Parses a .cast file's text (header and events); throws on anything that is not asciicast v2. */
export function parseAsciicast(text: string): { header: AsciicastHeader; events: AsciicastEvent[] } {
  const lines = text.split('\n').filter((l) => l !== '');
  const first = lines.shift();
  if (first === undefined) throw new Error('empty recording');
  const header = JSON.parse(first) as AsciicastHeader;
  if (header.version !== 2 || !Number.isInteger(header.width) || !Number.isInteger(header.height)) throw new Error('not an asciicast v2 header');
  const events = lines.map((l, i) => {
    const e = JSON.parse(l) as unknown;
    if (!Array.isArray(e) || e.length !== 3 || typeof e[0] !== 'number' || !['o', 'i', 'r', 'm'].includes(e[1] as string) || typeof e[2] !== 'string') {
      throw new Error(`line ${i + 2} is not an asciicast v2 event`);
    }
    return e as AsciicastEvent;
  });
  return { header, events };
}
