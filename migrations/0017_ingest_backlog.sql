-- /ingest backpressure: how much accepted work waits to be decided, over every tenant and process.
--
-- A batch waits from its 202 until completed_at (or error, when it was given up). The function
-- returns totals only (no tenant's rows), so it is SECURITY DEFINER like the queue's functions: the
-- application role sees no tenant's batches without app.tenant_id.
-- A batch whose message goes to a queue outside the database (JetStream) is written with queued =
-- false and marked once the queue took it: a process killed in between leaves a row the client
-- never got a 202 for, which must not count as waiting work forever.
ALTER TABLE ingest_batches ADD COLUMN queued boolean NOT NULL DEFAULT true;
-- The index holds only waiting batches: what the backlog sums.
CREATE INDEX ingest_batches_waiting_idx ON ingest_batches (received_at) INCLUDE (event_count, decision_ids)
  WHERE completed_at IS NULL AND error IS NULL AND queued;

CREATE FUNCTION fg_ingest_backlog()
RETURNS TABLE (events bigint, batches bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT coalesce(sum(b.event_count - cardinality(b.decision_ids)), 0)::bigint, count(*)::bigint
  FROM ingest_batches b WHERE b.completed_at IS NULL AND b.error IS NULL AND b.queued
$$;
REVOKE EXECUTE ON FUNCTION fg_ingest_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fg_ingest_backlog() TO frostgate_app;
