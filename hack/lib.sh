#!/usr/bin/env bash
# lib.sh: helpers sourced by the other hack/ scripts. Tools come from PATH when installed, else
# from pinned Go modules through `go run` (only Docker must be installed for the kind path).
#   KIND_VERSION   sigs.k8s.io/kind release           (default v0.30.0, which built the node image)
#   HELM_VERSION   helm.sh/helm/v3 release            (default v3.22.0)
#   KUBECTL        a kubectl to use instead of the one built from test/cluster's pinned Kubernetes

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIND_VERSION="${KIND_VERSION:-v0.30.0}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"

log() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() {
	log "$*"
	exit 1
}

kind() {
	if command -v kind >/dev/null 2>&1; then
		command kind "$@"
	else
		go run "sigs.k8s.io/kind@${KIND_VERSION}" "$@"
	fi
}

helm() {
	if command -v helm >/dev/null 2>&1; then
		command helm "$@"
	else
		go run "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" "$@"
	fi
}

# kubectl: $KUBECTL, else one on PATH, else the kubectl of test/cluster's pinned Kubernetes
# (a `tool` of that module, built once and cached by Go).
# KUBECTL_CONTEXT, when set, is passed as --context.
kubectl() {
	local ctx=()
	[[ -n "${KUBECTL_CONTEXT:-}" ]] && ctx=(--context "$KUBECTL_CONTEXT")
	if [[ -n "${KUBECTL:-}" ]]; then
		"$KUBECTL" "${ctx[@]}" "$@"
	elif command -v kubectl >/dev/null 2>&1; then
		command kubectl "${ctx[@]}" "$@"
	else
		go -C "$root/test/cluster" tool kubectl "${ctx[@]}" "$@"
	fi
}

# keygen prints a new Ed25519 signing key (PEM) from Usher's own `usher keygen`.
keygen() {
	go -C "$root" run ./cmd/usher keygen
}

# go_modules prints the directory of every Go module in the repository (tracked or new go.mod
# files, relative to the root), the root module first.
go_modules() {
	(cd "$root" && git ls-files --cached --others --exclude-standard -- 'go.mod' '*/go.mod' |
		grep -v '/testdata/' | xargs -n1 dirname | sort -u)
}
