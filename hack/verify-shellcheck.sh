#!/usr/bin/env bash
# verify-shellcheck.sh runs shellcheck on the shell scripts in hack/ and .ci/.
# It needs the Debian package shellcheck (apt-get install shellcheck), which .ci/run installs.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"

command -v shellcheck >/dev/null 2>&1 || die "shellcheck is not installed: apt-get install shellcheck"
cd "$root"
scripts=(hack/*.sh .ci/run)
shellcheck -x "${scripts[@]}" || die "shellcheck found problems (above)"
log "shellcheck: no problems in ${scripts[*]}"
