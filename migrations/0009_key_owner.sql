-- A key's owner is the person or system it acts for. Approvals compare owners, so a second key of
-- the same person cannot approve that person's change. A key created by a key inherits its owner
-- unless an admin names another.
ALTER TABLE api_keys ADD COLUMN owner text NOT NULL DEFAULT '';
UPDATE api_keys SET owner = id WHERE owner = '';

DROP FUNCTION fg_auth_lookup_key(text);
CREATE FUNCTION fg_auth_lookup_key(p_id text)
RETURNS TABLE (id text, tenant_id text, digest bytea, scopes text[], expires_at timestamptz, revoked_at timestamptz, tenant_disabled boolean, owner text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT k.id, k.tenant_id, k.digest, k.scopes, k.expires_at, k.revoked_at, t.disabled_at IS NOT NULL, k.owner
  FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
  WHERE k.id = p_id
$$;
REVOKE EXECUTE ON FUNCTION fg_auth_lookup_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fg_auth_lookup_key(text) TO frostgate_app;
