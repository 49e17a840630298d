-- The embedded durable queue (the same interface NATS JetStream provides in production).
-- Producers insert inside their tenant transaction (RLS applies); the consumer claims across
-- tenants through definer functions only, with leases so a crashed consumer's work reappears.

CREATE TABLE queue_messages (
  id          bigserial PRIMARY KEY,
  stream      text NOT NULL CHECK (stream ~ '^[A-Z][A-Z0-9_]*$'),
  tenant_id   text NOT NULL REFERENCES tenants(id) CHECK (tenant_id <> '' AND tenant_id <> 'unknown'),
  subject     text NOT NULL,
  payload     jsonb NOT NULL,
  enqueued_at timestamptz NOT NULL DEFAULT now(),
  visible_at  timestamptz NOT NULL DEFAULT now(),
  attempts    integer NOT NULL DEFAULT 0
);
CREATE INDEX queue_messages_ready_idx ON queue_messages (stream, visible_at, id);
CREATE INDEX queue_messages_tenant_idx ON queue_messages (tenant_id);
ALTER TABLE queue_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE queue_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON queue_messages
  USING (tenant_id = current_setting('app.tenant_id', true))
  WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

CREATE FUNCTION fg_queue_claim(p_stream text, p_limit integer, p_lease_s integer)
RETURNS TABLE (id bigint, tenant_id text, subject text, payload jsonb, attempts integer)
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  UPDATE queue_messages q SET visible_at = now() + make_interval(secs => p_lease_s), attempts = q.attempts + 1
  WHERE q.id IN (
    SELECT m.id FROM queue_messages m
    WHERE m.stream = p_stream AND m.visible_at <= now()
    ORDER BY m.id LIMIT p_limit FOR UPDATE SKIP LOCKED)
  RETURNING q.id, q.tenant_id, q.subject, q.payload, q.attempts
$$;

CREATE FUNCTION fg_queue_ack(p_ids bigint[])
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  DELETE FROM queue_messages WHERE id = ANY(p_ids)
$$;

CREATE FUNCTION fg_queue_nak(p_ids bigint[], p_delay_s integer)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  UPDATE queue_messages SET visible_at = now() + make_interval(secs => p_delay_s) WHERE id = ANY(p_ids)
$$;

CREATE FUNCTION fg_queue_depth(p_stream text)
RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT count(*) FROM queue_messages WHERE stream = p_stream
$$;

GRANT SELECT, INSERT ON queue_messages TO frostgate_app;
GRANT USAGE ON SEQUENCE queue_messages_id_seq TO frostgate_app;
REVOKE EXECUTE ON FUNCTION fg_queue_claim(text, integer, integer), fg_queue_ack(bigint[]), fg_queue_nak(bigint[], integer), fg_queue_depth(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fg_queue_claim(text, integer, integer), fg_queue_ack(bigint[]), fg_queue_nak(bigint[], integer), fg_queue_depth(text) TO frostgate_app;
