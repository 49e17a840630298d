#!/usr/bin/env bash
# Builds frostgate-services:local, the data services of deploy/compose.yml from Debian packages
# (no registry): Postgres, Redis, NATS and Prometheus on a trixie base made with mmdebstrap, then
# the entrypoints (services-entrypoints/) on it. The base is cached by a digest of its package
# list, so changing an entrypoint rebuilds in seconds.
# Needs: mmdebstrap, docker (a running daemon; DOCKER_HOST may point at a private one).
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)
TAG="${SERVICES_IMAGE_TAG:-frostgate-services:local}"
SUITE=trixie
PACKAGES=postgresql,redis-server,nats-server,prometheus,ca-certificates
BASE="frostgate-services-base:$(printf '%s %s' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)"
if docker image inspect "$BASE" >/dev/null 2>&1; then
  printf '== base image %s exists\n' "$BASE"
else
  printf '== mmdebstrap %s base with: %s\n' "$SUITE" "$PACKAGES"
  tarball="$(mktemp -d)/services.tar"
  mmdebstrap --variant=minbase --include="$PACKAGES" \
    --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* "$1"/usr/share/doc "$1"/usr/share/man' \
    "$SUITE" "$tarball" http://deb.debian.org/debian
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/17/bin' "$tarball" "$BASE"
  rm -rf "$(dirname "$tarball")"
fi
printf '== docker build %s\n' "$TAG"
# /data (the NATS volume) owned by nobody, the user NATS runs as: a new volume takes the owner from the image.
printf 'FROM %s\nCOPY postgres-entrypoint redis-entrypoint nats-entrypoint /usr/local/bin/\nRUN install -d -o nobody -g nogroup /data\n' "$BASE" | docker build -q -t "$TAG" -f - services-entrypoints >/dev/null
size=$(docker image inspect "$TAG" --format '{{.Size}}')
printf 'image %s: %s MB, built in %ss\n' "$TAG" "$((size / 1000000))" "$(($(date +%s) - start))"
