#!/usr/bin/env bash
# jwt-secret.sh puts a JWT signing key into the Secret usher-system/usher-jwt (key key.pem) of
# the current kubectl context, if it has none yet. The key comes from `usher keygen` and goes
# straight into the cluster: it is never written to disk.
#
#   hack/jwt-secret.sh            # create the key if missing
#   hack/jwt-secret.sh --rotate   # put a new key first, keep the old one after it (docs/deploy.md)
#
# The manifests declare the Secret with no data; this script owns `data` with its own field
# manager, so re-applying the manifests never touches the key.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

namespace="${USHER_NAMESPACE:-usher-system}"
secret="${USHER_JWT_SECRET:-usher-jwt}"
rotate=false
[[ "${1:-}" == "--rotate" ]] && rotate=true

current=""
if kubectl get secret -n "$namespace" "$secret" >/dev/null 2>&1; then
	current="$(kubectl get secret -n "$namespace" "$secret" -o jsonpath='{.data.key\.pem}')"
fi
if [[ -n "$current" && "$rotate" == false ]]; then
	log "secret $namespace/$secret already holds a key; use --rotate for a new one"
	exit 0
fi

pem="$(keygen)"
if [[ -n "$current" ]]; then
	# The new key signs; the old one still verifies until removed (after --token-ttl).
	pem="$pem"$'\n'"$(printf '%s' "$current" | base64 -d)"
	log "rotating: the new key signs, the old one still verifies; drop it after the token TTL"
fi
printf '%s\n' "$pem" |
	kubectl create secret generic "$secret" -n "$namespace" --from-file=key.pem=/dev/stdin \
		--dry-run=client -o yaml |
	kubectl apply --server-side --field-manager=usher-jwt-secret -f -
log "secret $namespace/$secret has a key; restart Usher to load a rotated one: kubectl -n $namespace rollout restart deploy/usher"
