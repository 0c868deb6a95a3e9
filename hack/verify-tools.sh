#!/usr/bin/env bash
# verify-tools.sh builds every tool each module declares (the `tool` lines of its go.mod: task,
# deepcopy-gen, govulncheck, …), so a dependency upgrade that breaks one fails here and not the
# next time someone types `go tool task`. (Raising go.yaml.in/yaml/v4 to v4.0.0 for a newer
# kin-openapi once broke task v3.45.5, which needs v4.0.0-rc.3.) The fix: pin the dependency
# the tool needs, or move to a release of the tool that builds with it.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

status=0
built=()
while IFS= read -r dir; do
	grep -q '^tool\b' "$root/$dir/go.mod" || continue
	if go -C "$root/$dir" build tool; then
		built+=("$dir")
	else
		log "$dir: a tool of go.mod does not build (above)"
		status=1
	fi
done < <(go_modules)
((status == 0)) || die "some tools do not build"
log "every tool builds in: ${built[*]}"
