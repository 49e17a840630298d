-- /ingest backpressure: how much accepted work waits to be decided, over every tenant and process.
--
-- A batch waits from its 202 until completed_at (or error, when it was given up). The function
-- returns totals only (no tenant's rows), so it is SECURITY DEFINER like the queue's functions: the
-- application role sees no tenant's batches without app.tenant_id.
-- Both indexes are partial or narrow: the first holds only waiting batches (what the backlog sums),
-- the second answers "events decided in the last minute" (the rate that turns events into seconds).
CREATE INDEX ingest_batches_waiting_idx ON ingest_batches (received_at) INCLUDE (event_count, decision_ids)
  WHERE completed_at IS NULL AND error IS NULL;
CREATE INDEX ingest_batches_completed_idx ON ingest_batches (completed_at) INCLUDE (event_count) WHERE completed_at IS NOT NULL;

CREATE FUNCTION fg_ingest_backlog()
RETURNS TABLE (events bigint, batches bigint, oldest_s double precision, decided_last_minute bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT w.events, w.batches, w.oldest_s, r.decided
  FROM (
    SELECT coalesce(sum(b.event_count - cardinality(b.decision_ids)), 0)::bigint AS events,
           count(*)::bigint AS batches,
           coalesce(extract(epoch FROM now() - min(b.received_at)), 0)::double precision AS oldest_s
    FROM ingest_batches b WHERE b.completed_at IS NULL AND b.error IS NULL
  ) w,
  (SELECT coalesce(sum(b.event_count), 0)::bigint AS decided FROM ingest_batches b WHERE b.completed_at > now() - interval '60 seconds') r
$$;
REVOKE EXECUTE ON FUNCTION fg_ingest_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fg_ingest_backlog() TO frostgate_app;
