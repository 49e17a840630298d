-- The group write takes typed arrays instead of one jsonb document (issue 22, point 2): the
-- server no longer builds, and Postgres no longer parses, a JSON envelope of every decision,
-- ledger entry and node of the group; each column arrives as one array and is inserted through
-- unnest. Only the columns that are jsonb in the table (event, mitigations, decision_diff) are
-- still sent as JSON text, one element per decision; rules_triggered as a text[] literal each.
-- The checks are those of fg_decision_group_write (0014): under the head lock, the log must have
-- the size and Merkle frontier the group was hashed onto, else serialization_failure (40001).
-- SECURITY INVOKER, like 0014: it runs as frostgate_app under the tenant's row-level security,
-- and the foreign keys and CHECKs of the tables hold as for any insert.
CREATE FUNCTION fg_decision_group_append(
  p_tenant text, p_expected_size bigint, p_expected_frontier text[], p_new_size bigint,
  p_entry_idx bigint[], p_entry_json text[],
  p_node_level smallint[], p_node_idx bigint[], p_node_hash text[],
  p_decision_id text[], p_event_id text[], p_event_digest text[], p_event text[], p_entity text[],
  p_threat_level text[], p_score integer[], p_rules text[], p_mitigations text[], p_explanation text[],
  p_ruleset_version text[], p_doctrine_version text[], p_diff text[], p_ledger_index bigint[],
  p_occurred_at timestamptz[], p_block_until timestamptz[], p_path text, p_created_at timestamptz
) RETURNS void
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
    SELECT p_tenant, 'decisions', e.idx, e.record_json FROM unnest(p_entry_idx, p_entry_json) AS e(idx, record_json);
  INSERT INTO ledger_nodes (tenant_id, log, level, idx, hash)
    SELECT p_tenant, 'decisions', n.level, n.idx, decode(n.hash, 'hex') FROM unnest(p_node_level, p_node_idx, p_node_hash) AS n(level, idx, hash);
  INSERT INTO decisions (decision_id, tenant_id, event_id, event_digest, event, entity, threat_level, score, rules_triggered,
                         mitigations, explanation, ruleset_version, doctrine_version, decision_diff, ledger_index, path,
                         occurred_at, block_until, created_at)
    SELECT d.decision_id, p_tenant, d.event_id, d.event_digest, d.event::jsonb, d.entity, d.threat_level, d.score, d.rules::text[],
           d.mitigations::jsonb, d.explanation, d.ruleset_version, d.doctrine_version, d.diff::jsonb, d.ledger_index, p_path,
           d.occurred_at, d.block_until, p_created_at
    FROM unnest(p_decision_id, p_event_id, p_event_digest, p_event, p_entity, p_threat_level, p_score, p_rules, p_mitigations,
                p_explanation, p_ruleset_version, p_doctrine_version, p_diff, p_ledger_index, p_occurred_at, p_block_until)
      AS d(decision_id, event_id, event_digest, event, entity, threat_level, score, rules, mitigations, explanation,
           ruleset_version, doctrine_version, diff, ledger_index, occurred_at, block_until);
  UPDATE ledger_heads SET size = p_new_size, updated_at = now() WHERE tenant_id = p_tenant AND log = 'decisions';
END
$$;
