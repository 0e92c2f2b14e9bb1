#!/usr/bin/env bash
# build-local.sh builds roomstream's images without a container registry:
#
#   roomstream   FROM scratch + the roomstream binary built here with
#                CGO_ENABLED=0 (the same image infra/docker/Dockerfile makes)
#   redis        FROM scratch + this host's redis-server and the shared
#                libraries ldd lists
#
# Usage: infra/docker/build-local.sh [roomstream|redis|all]   (default all)
#
# Environment:
#   ROOMSTREAM_IMAGE  tag of the roomstream image (default roomstream:dev)
#   REDIS_IMAGE       tag of the Redis image (default roomstream-redis:dev)
#   REDIS_SERVER      redis-server binary to package (default: the one on PATH)
#   DOCKER            docker CLI (default docker)
#
# A machine with a registry needs none of this: build infra/docker/Dockerfile
# and use redis:7.
set -euo pipefail

what=${1:-all}
ROOMSTREAM_IMAGE=${ROOMSTREAM_IMAGE:-roomstream:dev}
REDIS_IMAGE=${REDIS_IMAGE:-roomstream-redis:dev}
DOCKER=${DOCKER:-docker}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

# dbuild DOCKERFILE TAG CONTEXT: quiet unless it fails.
dbuild() {
	if ! "$DOCKER" build -q -f "$1" -t "$2" "$3" >"$ctx/build.log" 2>&1; then
		cat "$ctx/build.log" >&2
		exit 1
	fi
}

build_roomstream() {
	mkdir -p "$ctx/rs/etc/ssl/certs"
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ctx/rs/roomstream" .)
	if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
		cp /etc/ssl/certs/ca-certificates.crt "$ctx/rs/etc/ssl/certs/"
	fi
	dbuild "$here/scratch.Dockerfile" "$ROOMSTREAM_IMAGE" "$ctx/rs"
	echo "built $ROOMSTREAM_IMAGE"
}

build_redis() {
	local bin=${REDIS_SERVER:-$(command -v redis-server || true)}
	if [[ -z "$bin" ]]; then
		echo "build-local.sh: redis-server not found (apt-get install -y redis-server)" >&2
		exit 1
	fi
	local rootfs="$ctx/redis/rootfs"
	mkdir -p "$rootfs/usr/local/bin" "$ctx/redis/data"
	cp -L "$bin" "$rootfs/usr/local/bin/redis-server"
	# Every library ldd resolves, and the dynamic loader, at their paths.
	ldd "$bin" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}' | sort -u | while read -r lib; do
		mkdir -p "$rootfs$(dirname "$lib")"
		cp -L "$lib" "$rootfs$lib"
	done
	dbuild "$here/redis.Dockerfile" "$REDIS_IMAGE" "$ctx/redis"
	echo "built $REDIS_IMAGE from $bin"
}

case "$what" in
roomstream) build_roomstream ;;
redis) build_redis ;;
all) build_roomstream; build_redis ;;
*) echo "usage: $0 [roomstream|redis|all]" >&2; exit 2 ;;
esac
