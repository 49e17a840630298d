#!/usr/bin/env bash
# Builds the FrostGate OCI image here, without a registry:
#   1. a Debian base made with mmdebstrap (trixie: its nodejs is 20.x; bookworm's is 18) and
#      imported with `docker import` as frostgate-base:<digest of this script's package list>;
#   2. the FrostGate image on it (deploy/image/Dockerfile): non-root user, npm ci --omit=dev,
#      a healthcheck on /health/live;
#   3. frostgate-s3:local on that (deploy/image/s3/Dockerfile), the stack's S3 service.
# Prints each step's time, the image size and the total build time.
# Needs: mmdebstrap, docker (a running daemon; DOCKER_HOST may point at a private one).
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG="${FROSTGATE_IMAGE_TAG:-frostgate:local}"
S3_TAG="${FROSTGATE_S3_IMAGE_TAG:-frostgate-s3:local}"
SUITE=trixie
# Packages the roles need at run time: node for all; the lab runtime's tools for the worker
# (and the orchestrator/spawn when they build labs themselves); curl for the healthcheck.
PACKAGES=nodejs,npm,ca-certificates,curl,tini,iproute2,nftables,frr,util-linux,iputils-ping,zstd,dnsmasq-base,bind9-dnsutils,busybox,procps
BASE="frostgate-base:$(printf '%s %s' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)"

start=$(date +%s)
step() { printf '== %s (%ss)\n' "$1" "$(($(date +%s) - start))"; }

if docker image inspect "$BASE" >/dev/null 2>&1; then
  step "base image $BASE exists"
else
  step "mmdebstrap $SUITE base with: $PACKAGES"
  tarball="$(mktemp -d)/base.tar"
  mmdebstrap --variant=minbase --include="$PACKAGES" \
    --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* "$1"/usr/share/doc "$1"/usr/share/man' \
    "$SUITE" "$tarball" http://deb.debian.org/debian
  step "docker import"
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$tarball" "$BASE"
  rm -rf "$(dirname "$tarball")"
fi

step "docker build $TAG"
# npm's trust store on this host (a TLS-inspecting proxy's CA, if any), for the builder stage only.
ca="$(npm config get cafile 2>/dev/null || true)"
if [ -n "$ca" ] && [ "$ca" != null ] && [ -f "$ca" ]; then cp "$ca" deploy/image/.build-ca.crt; else : > deploy/image/.build-ca.crt; fi
trap 'rm -f deploy/image/.build-ca.crt' EXIT
docker build --network host --build-arg "BASE=$BASE" -f deploy/image/Dockerfile -t "$TAG" .
size=$(docker image inspect "$TAG" --format '{{.Size}}')
printf 'image %s: %s MB, built in %ss\n' "$TAG" "$((size / 1000000))" "$(($(date +%s) - start))"

# The stack's S3 service (s3rver behind a SigV4 gateway; MinIO is not packaged in Debian), on this image.
step "docker build $S3_TAG"
docker build --network host --build-arg "FROSTGATE_IMAGE=$TAG" -f deploy/image/s3/Dockerfile -t "$S3_TAG" .
size=$(docker image inspect "$S3_TAG" --format '{{.Size}}')
printf 'image %s: %s MB, built in %ss\n' "$S3_TAG" "$((size / 1000000))" "$(($(date +%s) - start))"
