#!/usr/bin/env bash
# kind-up.sh: a local cluster with the real Agones path, from nothing to playing.
#   1. create the kind cluster of kind-config.yaml (if it does not exist);
#   2. install the pinned Agones release with Helm, managing the usher-games namespace;
#   3. build the images (hack/image.sh) and load them into the node;
#   4. apply manifests/overlays/kind (server-side) and create the JWT key, the admin token and
#      the in-cluster Valkey's URL and password (hack/jwt-secret.sh, hack/admin-secret.sh,
#      hack/redis-secret.sh --in-cluster);
#   5. wait for Valkey, Usher (two replicas), the portal and the example Fleet.
# Needs Docker. kind, Helm and kubectl come from PATH, else from pinned Go modules (hack/lib.sh).
#
#   KIND_CLUSTER (usher)  AGONES_VERSION (1.56.0)  TAG (dev)
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cluster="${KIND_CLUSTER:-usher}"
agones_version="${AGONES_VERSION:-1.56.0}"
tag="${TAG:-dev}"
context="kind-$cluster"

command -v docker >/dev/null 2>&1 || die "Docker is required for kind (https://docs.docker.com/engine/install/)"
docker info >/dev/null 2>&1 || die "Docker is installed but its daemon is not reachable"

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
	log "kind cluster $cluster exists"
else
	log "creating kind cluster $cluster"
	kind create cluster --name "$cluster" --config "$root/kind-config.yaml" --wait 120s
fi
k() { kubectl --context "$context" "$@"; }

# Agones manages (creates the SDK service account and RoleBinding in) only the namespaces
# listed in gameservers.namespaces, which must exist first.
for ns in usher-system usher-games; do
	k create namespace "$ns" --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
done
log "installing Agones $agones_version"
helm upgrade --install agones agones \
	--repo https://agones.dev/chart/stable --version "$agones_version" \
	--kube-context "$context" --namespace agones-system --create-namespace \
	--set "gameservers.namespaces={default,usher-games}" \
	--set agones.ping.install=false \
	--set agones.allocator.install=false \
	--wait --timeout 10m

log "building and loading images (tag $tag)"
TAG="$tag" "$root/hack/image.sh"
kind load docker-image --name "$cluster" "usher:$tag" "gdsdk-bridge:$tag" "example-server:$tag"

log "applying manifests/overlays/kind"
k apply --server-side -k "$root/manifests/overlays/kind"
KUBECTL_CONTEXT="$context" "$root/hack/jwt-secret.sh"
KUBECTL_CONTEXT="$context" "$root/hack/admin-secret.sh"
KUBECTL_CONTEXT="$context" "$root/hack/redis-secret.sh" --in-cluster

log "waiting for Valkey, Usher, the portal and the example Fleet"
k -n usher-system rollout status deploy/valkey --timeout 180s
k -n usher-system rollout status deploy/usher --timeout 180s
k -n usher-system rollout status deploy/portal --timeout 180s
k -n usher-games wait fleet/example --for=jsonpath='{.status.readyReplicas}'=2 --timeout 300s

cat >&2 <<MSG
kind-up: ready.
  portal     http://localhost:8000
  Usher API  http://localhost:8080   (try: curl -s -X POST localhost:8080/request_token)
  admin      kubectl --context $context -n usher-system port-forward svc/usher-admin 8081
MSG
