-- Who minted each key, and a screen of every key id for the auth gate.
--
-- A key minted over HTTP belongs to the identity of the key that minted it (src/core/auth/store.ts);
-- only the platform operator names other owners. created_by keeps the minting key's id (the chain
-- governance approvals walk, docs/governance.md); created_by_identity records the minting
-- principal's identity: the minting key's owner, or 'operator' for keys the operator made
-- (first start, CLI). Rows from before this migration keep their owners, invented or not: the
-- approval check walks created_by, so a key minted by an author still cannot approve for them.
ALTER TABLE api_keys ADD COLUMN created_by_identity text;
UPDATE api_keys k SET created_by_identity = COALESCE(NULLIF(m.owner, ''), m.id) FROM api_keys m WHERE m.id = k.created_by;
UPDATE api_keys SET created_by_identity = 'operator' WHERE created_by_identity IS NULL AND created_by IN ('cli', 'bootstrap');
UPDATE api_keys SET created_by_identity = created_by WHERE created_by_identity IS NULL AND created_by IS NOT NULL;

-- The index refresh reads recent keys only.
CREATE INDEX api_keys_created_at_idx ON api_keys (created_at);

-- The gate keeps every key id in memory with the first 6 bytes of its digest, so an unknown id and
-- a wrong secret cost the same (src/core/auth/key-index.ts). It reads them across tenants through
-- this one function, all of them or those created since a time; never a whole digest.
CREATE FUNCTION fg_auth_key_index(p_since timestamptz)
RETURNS TABLE (id text, digest_prefix bytea, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT k.id, substring(k.digest FROM 1 FOR 6), k.created_at
  FROM api_keys k
  WHERE p_since IS NULL OR k.created_at >= p_since
$$;
REVOKE EXECUTE ON FUNCTION fg_auth_key_index(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fg_auth_key_index(timestamptz) TO frostgate_app;
