#!/usr/bin/env bash
# redis-secret.sh fills the Secret usher-system/usher-redis (keys url and password, read by Usher
# as USHER_REDIS_URL and USHER_REDIS_PASSWORD) in the current kubectl context. Every Usher replica
# shares that Redis (docs/deploy.md#replicas). The password goes straight into the cluster: it is
# never printed, and never given on a command line.
#
#   hack/redis-secret.sh --in-cluster     # the Valkey of components/redis (kind): its Service's
#                                         # URL and 32 random bytes as the password, if missing
#   hack/redis-secret.sh --in-cluster --rotate   # a new password (then restart Valkey and Usher)
#   hack/redis-secret.sh --url rediss://redis.home.arpa:6379/0 --password-file ~/redis-password
#                                         # a Redis of your own (--password-file - reads stdin;
#                                         # without it the URL must carry the password, if any)
#   hack/redis-secret.sh                  # only check that the Secret holds a URL
#
#   USHER_SECRET_NAMESPACE (usher-system)  USHER_REDIS_SECRET (usher-redis)  KUBECTL_CONTEXT
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

namespace="${USHER_SECRET_NAMESPACE:-usher-system}"
secret="${USHER_REDIS_SECRET:-usher-redis}"
in_cluster_url="redis://valkey.$namespace.svc:6379/0"

mode=check url="" password_file="" rotate=false
while [[ $# -gt 0 ]]; do
	case "$1" in
	--in-cluster) mode=in-cluster ;;
	--url)
		[[ $# -ge 2 ]] || die "--url needs a value"
		mode=external url="$2"
		shift
		;;
	--password-file)
		[[ $# -ge 2 ]] || die "--password-file needs a value"
		password_file="$2"
		shift
		;;
	--rotate) rotate=true ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
	shift
done

current_url=""
if kubectl get secret -n "$namespace" "$secret" >/dev/null 2>&1; then
	current_url="$(kubectl get secret -n "$namespace" "$secret" -o jsonpath='{.data.url}' | base64 -d)"
fi

case "$mode" in
check)
	[[ -n "$current_url" ]] && {
		log "secret $namespace/$secret holds a Redis URL"
		exit 0
	}
	die "secret $namespace/$secret holds no Redis URL, so Usher cannot start: run hack/redis-secret.sh --in-cluster (components/redis, as on kind) or --url rediss://… --password-file FILE (go tool task secret:redis -- …)"
	;;
in-cluster)
	if [[ -n "$current_url" && "$rotate" == false ]]; then
		log "secret $namespace/$secret already holds a Redis URL; use --rotate for a new password"
		exit 0
	fi
	[[ -z "$password_file" ]] || die "--password-file goes with --url; --in-cluster makes a random password"
	url="$in_cluster_url"
	# 32 random bytes, hex: 64 characters, safe on Valkey's command line.
	password="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	;;
external)
	[[ "$url" == redis://* || "$url" == rediss://* ]] || die "--url must start with redis:// or rediss://"
	password=""
	if [[ -n "$password_file" ]]; then
		if [[ "$password_file" == - ]]; then
			password="$(cat)"
		else
			password="$(<"$password_file")"
		fi
		password="${password%$'\n'}"
		[[ -n "$password" ]] || die "$password_file is empty"
	fi
	;;
esac

# The Secret's data is written whole by this field manager: a password left out is removed, so
# the URL's own password (or none) applies. The YAML is built here, with shell built-ins only, so
# neither the URL (which may carry a password) nor the password is ever on a command line.
b64() { printf '%s' "$1" | base64 | tr -d '\n'; }
{
	printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\ntype: Opaque\ndata:\n' "$secret" "$namespace"
	printf '  url: %s\n' "$(b64 "$url")"
	[[ -z "$password" ]] || printf '  password: %s\n' "$(b64 "$password")"
} | kubectl apply --server-side --field-manager=usher-redis-secret -f -
shown="$(printf '%s' "$url" | sed -E 's#^(rediss?://)[^@/]*@#\1#')" # without user and password
restart="deploy/usher"
[[ "$mode" == in-cluster ]] && restart="deploy/valkey deploy/usher"
log "secret $namespace/$secret points Usher at $shown; after a change: kubectl -n $namespace rollout restart $restart"
