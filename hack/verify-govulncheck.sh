#!/usr/bin/env bash
# verify-govulncheck.sh fails when the root module's code calls a function with a known
# vulnerability, in a required module or in the standard library (govulncheck, a tool of
# hack/tools/go.mod), checked against a local copy of the Go vulnerability database built by
# hack/vulndb.sh (VULNDB_VERSION pins its version; default: the newest).
# Vulnerabilities in packages that are imported but not called are reported as informational.
# The fix: go get MODULE@FIXED for a module; a newer Go (the toolchain line of every go.mod and
# GO_VERSION in the Dockerfile) for the standard library.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

db="$("$root/hack/vulndb.sh")"
# The standard library is checked at the version go.mod's toolchain line names (what CI and the
# images build with); the go command fetches that toolchain if the local Go is older.
export GOTOOLCHAIN=auto
log "govulncheck $(go -C "$root/hack/tools" list -m -f '{{.Version}}' golang.org/x/vuln) on ./... with $(go -C "$root" env GOVERSION), database $db"
go -C "$root/hack/tools" tool govulncheck -db "file://$db" -C "$root" ./... ||
	die "govulncheck found vulnerabilities in called code, or could not run (above)"
