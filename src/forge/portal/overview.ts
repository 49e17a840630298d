import type { Scenario } from '../orchestrator/store.js';
import type { ScoreRow } from '../scoring/store.js';
import type { CatalogView } from '../spawn/service.js';
import type { TemplateCatalog } from '../templates/catalog.js';
import type { Learner } from './session.js';

/** Where a lab stands, as the learner reads it. */
export type LabStatus = 'starting' | 'running' | 'grading' | 'graded' | 'expired' | 'ended' | 'failed';

export interface PortalLab {
  readonly scenario_id: string;
  readonly template_id: string;
  readonly title: string;
  readonly track: string;
  readonly state: string;
  readonly status: LabStatus;
  readonly created_at: string;
  readonly expires_at: string;
  /** The lab's devices still exist: the learner can go back in. */
  readonly can_enter: boolean;
  /** The best graded attempt (highest percent, the earlier on a tie), and how many were graded. */
  readonly score?: {
    readonly total: number;
    readonly max: number;
    readonly percent: number;
    readonly graded_at: string;
    readonly attempt: number;
    readonly attempts: number;
  };
}

export interface TrackProgress {
  readonly track: string;
  readonly labs: number;
  /** Labs of the track graded at least once. */
  readonly graded: number;
  /** Mean over the track's labs of the best attempt's percent (a lab never graded counts 0). */
  readonly percent: number;
  readonly best: ReadonlyArray<{ readonly template_id: string; readonly title: string; readonly percent: number | null }>;
}

export interface PortalOverview {
  readonly subject: string;
  readonly catalog: CatalogView;
  readonly labs: readonly PortalLab[];
  readonly progress: readonly TrackProgress[];
}

export interface OverviewSources {
  readonly catalog: (tenantId: string, subject: string) => Promise<CatalogView>;
  readonly labs: (tenantId: string, subject: string, limit: number) => Promise<Scenario[]>;
  /** The learner's graded attempts; absent when no scoreboard runs in this process. */
  readonly scores?: (tenantId: string, subject: string, limit: number) => Promise<ScoreRow[]>;
  readonly templates: Pick<TemplateCatalog, 'get'>;
}

/** How many labs and scores the portal shows (the newest). */
const LAB_LIMIT = 50;
const SCORE_LIMIT = 500;

function statusOf(s: Scenario, scored: boolean): LabStatus {
  switch (s.state) {
    case 'pending':
    case 'provisioning':
      return 'starting';
    case 'running':
      return 'running';
    case 'grading':
      return 'grading';
    case 'scored':
      return 'graded';
    case 'failed':
      return 'failed';
    case 'expired':
      return scored ? 'graded' : 'expired';
    case 'destroyed':
      return scored ? 'graded' : 'ended';
  }
}

/** The portal's one view: the catalogue with what the learner may start, their labs, and progress per track. */
export async function portalOverview(src: OverviewSources, learner: Learner): Promise<PortalOverview> {
  const [catalog, scenarios, scores] = await Promise.all([
    src.catalog(learner.tenant, learner.subject),
    src.labs(learner.tenant, learner.subject, LAB_LIMIT),
    src.scores ? src.scores(learner.tenant, learner.subject, SCORE_LIMIT) : Promise.resolve([]),
  ]);
  // A lab's best graded attempt (the leaderboard's rule): a later, lower attempt never hides it.
  const scoreOf = new Map<string, ScoreRow>();
  const attemptsOf = new Map<string, number>();
  for (const r of scores) {
    attemptsOf.set(r.scenario_id, (attemptsOf.get(r.scenario_id) ?? 0) + 1);
    const held = scoreOf.get(r.scenario_id);
    if (!held || r.percent > held.percent || (r.percent === held.percent && r.attempt < held.attempt)) scoreOf.set(r.scenario_id, r);
  }
  const labs = scenarios.map((s): PortalLab => {
    const row = scoreOf.get(s.scenario_id);
    const status = statusOf(s, row !== undefined);
    return {
      scenario_id: s.scenario_id,
      template_id: s.template_id,
      title: src.templates.get(s.template_id, s.template_version)?.title ?? s.template_id,
      track: s.track,
      state: s.state,
      status,
      created_at: s.created_at,
      expires_at: s.expires_at,
      can_enter: ['starting', 'running', 'grading'].includes(status) || s.state === 'scored',
      ...(row
        ? {
            score: {
              total: row.total,
              max: row.max,
              percent: row.percent,
              graded_at: row.graded_at,
              attempt: row.attempt,
              attempts: attemptsOf.get(s.scenario_id) ?? 1,
            },
          }
        : {}),
    };
  });
  const progress = catalog.tracks.map((t): TrackProgress => {
    const best = t.templates.map((tpl) => {
      const of = scores.filter((r) => r.track === t.track && r.template_id === tpl.id).map((r) => r.percent);
      return { template_id: tpl.id, title: tpl.title, percent: of.length > 0 ? Math.max(...of) : null };
    });
    const graded = best.filter((b) => b.percent !== null).length;
    const percent = best.length === 0 ? 0 : Math.round(best.reduce((sum, b) => sum + (b.percent ?? 0), 0) / best.length);
    return { track: t.track, labs: best.length, graded, percent, best };
  });
  return { subject: learner.subject, catalog, labs, progress };
}
