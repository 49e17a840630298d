-- One-time token ids (jti), remembered until their token expires (replay protection). Token ids
-- are random UUIDs and carry no tenant data, so the table is global.
CREATE TABLE used_token_ids (
  jti        text PRIMARY KEY,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX used_token_ids_expiry_idx ON used_token_ids (expires_at);
GRANT SELECT, INSERT, DELETE ON used_token_ids TO frostgate_app;
