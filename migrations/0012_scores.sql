-- Forge scores: one row per graded scenario, for leaderboards and a subject's history. The signed
-- artefacts (score.json, evidence, verdict) live in object storage; this row repeats what the
-- leaderboard sorts on, and the digests that tie it to those artefacts. Tenant-scoped like
-- scenarios.

CREATE TABLE scores (
  scenario_id      text PRIMARY KEY CHECK (scenario_id ~ '^scn_[A-Za-z0-9_]{8,100}$'),
  tenant_id        text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  template_id      text NOT NULL,
  template_version text NOT NULL,
  track            text NOT NULL CHECK (track IN ('netplus', 'ccna', 'cissp')),
  subject          text NOT NULL,
  reason           text NOT NULL CHECK (reason IN ('submit', 'ttl', 'operator')),
  total            integer NOT NULL CHECK (total >= 0),
  max              integer NOT NULL CHECK (max >= 0 AND total <= max),
  percent          double precision NOT NULL CHECK (percent >= 0 AND percent <= 100),
  graded_at        timestamptz NOT NULL,
  score_sha256     text NOT NULL CHECK (score_sha256 ~ '^[0-9a-f]{64}$'),
  evidence_sha256  text NOT NULL CHECK (evidence_sha256 ~ '^[0-9a-f]{64}$'),
  key_id           text NOT NULL
);
CREATE INDEX scores_tenant_track_idx ON scores (tenant_id, track, percent DESC, graded_at);
CREATE INDEX scores_tenant_subject_idx ON scores (tenant_id, subject, graded_at DESC);
ALTER TABLE scores ENABLE ROW LEVEL SECURITY;
ALTER TABLE scores FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scores
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- Scores are facts: inserted once, never changed.
GRANT SELECT, INSERT ON scores TO frostgate_app;
