-- Platform foundation: the application role, tenants, API keys, platform state.
-- Every tenant-scoped table carries tenant_id NOT NULL with a CHECK refusing '' and 'unknown',
-- an index on tenant_id, and a FORCE ROW LEVEL SECURITY policy keyed on app.tenant_id, which
-- the application sets per transaction. The application runs as frostgate_app (no BYPASSRLS).

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'frostgate_app') THEN
    CREATE ROLE frostgate_app NOLOGIN NOBYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL; -- another database on the same server created it concurrently
END $$;

GRANT USAGE ON SCHEMA public TO frostgate_app;

CREATE TABLE tenants (
  id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$' AND id <> 'unknown'),
  name        text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);

CREATE TABLE api_keys (
  id           text PRIMARY KEY,
  tenant_id    text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  digest       bytea NOT NULL UNIQUE,
  name         text NOT NULL DEFAULT '',
  scopes       text[] NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  revoked_at   timestamptz,
  last_used_at timestamptz,
  created_by   text
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- The auth gate must find a key before it knows the tenant: this one function, owned by the
-- migrating role, looks a key up by its public id across tenants and returns only what the gate
-- needs; the gate then compares the digest in constant time.
CREATE FUNCTION fg_auth_lookup_key(p_id text)
RETURNS TABLE (id text, tenant_id text, digest bytea, scopes text[], expires_at timestamptz, revoked_at timestamptz, tenant_disabled boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT k.id, k.tenant_id, k.digest, k.scopes, k.expires_at, k.revoked_at, t.disabled_at IS NOT NULL
  FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
  WHERE k.id = p_id
$$;

-- last_used_at is flushed in batches across tenants (see core/auth), through this function only.
CREATE FUNCTION fg_auth_touch_keys(p_ids text[], p_at timestamptz)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, p_at), p_at) WHERE id = ANY(p_ids)
$$;

CREATE TABLE platform_state (
  key        text PRIMARY KEY,
  value      jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE ON tenants TO frostgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys TO frostgate_app;
GRANT SELECT, INSERT, UPDATE ON platform_state TO frostgate_app;
REVOKE EXECUTE ON FUNCTION fg_auth_lookup_key(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION fg_auth_touch_keys(text[], timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fg_auth_lookup_key(text) TO frostgate_app;
GRANT EXECUTE ON FUNCTION fg_auth_touch_keys(text[], timestamptz) TO frostgate_app;
GRANT SELECT ON schema_migrations TO frostgate_app;
