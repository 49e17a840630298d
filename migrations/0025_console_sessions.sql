-- Sessions of the operators' console (src/core/console/). A person signs in through OpenID
-- Connect; the browser then holds a random session secret in an HttpOnly cookie, of which only the
-- SHA-256 digest is stored here. A session acts for one tenant with the scopes the IdP's groups
-- map to, like an API key does; its identity is the IdP's subject (two-person rule).
CREATE TABLE console_sessions (
  id           text PRIMARY KEY,
  tenant_id    text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  digest       bytea NOT NULL UNIQUE,
  subject      text NOT NULL,
  name         text NOT NULL DEFAULT '',
  email        text NOT NULL DEFAULT '',
  scopes       text[] NOT NULL,
  created_at   timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL,
  revoked_at   timestamptz,
  revoked_by   text,
  user_agent   text NOT NULL DEFAULT '',
  ip           text NOT NULL DEFAULT ''
);
CREATE INDEX console_sessions_tenant_idx ON console_sessions (tenant_id);
CREATE INDEX console_sessions_subject_idx ON console_sessions (tenant_id, subject);
ALTER TABLE console_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE console_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON console_sessions
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON console_sessions TO frostgate_app;

-- The gate finds a session by its cookie before it knows the tenant: this one function returns
-- the row of a digest across tenants (and whether its tenant is disabled), nothing else.
CREATE FUNCTION fg_console_session_lookup(p_digest bytea)
RETURNS TABLE (id text, tenant_id text, subject text, name text, scopes text[], created_at timestamptz, last_seen_at timestamptz,
               expires_at timestamptz, revoked_at timestamptz, tenant_disabled boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT s.id, s.tenant_id, s.subject, s.name, s.scopes, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at, t.disabled_at IS NOT NULL
  FROM console_sessions s JOIN tenants t ON t.id = s.tenant_id
  WHERE s.digest = p_digest
$$;
REVOKE EXECUTE ON FUNCTION fg_console_session_lookup(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fg_console_session_lookup(bytea) TO frostgate_app;
