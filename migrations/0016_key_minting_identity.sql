-- Who minted each key.
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
