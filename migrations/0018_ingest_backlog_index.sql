-- 0017's index of waiting batches carried decision_ids in its leaf rows. A b-tree row holds at
-- most ~8 KB, and a batch of more than one chunk is still waiting when its first chunk's 500
-- decision ids (~16 KB) are written, so that update failed ("index row requires 16048 bytes")
-- and the batch could never be decided. The backlog reads decision_ids from the table instead:
-- only waiting batches are visited, and backpressure bounds how many there are.
DROP INDEX ingest_batches_waiting_idx;
CREATE INDEX ingest_batches_waiting_idx ON ingest_batches (received_at) INCLUDE (event_count)
  WHERE completed_at IS NULL AND error IS NULL AND queued;
