-- Attempts (issue 23 point 11): a reset of a graded scenario starts its next attempt, and every
-- graded attempt keeps its own score row next to the earlier ones (artefacts under
-- scenarios/{id}/results/ for attempt 1, scenarios/{id}/results/attempt-{n}/ after). Before this,
-- a reset then a new completion kept the first row and overwrote the files: the row and
-- score.json disagreed (500) and the leaderboard kept the old score.

ALTER TABLE scenarios ADD COLUMN attempt integer NOT NULL DEFAULT 1 CHECK (attempt >= 1);

ALTER TABLE scores ADD COLUMN attempt integer NOT NULL DEFAULT 1 CHECK (attempt >= 1);
ALTER TABLE scores DROP CONSTRAINT scores_pkey;
ALTER TABLE scores ADD PRIMARY KEY (scenario_id, attempt);
