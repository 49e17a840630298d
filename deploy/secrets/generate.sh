#!/bin/sh
# Generates every secret compose.yml reads, once, into this directory (mode 600; git ignores it).
# Nothing in the bundle has a default password: a stack without these files does not start.
set -eu
cd "$(dirname "$0")"
umask 077
rand() { openssl rand -hex "${1:-32}"; }
new() { [ -s "$1" ] || { printf '%s' "$2" > "$1"; echo "generated $1"; }; }
new postgres_password "$(rand 24)"
new redis_password "$(rand 24)"
new FG_DB_URL "postgres://frostgate:$(cat postgres_password)@postgres:5432/frostgate"
new FG_REDIS_URL "redis://:$(cat redis_password)@redis:6379"
new FG_S3_ACCESS_KEY_ID "fg$(rand 8)"
new FG_S3_SECRET_ACCESS_KEY "$(rand 32)"
new FG_VARIABLES_SECRET "$(rand 32)"
# Seals the messages between the orchestrator, scoreboard, lab pages and workers on NATS.
new FG_FLEET_SECRET "$(rand 32)"
new FG_SESSION_SECRET "$(rand 32)"
new RECEIPT_HMAC_SECRET "$(openssl rand -base64 32)"
new ET_HMAC_SECRET "$(openssl rand -base64 32)"
new STRIPE_WEBHOOK_SECRET "whsec_$(rand 24)"
[ -s ledger.pem ] || { openssl genpkey -algorithm ed25519 -out ledger.pem; echo "generated ledger.pem"; }
[ -s token.pem ] || { openssl genpkey -algorithm ed25519 -out token.pem; echo "generated token.pem"; }
[ -s signing.pem ] || { openssl genpkey -algorithm ed25519 -out signing.pem; echo "generated signing.pem"; }
# The orchestrator's API key is minted by deploy/bootstrap.sh once the schema exists.
[ -e FG_ORCHESTRATOR_API_KEY ] || : > FG_ORCHESTRATOR_API_KEY
# The console's OpenID Connect client secret is your IdP's: put it here (the admin role needs it).
[ -e FG_OIDC_CLIENT_SECRET ] || { : > FG_OIDC_CLIENT_SECRET; echo "created an empty FG_OIDC_CLIENT_SECRET: put your IdP's client secret in it"; }
