#!/usr/bin/env bash
# Builds frostgate-services:local, the data services of deploy/compose.yml from Debian packages
# (no registry): Postgres, Redis, NATS and Prometheus on a trixie base made with mmdebstrap.
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)
tarball="$(mktemp -d)/services.tar"
mmdebstrap --variant=minbase --include=postgresql,redis-server,nats-server,prometheus,ca-certificates \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* "$1"/usr/share/doc "$1"/usr/share/man' \
  --customize-hook='copy-in services-entrypoints/postgres-entrypoint services-entrypoints/redis-entrypoint /usr/local/bin' \
  trixie "$tarball" http://deb.debian.org/debian
docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/17/bin' "$tarball" frostgate-services:local
rm -rf "$(dirname "$tarball")"
size=$(docker image inspect frostgate-services:local --format '{{.Size}}')
printf 'image frostgate-services:local: %s MB, built in %ss\n' "$((size / 1000000))" "$(($(date +%s) - start))"
