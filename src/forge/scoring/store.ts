import { sql } from 'kysely';
import type { Tx } from '../../platform/db/database.js';

/** One leaderboard-relevant row per graded attempt of a scenario (migrations/0012, 0030). */
export interface ScoreRow {
  readonly scenario_id: string;
  /** 1 at spawn; a reset of a graded scenario starts the next (earlier rows stay). */
  readonly attempt: number;
  readonly tenant_id: string;
  readonly template_id: string;
  readonly template_version: string;
  readonly track: string;
  readonly subject: string;
  readonly reason: string;
  readonly total: number;
  readonly max: number;
  readonly percent: number;
  readonly graded_at: string;
  readonly score_sha256: string;
  readonly evidence_sha256: string;
  readonly key_id: string;
}

export interface LeaderboardEntry {
  readonly rank: number;
  readonly subject: string;
  readonly best_percent: number;
  readonly best_total: number;
  readonly attempts: number;
  readonly last_graded_at: string;
}

interface RawScore extends Omit<ScoreRow, 'graded_at' | 'percent'> {
  readonly graded_at: Date | string;
  readonly percent: number | string;
}

const toRow = (r: RawScore): ScoreRow => ({
  ...r,
  percent: Number(r.percent),
  attempt: Number(r.attempt),
  total: Number(r.total),
  max: Number(r.max),
  graded_at: new Date(r.graded_at).toISOString(),
});

/**
 * The scores table, always inside the caller's tenant transaction (RLS). Raw SQL through the
 * transaction keeps this module off the shared Kysely table map.
 */
export const scoreStore = {
  /** Inserts the row; false when that attempt already has one (grading is idempotent). */
  async insert(tx: Tx, row: ScoreRow): Promise<boolean> {
    const res = await sql`
      INSERT INTO scores (scenario_id, attempt, tenant_id, template_id, template_version, track, subject, reason, total, max, percent, graded_at, score_sha256, evidence_sha256, key_id)
      VALUES (${row.scenario_id}, ${row.attempt}, ${row.tenant_id}, ${row.template_id}, ${row.template_version}, ${row.track}, ${row.subject}, ${row.reason}, ${row.total}, ${row.max}, ${row.percent}, ${row.graded_at}::timestamptz, ${row.score_sha256}, ${row.evidence_sha256}, ${row.key_id})
      ON CONFLICT (scenario_id, attempt) DO NOTHING`.execute(tx);
    return Number(res.numAffectedRows ?? 0) > 0;
  },

  /** One attempt's row; without `attempt`, the latest graded attempt's. */
  async get(tx: Tx, scenarioId: string, attempt?: number): Promise<ScoreRow | undefined> {
    const res =
      attempt === undefined
        ? await sql<RawScore>`SELECT * FROM scores WHERE scenario_id = ${scenarioId} ORDER BY attempt DESC LIMIT 1`.execute(tx)
        : await sql<RawScore>`SELECT * FROM scores WHERE scenario_id = ${scenarioId} AND attempt = ${attempt}`.execute(tx);
    const row = res.rows[0];
    return row ? toRow(row) : undefined;
  },

  /** Every graded attempt of a scenario, first to last. */
  async attempts(tx: Tx, scenarioId: string): Promise<ScoreRow[]> {
    const res = await sql<RawScore>`SELECT * FROM scores WHERE scenario_id = ${scenarioId} ORDER BY attempt`.execute(tx);
    return res.rows.map(toRow);
  },

  /**
   * Best score per subject on a track over every graded attempt of every scenario (a later,
   * lower attempt never lowers it): highest percent first, earlier achievement breaks ties.
   */
  async leaderboard(tx: Tx, track: string, limit: number): Promise<LeaderboardEntry[]> {
    const res = await sql<{
      subject: string;
      best_percent: number | string;
      best_total: number | string;
      attempts: number | string;
      best_at: Date | string;
      last_graded_at: Date | string;
    }>`
      WITH ranked AS (
        SELECT subject, percent, total, graded_at,
               row_number() OVER (PARTITION BY subject ORDER BY percent DESC, graded_at ASC) AS n,
               count(*) OVER (PARTITION BY subject) AS attempts,
               max(graded_at) OVER (PARTITION BY subject) AS last_graded_at
        FROM scores WHERE track = ${track}
      )
      SELECT subject, percent AS best_percent, total AS best_total, attempts, graded_at AS best_at, last_graded_at
      FROM ranked WHERE n = 1
      ORDER BY percent DESC, graded_at ASC, subject ASC
      LIMIT ${limit}`.execute(tx);
    return res.rows.map((r, i) => ({
      rank: i + 1,
      subject: r.subject,
      best_percent: Number(r.best_percent),
      best_total: Number(r.best_total),
      attempts: Number(r.attempts),
      last_graded_at: new Date(r.last_graded_at).toISOString(),
    }));
  },

  async history(tx: Tx, subject: string, limit: number): Promise<ScoreRow[]> {
    const res = await sql<RawScore>`SELECT * FROM scores WHERE subject = ${subject} ORDER BY graded_at DESC, scenario_id, attempt DESC LIMIT ${limit}`.execute(
      tx,
    );
    return res.rows.map(toRow);
  },
};
