#!/usr/bin/env bash
# vulndb.sh builds a local copy of the Go vulnerability database for govulncheck's -db flag and
# prints its directory (index/db.json, index/modules.json, ID/GO-*.json, each also .gz).
#
#   hack/vulndb.sh                                  # the newest data, built once per version
#   VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018 hack/vulndb.sh   # a pinned one
#
# The public database host (vuln.go.dev) is not reachable from CI, but the Go module proxy
# serves golang.org/x/vulndb, the database's source repository: data/osv/ holds every advisory
# as an OSV JSON file, and its cmd/indexdb turns such a folder into the database layout
# govulncheck reads. The advisories' modified/published times are zero in that folder (vuln.go.dev
# sets them from the git history), which govulncheck does not need for matching.
# Built into ${USHER_VULNDB:-~/.cache/usher-vulndb}/VERSION; older versions are removed.
# The first build takes about a minute (downloads and builds indexdb), later ones seconds.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

version="${VULNDB_VERSION:-latest}"
cache="${USHER_VULNDB:-${XDG_CACHE_HOME:-$HOME/.cache}/usher-vulndb}"
mkdir -p "$cache"
# Outside any module, so that nothing is added to a go.mod.
cd "$cache"
export GOWORK=off GOFLAGS=-mod=mod

info="$(go mod download -json "golang.org/x/vulndb@$version")" ||
	die "cannot download golang.org/x/vulndb@$version from the Go module proxy: $info"
field() { sed -n 's/^[[:space:]]*"'"$1"'": "\(.*\)",\{0,1\}$/\1/p' <<<"$info"; }
resolved="$(field Version)"
src="$(field Dir)"
[[ -n "$resolved" && -d "$src/data/osv" ]] || die "golang.org/x/vulndb@$version has no data/osv folder: $info"

out="$cache/$resolved"
if [[ -f "$out/index/db.json" && -f "$out/.complete" ]]; then
	log "golang.org/x/vulndb $resolved: up to date in $out"
	echo "$out"
	exit 0
fi

log "building the vulnerability database from golang.org/x/vulndb $resolved ($(find "$src/data/osv" -name '*.json' | wc -l) advisories) into $out"
start=$SECONDS
tmp="$(mktemp -d "$cache/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
go run "golang.org/x/vulndb/cmd/indexdb@$resolved" -vulns "$src/data/osv" -out "$tmp/db"
touch "$tmp/db/.complete"
find "$cache" -mindepth 1 -maxdepth 1 -type d -name 'v*' -exec rm -rf {} +
mv "$tmp/db" "$out"
log "built in $((SECONDS - start))s"
echo "$out"
