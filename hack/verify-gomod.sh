#!/usr/bin/env bash
# verify-gomod.sh fails when a module's go.mod or go.sum is not what `go mod tidy` would write,
# for every module of the repository (the root, test/cluster, hack/tools), and prints the
# difference. The fix: go -C DIR mod tidy.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

status=0
while IFS= read -r dir; do
	if ! go -C "$root/$dir" mod tidy -diff; then
		log "$dir: go.mod/go.sum not tidy (diff above): run 'go -C $dir mod tidy'"
		status=1
	fi
done < <(go_modules)
((status == 0)) || die "some modules are not tidy"
log "every module is tidy: $(go_modules | tr '\n' ' ')"
