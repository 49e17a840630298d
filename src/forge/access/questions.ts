import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LabTemplate } from '../templates/load.js';

/** A question the learner answers on the page: an `answer` criterion, or a quiz criterion's questions. Never the expected answers. */
export type PageQuestion =
  | { readonly criterion: string; readonly kind: 'answer'; readonly description: string; readonly points: number }
  | {
      readonly criterion: string;
      readonly kind: 'quiz';
      readonly description: string;
      readonly points: number;
      readonly questions: ReadonlyArray<
        | { readonly id: string; readonly kind: 'choice'; readonly prompt: string; readonly choices: readonly string[]; readonly multiple: boolean }
        | { readonly id: string; readonly kind: 'matching'; readonly prompt: string; readonly left: readonly string[]; readonly right: readonly string[] }
      >;
    };

/** A hint as the page lists it: its text only once unlocked (or when it is free and general). */
export interface PageHint {
  readonly criterion: string | null;
  readonly index: number;
  readonly penalty: number;
  readonly description: string;
  readonly text?: string;
}

/** The questions of a template's top-level answer and quiz criteria, in template order. */
export function pageQuestions(template: LabTemplate): PageQuestion[] {
  const out: PageQuestion[] = [];
  for (const c of template.successCriteria) {
    const check = c.check as { type: string; questions?: unknown };
    if (check.type === 'answer') out.push({ criterion: c.id, kind: 'answer', description: c.description, points: c.points });
    if (check.type === 'quiz') {
      const questions = (check.questions as Array<Record<string, unknown>>).map((q) =>
        q.kind === 'choice'
          ? {
              id: String(q.id),
              kind: 'choice' as const,
              prompt: String(q.prompt),
              choices: (q.choices as string[]).map(String),
              multiple: (q.correct as number[]).length > 1,
            }
          : {
              id: String(q.id),
              kind: 'matching' as const,
              prompt: String(q.prompt),
              left: Object.keys(q.pairs as Record<string, string>),
              // Sorted, so the order of the right-hand items says nothing about the pairs.
              right: [...new Set(Object.values(q.pairs as Record<string, string>))].sort(),
            },
      );
      out.push({ criterion: c.id, kind: 'quiz', description: c.description, points: c.points, questions });
    }
  }
  return out;
}

/** Every hint of a template: the general ones (free, criterion null) and each criterion's, with its penalty. */
export function pageHints(template: LabTemplate, unlocked: UnlockedHints): PageHint[] {
  const general = (template.hints ?? []).map((text, index) => ({ criterion: null, index, penalty: 0, description: 'General hint', text }));
  const perCriterion = template.successCriteria.flatMap((c) =>
    (c.hints ?? []).map((h, index) => ({
      criterion: c.id,
      index,
      penalty: h.penalty ?? 0,
      description: c.description,
      ...(unlocked[c.id]?.includes(index) ? { text: h.text } : {}),
    })),
  );
  return [...general, ...perCriterion];
}

/** criterion id -> indices of the hints the learner unlocked (what grading's hints_used takes). */
export type UnlockedHints = Record<string, number[]>;

interface HintUnlock {
  readonly criterion: string;
  readonly index: number;
  readonly penalty: number;
  readonly at: string;
  readonly subject: string;
}

/**
 * The hints a learner unlocked, kept with the lab's other learner-side evidence (the terminal
 * recordings) under FG_STORAGE_DIR/scenarios/{id}/hints.json; grading reads it, so a penalty
 * cannot be dodged by submitting from another browser.
 */
export class HintLedger {
  /** One write at a time per scenario (read, add, replace), so two quick clicks keep both unlocks. */
  private readonly queue = new Map<string, Promise<void>>();

  constructor(private readonly storageDir: string) {}

  private file(scenarioId: string): string {
    return path.join(this.storageDir, 'scenarios', scenarioId, 'hints.json');
  }

  async unlocks(scenarioId: string): Promise<HintUnlock[]> {
    try {
      return (JSON.parse(await readFile(this.file(scenarioId), 'utf8')) as { unlocks: HintUnlock[] }).unlocks;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async unlocked(scenarioId: string): Promise<UnlockedHints> {
    const out: UnlockedHints = {};
    for (const u of await this.unlocks(scenarioId)) (out[u.criterion] ??= []).push(u.index);
    return out;
  }

  /** Records an unlock once (a second request for the same hint costs nothing more). */
  async unlock(scenarioId: string, u: HintUnlock): Promise<void> {
    const previous = this.queue.get(scenarioId) ?? Promise.resolve();
    const next = previous.then(() => this.append(scenarioId, u));
    const settled = next.catch(() => undefined);
    this.queue.set(scenarioId, settled);
    void settled.then(() => {
      if (this.queue.get(scenarioId) === settled) this.queue.delete(scenarioId);
    });
    return next;
  }

  private async append(scenarioId: string, u: HintUnlock): Promise<void> {
    const all = await this.unlocks(scenarioId);
    if (all.some((x) => x.criterion === u.criterion && x.index === u.index)) return;
    const file = this.file(scenarioId);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.tmp`, JSON.stringify({ unlocks: [...all, u] }, null, 2));
    await rename(`${file}.tmp`, file);
  }
}
