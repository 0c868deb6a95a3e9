#!/usr/bin/env bash
# admin-secret.sh puts a random admin token into the Secret usher-system/usher-admin (key token)
# of the current kubectl context, if it has none yet. `usher serve` refuses to start without it.
# The token goes straight into the cluster: it is never written to disk or printed.
#
#   hack/admin-secret.sh            # create the token if missing
#   hack/admin-secret.sh --rotate   # replace it (restart Usher to load it)
#
# Read it when you open the admin page (docs/deploy.md):
#   kubectl -n usher-system get secret usher-admin -o jsonpath='{.data.token}' | base64 -d
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

namespace="${USHER_NAMESPACE:-usher-system}"
secret="${USHER_ADMIN_SECRET:-usher-admin}"
rotate=false
[[ "${1:-}" == "--rotate" ]] && rotate=true

if [[ "$rotate" == false ]] && [[ -n "$(kubectl get secret -n "$namespace" "$secret" -o jsonpath='{.data.token}' 2>/dev/null)" ]]; then
	log "secret $namespace/$secret already holds a token; use --rotate for a new one"
	exit 0
fi

# 32 random bytes, hex: 64 characters.
token="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$token" |
	kubectl create secret generic "$secret" -n "$namespace" --from-file=token=/dev/stdin \
		--dry-run=client -o yaml |
	kubectl apply --server-side --field-manager=usher-admin-secret -f -
log "secret $namespace/$secret has a token; restart Usher to load a rotated one: kubectl -n $namespace rollout restart deploy/usher"
