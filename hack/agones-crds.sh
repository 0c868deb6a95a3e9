#!/usr/bin/env bash
# agones-crds.sh downloads the CustomResourceDefinitions of an Agones release (from its
# install.yaml) for the real-API-server tests, once per version, and prints the file's path.
#
#   hack/agones-crds.sh [VERSION]       # default: $AGONES_VERSION, else 1.56.0
#
# The file lands in the cluster-bins directory ($USHER_CLUSTER_BIN, else
# ~/.cache/usher-cluster-bin) as agones-crds-VERSION.yaml, and agones-crds.yaml is pointed at it,
# which is where test/cluster looks when USHER_AGONES_CRDS is unset.
set -euo pipefail

version="${1:-${AGONES_VERSION:-1.56.0}}"
out="${USHER_CLUSTER_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/usher-cluster-bin}"
url="https://raw.githubusercontent.com/agones-dev/agones/v${version}/install/yaml/install.yaml"
file="$out/agones-crds-${version}.yaml"

mkdir -p "$out"
if [[ ! -s "$file" ]]; then
	tmp="$(mktemp "$out/.install.XXXXXX")"
	trap 'rm -f "$tmp" "$tmp.crds"' EXIT
	echo "agones-crds: downloading $url" >&2
	curl --fail --silent --show-error --location --retry 3 --connect-timeout 20 --max-time 300 --output "$tmp" "$url"
	# Keep only the CustomResourceDefinition documents of the multi-document stream.
	awk '
		function flush() { if (doc ~ /(^|\n)kind: CustomResourceDefinition\n/) printf "---\n%s", doc; doc = "" }
		/^---[[:space:]]*$/ { flush(); next }
		{ doc = doc $0 "\n" }
		END { flush() }
	' "$tmp" >"$tmp.crds"
	count="$(grep -c '^kind: CustomResourceDefinition$' "$tmp.crds" || true)"
	[[ "$count" -ge 5 ]] || {
		echo "agones-crds: found $count CRDs in $url, want at least 5" >&2
		exit 1
	}
	mv -f "$tmp.crds" "$file"
	echo "agones-crds: $count CRDs in $file" >&2
fi
ln -sfn "$(basename "$file")" "$out/agones-crds.yaml"
echo "$file"
