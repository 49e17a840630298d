-- Group commit of decisions in two round trips instead of a dozen: a tenant's decisions serialise
-- on its ledger head, so a group's latency (not the server's CPU) bounds /defend and /ingest.
--
-- fg_decision_group_read reads, without locks, everything a group needs before it is hashed: the
-- decisions already made for its idempotency keys, the previous decision about each entity (for
-- decision_diff), and the decisions log's size and Merkle frontier. fg_decision_group_write then
-- stores the group (ledger entries, Merkle nodes, decision rows, new head) in one statement, after
-- checking under the head lock that the log is exactly the one the group was hashed onto (its size
-- and its Merkle frontier: a group may be built on the previous group before that one is stored,
-- and that one may land differently); if not, it fails with serialization_failure (40001) and the
-- caller reads again.
-- Both are SECURITY INVOKER: they run as frostgate_app, under the tenant's row-level security.

CREATE FUNCTION fg_decision_group_read(p_tenant text, p_keys text[], p_entities text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_size bigint;
  v_level integer;
  v_frontier jsonb;
  v_previous jsonb;
  v_known jsonb;
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  SELECT h.size INTO v_size FROM ledger_heads h WHERE h.tenant_id = p_tenant AND h.log = 'decisions';
  v_size := coalesce(v_size, 0);
  -- One perfect subtree root per set bit of the size, (level b, index (size >> b) - 1), largest
  -- first: a primary-key probe each (a join lets the planner scan the log's nodes instead).
  v_frontier := '[]'::jsonb;
  FOR v_level IN REVERSE 62..0 LOOP
    IF ((v_size >> v_level) & 1) = 1 THEN
      SELECT v_frontier || jsonb_build_array(encode(n.hash, 'hex')) INTO v_frontier
        FROM ledger_nodes n
        WHERE n.tenant_id = p_tenant AND n.log = 'decisions' AND n.level = v_level AND n.idx = (v_size >> v_level) - 1;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'Merkle node (level %, index %) of the decisions log of tenant % is not stored', v_level, (v_size >> v_level) - 1, p_tenant;
      END IF;
    END IF;
  END LOOP;
  -- One newest-first index probe per entity, whatever the planner's statistics say.
  SELECT coalesce(jsonb_agg(to_jsonb(p)), '[]'::jsonb) INTO v_previous
    FROM unnest(p_entities) AS e(entity)
    CROSS JOIN LATERAL (
      SELECT d.entity, d.threat_level, d.rules_triggered, d.mitigations, d.ruleset_version, d.doctrine_version, d.score
      FROM decisions d
      WHERE d.tenant_id = p_tenant AND d.entity = e.entity
      ORDER BY d.ledger_index DESC
      LIMIT 1
    ) p;
  -- One unique-index probe per key, likewise (`event_id = ANY (keys)` gets planned as a filter over
  -- every keyed decision of the tenant, which grows with each ingested batch).
  SELECT coalesce(jsonb_agg(to_jsonb(d)), '[]'::jsonb) INTO v_known
    FROM unnest(p_keys) AS k(event_id)
    CROSS JOIN LATERAL (
      SELECT * FROM decisions d
      WHERE d.tenant_id = p_tenant AND d.event_id = k.event_id AND d.event_id IS NOT NULL
      LIMIT 1
    ) d;
  RETURN jsonb_build_object('size', v_size, 'frontier', v_frontier, 'previous', v_previous, 'known', v_known);
END
$$;

CREATE FUNCTION fg_decision_group_write(p_tenant text, p_expected_size bigint, p_expected_frontier text[], p_group jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_size bigint;
  v_level integer;
  v_at integer := 1;
  v_hash text;
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  INSERT INTO ledger_heads (tenant_id, log, size) VALUES (p_tenant, 'decisions', 0) ON CONFLICT (tenant_id, log) DO NOTHING;
  SELECT h.size INTO v_size FROM ledger_heads h WHERE h.tenant_id = p_tenant AND h.log = 'decisions' FOR UPDATE;
  IF v_size <> p_expected_size THEN
    RAISE EXCEPTION 'the decisions log of tenant % grew from % to % since the group was read', p_tenant, p_expected_size, v_size
      USING ERRCODE = 'serialization_failure';
  END IF;
  FOR v_level IN REVERSE 62..0 LOOP
    IF ((v_size >> v_level) & 1) = 1 THEN
      SELECT encode(n.hash, 'hex') INTO v_hash FROM ledger_nodes n
        WHERE n.tenant_id = p_tenant AND n.log = 'decisions' AND n.level = v_level AND n.idx = (v_size >> v_level) - 1;
      IF v_hash IS DISTINCT FROM p_expected_frontier[v_at] THEN
        RAISE EXCEPTION 'the decisions log of tenant % at size % is not the one the group was built on', p_tenant, v_size
          USING ERRCODE = 'serialization_failure';
      END IF;
      v_at := v_at + 1;
    END IF;
  END LOOP;
  INSERT INTO ledger_entries (tenant_id, log, idx, record_json)
    SELECT p_tenant, 'decisions', e.idx, e.record_json
    FROM jsonb_to_recordset(p_group -> 'entries') AS e(idx bigint, record_json text);
  INSERT INTO ledger_nodes (tenant_id, log, level, idx, hash)
    SELECT p_tenant, 'decisions', n.level, n.idx, decode(n.hash, 'hex')
    FROM jsonb_to_recordset(p_group -> 'nodes') AS n(level smallint, idx bigint, hash text);
  INSERT INTO decisions (decision_id, tenant_id, event_id, event_digest, event, entity, threat_level, score, rules_triggered,
                         mitigations, explanation, ruleset_version, doctrine_version, decision_diff, ledger_index, path,
                         occurred_at, block_until, created_at)
    SELECT d.decision_id, p_tenant, d.event_id, d.event_digest, d.event, d.entity, d.threat_level, d.score, d.rules_triggered,
           d.mitigations, d.explanation, d.ruleset_version, d.doctrine_version, d.decision_diff, d.ledger_index, d.path,
           d.occurred_at, d.block_until, d.created_at
    FROM jsonb_to_recordset(p_group -> 'decisions') AS d(decision_id text, event_id text, event_digest text, event jsonb, entity text,
         threat_level text, score integer, rules_triggered text[], mitigations jsonb, explanation text, ruleset_version text,
         doctrine_version text, decision_diff jsonb, ledger_index bigint, path text, occurred_at timestamptz,
         block_until timestamptz, created_at timestamptz);
  UPDATE ledger_heads SET size = (p_group ->> 'size')::bigint, updated_at = now() WHERE tenant_id = p_tenant AND log = 'decisions';
END
$$;

-- Every decision writes a ledger entry and about two Merkle nodes: their primary keys already lead
-- with tenant_id, so these second indexes only cost each insert a b-tree update.
DROP INDEX ledger_entries_tenant_idx;
DROP INDEX ledger_nodes_tenant_idx;
