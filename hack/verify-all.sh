#!/usr/bin/env bash
# verify-all.sh runs every hack/verify-*.sh check, all of them even when one fails, prints a
# summary and exits non-zero if any failed. CI runs it (.ci/run); so does `go tool task verify`.
#
#   hack/verify-all.sh                 # every check
#   hack/verify-all.sh gofmt govet     # only hack/verify-gofmt.sh and hack/verify-govet.sh
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

cd "$root"
if (($# > 0)); then
	names=("$@")
else
	names=()
	for script in hack/verify-*.sh; do
		name="${script#hack/verify-}"
		name="${name%.sh}"
		[[ "$name" == all ]] || names+=("$name")
	done
fi

failed=()
for name in "${names[@]}"; do
	script="hack/verify-$name.sh"
	[[ -x "$script" ]] || die "no check $script"
	echo "--- verify: $name"
	start=$SECONDS
	if "$script"; then
		log "$name: ok ($((SECONDS - start))s)"
	else
		log "$name: FAILED ($((SECONDS - start))s)"
		failed+=("$name")
	fi
done

if ((${#failed[@]} > 0)); then
	die "${#failed[@]} of ${#names[@]} checks failed: ${failed[*]} (run hack/verify-NAME.sh for one)"
fi
log "all ${#names[@]} checks passed: ${names[*]}"
