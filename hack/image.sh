#!/usr/bin/env bash
# image.sh builds the three images of the Dockerfile, one target each, tagged NAME:$TAG.
#   TAG (dev)  VERSION (git describe, else dev)  DOCKER (docker)  REGISTRY (none: e.g. registry.home.arpa/usher/)
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tag="${TAG:-dev}"
version="${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}"
docker="${DOCKER:-docker}"
registry="${REGISTRY:-}"

for target in usher gdsdk-bridge example-server; do
	log "building $registry$target:$tag ($version)"
	DOCKER_BUILDKIT=1 "$docker" build --target "$target" --build-arg "VERSION=$version" \
		--tag "$registry$target:$tag" "$root"
done
