-- Forge scenarios: one row per lab a tenant launched, with its lifecycle state.
-- Tenant-scoped like api_keys. The TTL sweeper and reconcile work across tenants through the
-- two definer functions below only, which return ids and states, never a scenario's content.

CREATE TABLE scenarios (
  scenario_id      text PRIMARY KEY CHECK (scenario_id ~ '^scn_[A-Za-z0-9_]{8,100}$'),
  tenant_id        text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  template_id      text NOT NULL,
  template_version text NOT NULL,
  track            text NOT NULL CHECK (track IN ('netplus', 'ccna', 'cissp')),
  subject          text NOT NULL,
  state            text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'provisioning', 'running', 'grading', 'scored', 'destroyed', 'failed', 'expired')),
  expires_at       timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  error            text,
  devices          jsonb NOT NULL DEFAULT '[]'::jsonb,
  runtime_ref      text
);
CREATE INDEX scenarios_tenant_idx ON scenarios (tenant_id);
CREATE INDEX scenarios_live_expiry_idx ON scenarios (expires_at)
  WHERE state IN ('pending', 'provisioning', 'running', 'grading', 'scored');
ALTER TABLE scenarios ENABLE ROW LEVEL SECURITY;
ALTER TABLE scenarios FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scenarios
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- Scenarios whose lab outlived expires_at (the sweeper then acts inside each tenant).
CREATE FUNCTION fg_scenarios_expired(p_now timestamptz, p_limit integer)
RETURNS TABLE (scenario_id text, tenant_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT s.scenario_id, s.tenant_id FROM scenarios s
  WHERE s.state IN ('pending', 'provisioning', 'running', 'grading', 'scored') AND s.expires_at <= p_now
  ORDER BY s.expires_at LIMIT p_limit
$$;

-- The states of the given scenarios (the labs a runtime holds), for reconcile.
CREATE FUNCTION fg_scenario_states(p_ids text[])
RETURNS TABLE (scenario_id text, tenant_id text, state text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT s.scenario_id, s.tenant_id, s.state FROM scenarios s WHERE s.scenario_id = ANY(p_ids)
$$;

GRANT SELECT, INSERT, UPDATE ON scenarios TO frostgate_app;
REVOKE EXECUTE ON FUNCTION fg_scenarios_expired(timestamptz, integer), fg_scenario_states(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fg_scenarios_expired(timestamptz, integer), fg_scenario_states(text[]) TO frostgate_app;
