#!/bin/sh
# Secrets come from files (compose secrets, Kubernetes secret volumes), never from the image or
# the compose file: each file /run/secrets/FG_* (or RECEIPT_HMAC_SECRET, ET_HMAC_SECRET,
# STRIPE_WEBHOOK_SECRET) becomes the environment variable of its name.
set -eu
for f in /run/secrets/*; do
  [ -f "$f" ] || continue
  name=$(basename "$f")
  case "$name" in
    FG_* | RECEIPT_HMAC_SECRET | ET_HMAC_SECRET | STRIPE_WEBHOOK_SECRET) export "$name=$(cat "$f")" ;;
  esac
done
exec node /opt/frostgate/bin/frostgate.mjs "$@"
