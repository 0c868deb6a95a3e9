#!/usr/bin/env bash
# verify-bridge-deps.sh fails when the gdsdk-bridge sidecar (./gdsdk-bridge/...) depends on a
# package outside the standard library other than the ones listed in `allowed`: the sidecar
# runs beside every game server, so it stays small and must never pull in Fiber, client-go or
# the matchmaker's internals. A new package of the bridge's own goes into `allowed`.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

module=github.com/usher-gg/usher
# The only non-standard packages the sidecar may build from: its main, its bridge package,
# contract (the game-server contract, standard library only) and agones/sdk, Usher's
# standard-library-only client of the Agones SDK gateway.
allowed=(
	"$module/gdsdk-bridge"
	"$module/gdsdk-bridge/bridge"
	"$module/contract"
	"$module/agones/sdk"
)

cd "$root"
mapfile -t deps < <(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./gdsdk-bridge/...)
bad=()
for dep in "${deps[@]}"; do
	[[ -n "$dep" ]] || continue
	ok=false
	for a in "${allowed[@]}"; do
		if [[ "$dep" == "$a" ]]; then ok=true; fi
	done
	$ok || bad+=("$dep")
done
if ((${#bad[@]} > 0)); then
	printf '  %s\n' "${bad[@]}" >&2
	# Where they come in: the imports of the allowed packages that are not allowed.
	go list -deps -f '{{.ImportPath}}{{range .Imports}} {{.}}{{end}}' ./gdsdk-bridge/... |
		awk -v allowed="${allowed[*]}" -v bad="${bad[*]}" '
			BEGIN { split(allowed, a, " "); for (i in a) ok[a[i]] = 1; split(bad, b, " "); for (i in b) no[b[i]] = 1 }
			($1 in ok) { for (i = 2; i <= NF; i++) if ($i in no) print "  " $1 " imports " $i }' >&2
	die "gdsdk-bridge depends on ${#bad[@]} package(s) outside the standard library and its allowed list (above); allowed: ${allowed[*]}"
fi
log "gdsdk-bridge builds from the standard library and ${#deps[@]} allowed packages only"
