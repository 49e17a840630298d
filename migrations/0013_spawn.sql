-- Forge spawn: entitlements (a learner's right to a track and tier, with credits), spawn requests
-- (idempotency on request_id and the quota counters) and billing events (every charge and grant,
-- each also an entry of the tenant's audit ledger, written in the same transaction).

CREATE TABLE entitlements (
  -- The entitlement token's jti: ent_<receipt id>; a receipt is exchanged (or a checkout granted) once.
  entitlement_id text PRIMARY KEY CHECK (entitlement_id ~ '^ent_[A-Za-z0-9_.:-]{1,200}$'),
  tenant_id      text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  subject        text NOT NULL CHECK (subject <> ''),
  track          text NOT NULL CHECK (track IN ('netplus', 'ccna', 'cissp')),
  tier           text NOT NULL CHECK (tier IN ('basic', 'pro', 'enterprise')),
  credits        integer NOT NULL CHECK (credits >= 0),
  credits_used   integer NOT NULL DEFAULT 0 CHECK (credits_used >= 0 AND credits_used <= credits),
  expires_at     timestamptz NOT NULL,
  source         text NOT NULL CHECK (source IN ('receipt', 'stripe')),
  ledger_index   bigint NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entitlements_subject_idx ON entitlements (tenant_id, subject, track, expires_at);
ALTER TABLE entitlements ENABLE ROW LEVEL SECURITY;
ALTER TABLE entitlements FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON entitlements
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON entitlements TO frostgate_app;

-- One row per accepted spawn. 'pending' while the orchestrator builds the lab (it then counts as
-- a running lab for the quotas), 'launched' once it runs; a spawn whose lab could not be built is
-- deleted, so a retry with the same request_id starts over and the failure costs no quota.
CREATE TABLE spawn_requests (
  tenant_id        text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  request_id       text NOT NULL CHECK (request_id ~ '^[A-Za-z0-9._:@-]{1,128}$'),
  body_digest      text NOT NULL,
  subject          text NOT NULL,
  track            text NOT NULL,
  template_id      text NOT NULL,
  template_version text NOT NULL,
  scenario_id      text NOT NULL UNIQUE,
  entitlement_id   text,
  client_id        text,
  status           text NOT NULL CHECK (status IN ('pending', 'launched')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  launched_at      timestamptz,
  PRIMARY KEY (tenant_id, request_id)
);
CREATE INDEX spawn_requests_subject_idx ON spawn_requests (tenant_id, subject, created_at);
CREATE INDEX spawn_requests_pending_idx ON spawn_requests (tenant_id) WHERE status = 'pending';
ALTER TABLE spawn_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE spawn_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON spawn_requests
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON spawn_requests TO frostgate_app;

CREATE TABLE billing_events (
  event_id       text PRIMARY KEY CHECK (event_id ~ '^bil_[a-z0-9]{24}$'),
  tenant_id      text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  kind           text NOT NULL CHECK (kind IN ('grant', 'charge')),
  mode           text NOT NULL CHECK (mode IN ('fake_charge', 'stripe')),
  subject        text NOT NULL,
  track          text NOT NULL,
  entitlement_id text NOT NULL,
  scenario_id    text,
  credits        integer NOT NULL,
  amount_cents   integer NOT NULL DEFAULT 0 CHECK (amount_cents >= 0),
  currency       text,
  external_ref   text,
  ledger_index   bigint NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_events_tenant_idx ON billing_events (tenant_id, created_at);
ALTER TABLE billing_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE billing_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON billing_events
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON billing_events TO frostgate_app;
