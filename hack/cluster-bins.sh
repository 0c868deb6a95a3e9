#!/usr/bin/env bash
# cluster-bins.sh builds kube-apiserver and etcd for the real-API-server test tier (test/cluster)
# from the Go modules pinned in test/cluster/go.mod, into a cache directory, only when they are
# missing or were built from other module versions or another Go toolchain.
#
#   hack/cluster-bins.sh            # build if needed, print the directory
#   USHER_CLUSTER_BIN=/some/dir hack/cluster-bins.sh
#
# The first build takes several minutes on two cores; later runs take seconds.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${USHER_CLUSTER_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/usher-cluster-bin}"
apiserver_pkg=k8s.io/kubernetes/cmd/kube-apiserver
etcd_pkg=go.etcd.io/etcd/server/v3

cd "$root/test/cluster"

# The stamp covers every module that goes into either binary (after replace lines) and the
# toolchain, so a change to any of them rebuilds, and nothing else does.
stamp="$(
	{
		go version
		go list -deps -f '{{with .Module}}{{.Path}} {{.Version}}{{with .Replace}} => {{.Path}} {{.Version}}{{end}}{{end}}' \
			"$apiserver_pkg" "$etcd_pkg" | sort -u
	} | sha256sum | cut -d' ' -f1
)"

if [[ -x "$out/kube-apiserver" && -x "$out/etcd" && -f "$out/stamp" && "$(<"$out/stamp")" == "$stamp" ]]; then
	echo "cluster-bins: up to date in $out" >&2
	echo "$out"
	exit 0
fi

k8s_version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
k8s_minor="${k8s_version#v1.}"
k8s_minor="${k8s_minor%%.*}"
version_pkg=k8s.io/component-base/version
ldflags=(
	-s -w
	"-X $version_pkg.gitVersion=$k8s_version"
	"-X $version_pkg.gitMajor=1"
	"-X $version_pkg.gitMinor=$k8s_minor"
	"-X $version_pkg.gitTreeState=clean"
)

mkdir -p "$out"
tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "cluster-bins: building kube-apiserver $k8s_version and etcd into $out (several minutes the first time)" >&2
start=$SECONDS
CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "${ldflags[*]}" -o "$tmp/kube-apiserver" "$apiserver_pkg"
CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" "$etcd_pkg"
mv -f "$tmp/kube-apiserver" "$tmp/etcd" "$out/"
echo "$stamp" >"$out/stamp"
echo "cluster-bins: built in $((SECONDS - start))s" >&2
echo "$out"
