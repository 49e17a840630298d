#!/usr/bin/env bash
# First start (and every later one) of the compose stack, in the order it needs:
#   1. secrets generated once (secrets/generate.sh; nothing has a default password);
#   2. Postgres up and healthy, the schema migrated (staging and prod never migrate on start);
#   3. the orchestrator's handoff key (scope forge:operate, bootstrap tenant) minted once into
#      secrets/FG_ORCHESTRATOR_API_KEY: the spawn role hands scenarios over with it;
#   4. everything up.
# Extra arguments go to docker-compose (e.g. -f compose.staging.yml). COMPOSE_PROJECT_NAME names the stack.
set -euo pipefail
cd "$(dirname "$0")"
compose=(docker-compose --compatibility -f compose.yml "$@")
tenant="${FG_BOOTSTRAP_TENANT:-default}"

./secrets/generate.sh
# The containers' non-root users read the secret files (compose bind-mounts them as they are): the
# files are 644 inside a 700 directory, so no other user of this host reaches them.
chmod 700 secrets && chmod 644 secrets/*
"${compose[@]}" up -d postgres
"${compose[@]}" run --rm migrate
if [ ! -s secrets/FG_ORCHESTRATOR_API_KEY ]; then
  "${compose[@]}" run --rm migrate tenants create "$tenant" --name 'bootstrap tenant' >/dev/null 2>&1 || true
  out=$("${compose[@]}" run --rm migrate keys create --tenant "$tenant" --scopes forge:operate --name orchestrator-handoff --json)
  key=$(printf '%s' "$out" | grep -o '"key": *"fg_[^"]*"' | sed 's/.*"\(fg_[^"]*\)"/\1/')
  [ -n "$key" ] || { echo "could not mint the orchestrator's key: $out" >&2; exit 1; }
  (umask 077 && printf '%s' "$key" > secrets/FG_ORCHESTRATOR_API_KEY)
  chmod 644 secrets/FG_ORCHESTRATOR_API_KEY
  echo "minted the orchestrator's handoff key (tenant $tenant)"
fi
"${compose[@]}" up -d
