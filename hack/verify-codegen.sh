#!/usr/bin/env bash
# verify-codegen.sh fails when a generated file (zz_generated.deepcopy.go) is not what
# hack/update-codegen.sh would write from the current sources, and prints the difference.
#
#   hack/verify-codegen.sh
#
# It copies go.mod, go.sum and the root module's package directories to a temporary directory,
# regenerates there and compares, so the working tree is never modified, pass or fail.
# The fix for a failure: hack/update-codegen.sh (go tool task codegen), then commit the result.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

cd "$root"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/usher-codegen.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

cp go.mod go.sum "$tmp/"
moddir="$(go list -m -f '{{.Dir}}')"
pkgdirs="$(go list -e -f '{{.Dir}}' ./...)"
# Each package's own files only (its subdirectories are packages of their own, or testdata).
while IFS= read -r pkgdir; do
	dest="$tmp/${pkgdir#"$moddir"}"
	mkdir -p "$dest"
	for f in "$pkgdir"/*; do
		if [[ -f "$f" ]]; then cp "$f" "$dest/"; fi
	done
done <<<"$pkgdirs"

# Regenerate from scratch, so that a generated file the tags no longer ask for shows up too.
list_generated() { (cd "$tmp" && find . -name zz_generated.deepcopy.go | sed 's|^\./||'); }
mapfile -t committed < <(list_generated)
find "$tmp" -name zz_generated.deepcopy.go -delete
"$root/hack/update-codegen.sh" "$tmp"
mapfile -t generated < <(list_generated)

status=0
while IFS= read -r rel; do
	[[ -n "$rel" ]] || continue
	diff -uN --label "a/$rel" --label "b/$rel" "$root/$rel" "$tmp/$rel" || status=1
done < <(printf '%s\n' "${committed[@]}" "${generated[@]}" | sort -u)

if ((status != 0)); then
	die "generated code is out of date (diff above: -committed +regenerated): run hack/update-codegen.sh (go tool task codegen) and commit the result"
fi
log "generated code is up to date"
