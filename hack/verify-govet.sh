#!/usr/bin/env bash
# verify-govet.sh runs go vet on every module of the repository that has packages (the root
# and test/cluster; hack/tools holds only tool requirements).
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

status=0
while IFS= read -r dir; do
	if [[ -z "$(go -C "$root/$dir" list ./... 2>/dev/null)" ]]; then
		continue
	fi
	go -C "$root/$dir" vet ./... || {
		log "$dir: go vet failed (above)"
		status=1
	}
done < <(go_modules)
((status == 0)) || die "go vet found problems"
log "go vet: no problems"
