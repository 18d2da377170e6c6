#!/usr/bin/env bash
# Runs votestream's compose stack under a private Docker Engine, for
# `make compose-test` (no image registry is reachable here: every image is
# built locally from real parts).
#
#   stack.sh test          everything below, then the Go test, then stop
#   stack.sh tools         docker.io and debootstrap (apt), Compose (Go proxy)
#   stack.sh start | stop  the private dockerd
#   stack.sh images        the base images the Dockerfile and compose name
#   stack.sh env           the variables that point docker and compose at it
#
# The engine is private: its own socket, exec root and data root, its own
# containerd, its own bridge (vsc0) and address pool (10.197.0.0/16), and no
# iptables rules of its own: one nftables table masquerades the pool so that
# builds reach the Go module proxy. `stop` undoes all of it and nothing else.
#
# COMPOSE_CACHE (default /var/cache/votestream-compose) outlives the clone:
# the engine's data root, so base images and build layers stay between runs,
# the Compose binary and the debootstrap root filesystems.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${COMPOSE_CACHE:-/var/cache/votestream-compose}
run=/run/votestream-compose
compose_version=v5.6.0
bridge=vsc0
pool=10.197.0.0/16
bridge_addr=10.197.255.1/24
sock=$run/docker.sock

log() { echo "stack: $*" >&2; }
die() { log "$*"; exit 1; }

plugins=$cache/docker-config/cli-plugins
export DOCKER_HOST=unix://$sock DOCKER_CONFIG=$cache/docker-config
export PATH=$plugins:$PATH

cmd_env() {
	echo "export DOCKER_HOST=$DOCKER_HOST DOCKER_CONFIG=$DOCKER_CONFIG PATH=$plugins:\$PATH"
}

# tools: Debian's engine and debootstrap if absent; Compose v2-compatible
# CLI built from the Go module proxy into the cache (go install refuses a
# module with exclude directives, so it is built from its downloaded source).
cmd_tools() {
	local missing=()
	command -v dockerd >/dev/null || missing+=(docker.io)
	command -v debootstrap >/dev/null || missing+=(debootstrap)
	command -v nft >/dev/null || missing+=(nftables)
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	mkdir -p "$plugins"
	local bin=$plugins/docker-compose
	if [ -x "$bin" ] && [ "$("$bin" version --short 2>/dev/null)" = "${compose_version#v}" ]; then
		return
	fi
	log "building docker compose $compose_version from the Go module proxy"
	local dir
	dir=$(cd "$cache" && GOFLAGS= go mod download -json "github.com/docker/compose/v5@$compose_version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$dir" ] || die "go mod download github.com/docker/compose/v5@$compose_version failed"
	(cd "$dir" && CGO_ENABLED=0 GOFLAGS= go build -trimpath \
		-ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$compose_version" \
		-o "$bin.tmp" ./cmd)
	mv "$bin.tmp" "$bin"
}

# The Debian mirror apt uses, for debootstrap.
mirror() {
	local suite=$1 m=""
	m=$(awk -v s="$suite" '/^URIs:/{u=$2} /^Suites:/{for(i=2;i<=NF;i++) if ($i==s) {print u; exit}}' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
	[ -n "$m" ] || m=$(sed -E 's/\[[^]]*\] //' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk -v s="$suite" '$1=="deb" && $3==s {print $2; exit}')
	[ -n "$m" ] || die "no Debian mirror for $suite in /etc/apt/sources.list*"
	echo "$m"
}

cmd_start() {
	[ "$(id -u)" = 0 ] || die "the private dockerd needs root"
	mkdir -p "$run" "$cache/docker" "$cache/containerd"
	exec 9>"$run/lock"
	flock -w 1800 9 || die "another stack.sh holds $run/lock"
	if [ -S "$sock" ] && docker version >/dev/null 2>&1; then
		die "a private dockerd already runs on $sock"
	fi
	# Bridge and NAT first: dockerd needs the bridge to exist.
	ip link show "$bridge" >/dev/null 2>&1 || {
		ip link add "$bridge" type bridge
		ip addr add "$bridge_addr" dev "$bridge"
		ip link set "$bridge" up
	}
	nft -f - <<-EOF
		table ip votestream_compose {
			chain postrouting {
				type nat hook postrouting priority srcnat; policy accept;
				ip saddr $pool ip daddr != $pool masquerade
			}
		}
	EOF
	if [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 0 ]; then
		echo 1 >/proc/sys/net/ipv4/ip_forward
		touch "$run/ip_forward.ours"
	fi
	cat >"$run/containerd.toml" <<-EOF
		version = 2
		root = "$cache/containerd"
		state = "$run/containerd"
		disabled_plugins = ["io.containerd.grpc.v1.cri"]
		[grpc]
		  address = "$run/containerd.sock"
		[ttrpc]
		  address = "$run/containerd.sock.ttrpc"
		[debug]
		  address = ""
	EOF
	setsid containerd --config "$run/containerd.toml" >"$run/containerd.log" 2>&1 &
	echo $! >"$run/containerd.pid"
	wait_for "containerd" 30 test -S "$run/containerd.sock"
	setsid dockerd --host "$DOCKER_HOST" --data-root "$cache/docker" --exec-root "$run/exec" \
		--pidfile "$run/dockerd.pid" --containerd "$run/containerd.sock" \
		--containerd-namespace votestream-compose --containerd-plugins-namespace votestream-compose-plugins \
		--bridge "$bridge" --iptables=false --ip-masq=false --ip-forward=false \
		--default-address-pool "base=$pool,size=24" --storage-driver overlay2 --log-level warn \
		>"$run/dockerd.log" 2>&1 &
	echo $! >"$run/dockerd.pid.ours"
	wait_for "dockerd" 60 docker version
	log "dockerd $(docker version -f '{{.Server.Version}}') on $sock, data in $cache/docker"
}

# wait_for WHAT SECONDS CMD...: runs CMD each second until it succeeds.
wait_for() {
	local what=$1 secs=$2
	shift 2
	for _ in $(seq "$secs"); do
		"$@" >/dev/null 2>&1 && return
		sleep 1
	done
	tail -20 "$run/$what.log" >&2 || true
	die "$what did not start within ${secs}s (log: $run/$what.log)"
}

# stop_pid FILE: TERM the process FILE names, KILL after 30s.
stop_pid() {
	local f=$1 pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if kill -TERM "$pid" 2>/dev/null; then
		for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

cmd_stop() {
	stop_pid "$run/dockerd.pid.ours"
	stop_pid "$run/containerd.pid"
	nft delete table ip votestream_compose 2>/dev/null || true
	ip link del "$bridge" 2>/dev/null || true
	if [ -f "$run/ip_forward.ours" ]; then
		echo 0 >/proc/sys/net/ipv4/ip_forward
		rm -f "$run/ip_forward.ours"
	fi
	log "private dockerd stopped"
}

source "$here/images.sh"

cmd_test() {
	cmd_tools
	trap cmd_stop EXIT
	cmd_start
	cmd_images
	cd "$root"
	COMPOSE_TEST=1 go test -count=1 -timeout "${COMPOSE_TEST_TIMEOUT:-25m}" -v ./deploy/compose/
}

case "${1:-}" in
tools | start | stop | images | test | env) "cmd_$1" ;;
*) die "usage: $0 test|tools|start|stop|images|env" ;;
esac
