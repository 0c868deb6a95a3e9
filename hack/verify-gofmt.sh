#!/usr/bin/env bash
# verify-gofmt.sh fails when a Go file (tracked or new, in any module) is not gofmt-formatted,
# and prints the difference. The fix: gofmt -w FILE.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

cd "$root"
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.go' | grep -v '/testdata/' || true)
bad="$(gofmt -l "${files[@]}")"
if [[ -n "$bad" ]]; then
	gofmt -d "${files[@]}" || true
	die "not gofmt-formatted (diff above): $(echo "$bad" | tr '\n' ' ')- run gofmt -w on them"
fi
log "all ${#files[@]} Go files are formatted"
