-- Tamper-evident ledger: one RFC 9162 Merkle log per (tenant, log). Entries hold the RFC 8785
-- canonical JSON of each record; ledger_nodes holds every completed perfect-subtree root (level 0
-- = leaf hashes), so appends are O(log n) and proofs read O(log n) nodes; ledger_heads serialises
-- appends (SELECT ... FOR UPDATE) and holds the size; checkpoints are signed tree heads.

CREATE TABLE ledger_heads (
  tenant_id  text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  log        text NOT NULL CHECK (log IN ('decisions', 'audit')),
  size       bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, log)
);

CREATE TABLE ledger_entries (
  tenant_id   text NOT NULL CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  log         text NOT NULL,
  idx         bigint NOT NULL CHECK (idx >= 0),
  record_json text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, log, idx),
  FOREIGN KEY (tenant_id, log) REFERENCES ledger_heads (tenant_id, log)
);

CREATE TABLE ledger_nodes (
  tenant_id text NOT NULL CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  log       text NOT NULL,
  level     smallint NOT NULL CHECK (level >= 0 AND level < 64),
  idx       bigint NOT NULL CHECK (idx >= 0),
  hash      bytea NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (tenant_id, log, level, idx)
);

CREATE TABLE ledger_checkpoints (
  tenant_id  text NOT NULL CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  log        text NOT NULL,
  tree_size  bigint NOT NULL CHECK (tree_size >= 0),
  root_hash  bytea NOT NULL CHECK (length(root_hash) = 32),
  note       text NOT NULL,
  key_id     text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, log, tree_size)
);

-- Public verifier keys of every key that ever signed a checkpoint: rotation keeps old ones.
CREATE TABLE ledger_signing_keys (
  key_id        text PRIMARY KEY,
  vkey          text NOT NULL,
  first_used_at timestamptz NOT NULL DEFAULT now(),
  retired_at    timestamptz
);

CREATE INDEX ledger_heads_tenant_idx ON ledger_heads (tenant_id);
CREATE INDEX ledger_entries_tenant_idx ON ledger_entries (tenant_id);
CREATE INDEX ledger_nodes_tenant_idx ON ledger_nodes (tenant_id);
CREATE INDEX ledger_checkpoints_tenant_idx ON ledger_checkpoints (tenant_id);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['ledger_heads', 'ledger_entries', 'ledger_nodes', 'ledger_checkpoints'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
      USING (tenant_id = current_setting('app.tenant_id', true))
      WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
  END LOOP;
END $$;

-- Append-only for the application: no UPDATE or DELETE on entries, nodes or checkpoints.
GRANT SELECT, INSERT, UPDATE ON ledger_heads TO frostgate_app;
GRANT SELECT, INSERT ON ledger_entries, ledger_nodes, ledger_checkpoints TO frostgate_app;
GRANT SELECT, INSERT ON ledger_signing_keys TO frostgate_app;
