#!/usr/bin/env bash
# bench-redis.sh runs the bench (cmd/usher-bench) with Usher's shared state in a real Redis: it
# starts a throwaway redis-server (Debian package redis-server) on a free loopback port, with no
# persistence, in a temporary directory, passes --redis-url to the bench with the other
# arguments, and stops the server at the end. The report says which store it ran with
# ("Shared state"); compare its API table (token, join, connect p50/p99) with an in-memory run
# of the same arguments (go tool task bench) made just before or after.
#
#   hack/bench-redis.sh --out /tmp/bench-redis --paths usher
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v redis-server >/dev/null 2>&1 || die "redis-server is not installed: apt-get install -y redis-server"
dir="$(mktemp -d)"
pid=""
cleanup() {
	[[ -z "$pid" ]] || kill "$pid" 2>/dev/null || true
	[[ -z "$pid" ]] || wait "$pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

# A random loopback port; if it is taken, redis-server exits at once and another is tried.
up=false
for _ in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 30000))
	redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no --daemonize no \
		--protected-mode yes --maxclients 10000 --logfile "$dir/redis.log" &
	pid=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			up=true
			break 2
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=""
done
[[ "$up" == true ]] || die "redis-server did not start: $(cat "$dir/redis.log" 2>/dev/null)"
log "redis-server on 127.0.0.1:$port"
cd "$root"
go run ./cmd/usher-bench --redis-url "redis://127.0.0.1:$port" "$@"
