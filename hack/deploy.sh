#!/usr/bin/env bash
# deploy.sh applies an overlay to the current kubectl context (server-side apply, so the large
# Agones objects and field ownership behave), makes sure the JWT key and the admin token exist,
# checks that the Secret usher-redis names the shared Redis (on kind: fills it for the in-cluster
# Valkey), and waits for Usher. Agones must already be installed, managing usher-games
# (docs/deploy.md). Outside kind, fill usher-redis first: hack/redis-secret.sh --url ….
#   OVERLAY (homelab)
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

overlay="${OVERLAY:-homelab}"
dir="$root/manifests/overlays/$overlay"
[[ -d "$dir" ]] || die "no overlay $dir"

kubectl get crd fleets.agones.dev >/dev/null 2>&1 ||
	die "Agones is not installed in $(kubectl config current-context): see docs/deploy.md"
log "applying $dir to $(kubectl config current-context)"
kubectl apply --server-side -k "$dir"
"$root/hack/jwt-secret.sh"
"$root/hack/admin-secret.sh"
if [[ "$overlay" == kind ]]; then
	"$root/hack/redis-secret.sh" --in-cluster
else
	"$root/hack/redis-secret.sh"
fi
kubectl -n usher-system rollout status deploy/usher --timeout 180s
