# Base images for the compose stack, made from real parts and tagged as
# deploy/docker/Dockerfile, docker-compose.yml and apache-kafka.yml name
# them (sourced by stack.sh; needs its engine running):
#
#   golang:<GO_VERSION>-bookworm   debootstrap minbase + this machine's Go
#                                  toolchain + its CA bundle
#   gcr.io/distroless/static-...   scratch + the nonroot user (65532) + CA
#   prom/prometheus:<tag>          Debian's prometheus binary and its libraries
#   nginx:<tag>                    Debian's nginx binary and its libraries,
#                                  laid out like the official image
#   apache/kafka:<version>         the Maven jars of deploy/kafka/lib on
#                                  debootstrap + Debian's JRE, laid out and
#                                  configured like the official image
#
# Each image carries a label with the hash of its recipe (the shell function
# that makes it) and inputs (base image, toolchain, CA bundle, jars); an
# image whose label matches is kept, so a warm run builds nothing, and an
# edit to one recipe rebuilds that image alone.

images_dir=$here/kafka-image

# recipe_key PARTS...: a short hash of the calling function's source and
# PARTS.
recipe_key() {
	{ declare -f "${FUNCNAME[1]}"; printf '%s\n' "$@"; } | sha256sum | cut -c1-16
}

image_id() { docker image inspect -f '{{.Id}}' "$1"; }

# fresh TAG KEY: true when TAG exists with recipe KEY.
fresh() {
	[ "$(docker image inspect -f '{{index .Config.Labels "votestream.recipe"}}' "$1" 2>/dev/null)" = "$2" ]
}

# rootfs NAME [--include=...]: a debootstrap minbase tarball of this
# machine's Debian suite, cached in COMPOSE_CACHE, imported as
# votestream-base/debian:NAME.
rootfs() {
	local name=$1
	shift
	local suite tar key
	suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
	tar=$cache/rootfs/$suite-$name.tar
	key=$(recipe_key "$suite" "$name" "$@")
	if fresh "votestream-base/debian:$name" "$key"; then return; fi
	if [ ! -s "$tar" ]; then
		local m dir
		m=$(mirror "$suite")
		dir=$(mktemp -d "$cache/rootfs/$name.XXXX")
		log "debootstrap $suite ($name) from $m"
		mkdir -p "$cache/debs"
		debootstrap --variant=minbase --cache-dir="$cache/debs" "$@" "$suite" "$dir" "$m" >"$cache/rootfs/$name.log" 2>&1 ||
			{ tail -20 "$cache/rootfs/$name.log" >&2; die "debootstrap failed (log: $cache/rootfs/$name.log)"; }
		rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
		tar -C "$dir" --numeric-owner -cf "$tar.tmp" .
		mv "$tar.tmp" "$tar"
		rm -rf "$dir"
	fi
	docker import --change "LABEL votestream.recipe=$key" "$tar" "votestream-base/debian:$name" >/dev/null
}

# build TAG KEY CONTEXT: the classic builder (Docker 20.10 and current
# Docker alike), labelled with KEY.
build() {
	local out
	out=$(DOCKER_BUILDKIT=0 docker build -q --label "votestream.recipe=$2" -t "$1" "$3" 2>&1) ||
		{ echo "$out" >&2; die "docker build $1 failed"; }
}

golang_image() {
	local version tag key ctx
	version=$(sed -n 's/^ARG GO_VERSION=//p' "$root/deploy/docker/Dockerfile")
	tag=golang:$version-bookworm
	rootfs minbase
	key=$(recipe_key "$(image_id votestream-base/debian:minbase)" "$(go version)" "$(sha256sum /etc/ssl/certs/ca-certificates.crt)")
	if fresh "$tag" "$key"; then return; fi
	log "$tag: $(go version | cut -d' ' -f3) from $(go env GOROOT)"
	ctx=$(mktemp -d "$cache/ctx.XXXX")
	cp -a "$(go env GOROOT)" "$ctx/go"
	cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
	cat >"$ctx/Dockerfile" <<-EOF
		FROM votestream-base/debian:minbase
		COPY go /usr/local/go
		COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
		ENV GOLANG_VERSION=$version GOTOOLCHAIN=local GOPATH=/go \\
		    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go
		WORKDIR /go
	EOF
	build "$tag" "$key" "$ctx"
	rm -rf "$ctx"
}

# scratch_import TAG KEY DIR CHANGES...: DIR's tree as a one-layer image.
scratch_import() {
	local tag=$1 key=$2 dir=$3
	shift 3
	local changes=(--change "LABEL votestream.recipe=$key")
	for c in "$@"; do changes+=(--change "$c"); done
	tar -C "$dir" --numeric-owner -c . | docker import "${changes[@]}" - "$tag" >/dev/null
}

# passwd DIR: root, nobody and nonroot, as distroless has them.
passwd_files() {
	mkdir -p "$1/etc"
	cat >"$1/etc/passwd" <<-EOF
		root:x:0:0:root:/root:/sbin/nologin
		nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
		nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
	EOF
	cat >"$1/etc/group" <<-EOF
		root:x:0:
		nobody:x:65534:
		nonroot:x:65532:
	EOF
	echo "hosts: files dns" >"$1/etc/nsswitch.conf"
	mkdir -p "$1/tmp" "$1/etc/ssl/certs"
	chmod 1777 "$1/tmp"
	cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/"
}

distroless_image() {
	local tag key dir
	tag=$(sed -n 's/^FROM \(gcr.io\/distroless\/[^ ]*\) AS runtime$/\1/p' "$root/deploy/docker/Dockerfile")
	[ -n "$tag" ] || die "no distroless runtime stage in deploy/docker/Dockerfile"
	key=$(recipe_key "$(declare -f passwd_files scratch_import)" "$(sha256sum /etc/ssl/certs/ca-certificates.crt)")
	if fresh "$tag" "$key"; then return; fi
	log "$tag: scratch with the nonroot user"
	dir=$(mktemp -d "$cache/ctx.XXXX")
	passwd_files "$dir"
	mkdir -p "$dir/home/nonroot" "$dir/usr/share"
	chown 65532:65532 "$dir/home/nonroot"
	chmod 700 "$dir/home/nonroot"
	cp -a /usr/share/zoneinfo "$dir/usr/share/" 2>/dev/null || true
	scratch_import "$tag" "$key" "$dir" "USER 65532" "WORKDIR /home/nonroot" \
		"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
	rm -rf "$dir"
}

prometheus_image() {
	local tag key dir bin lib
	tag=$(sed -n 's/^[[:space:]]*image: \(prom\/prometheus:.*\)$/\1/p' "$root/docker-compose.yml" | head -1)
	[ -n "$tag" ] || die "no prom/prometheus image in docker-compose.yml"
	bin=$(command -v prometheus) || die "no prometheus binary: apt-get install prometheus"
	key=$(recipe_key "$(declare -f passwd_files scratch_import)" "$(sha256sum "$bin")")
	if fresh "$tag" "$key"; then return; fi
	log "$tag: Debian's $("$bin" --version 2>&1 | head -1)"
	dir=$(mktemp -d "$cache/ctx.XXXX")
	passwd_files "$dir"
	mkdir -p "$dir/bin" "$dir/etc/prometheus" "$dir/prometheus"
	cp "$bin" "$dir/bin/prometheus"
	# Debian links it dynamically: its libraries and loader come along.
	for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
		cp --parents -L "$lib" "$dir/"
	done
	chown 65534:65534 "$dir/prometheus" "$dir/etc/prometheus"
	scratch_import "$tag" "$key" "$dir" "USER nobody" "WORKDIR /prometheus" "EXPOSE 9090" \
		'ENTRYPOINT ["/bin/prometheus"]' \
		'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
	rm -rf "$dir"
}

# nginx_image: Debian's nginx in a scratch image, with what the official
# image gives the compose file's nginx: the nginx user (101), mime.types,
# its temp and cache paths under /var/cache/nginx (the compose file's
# tmpfs; Debian's nginx keeps its temp files in /var/lib/nginx, a link
# there), /run for its pid file (the compose file puts it in /tmp), and
# nginx in the foreground.
nginx_image() {
	local tag key dir bin lib
	tag=$(sed -n 's/^[[:space:]]*image: \(nginx:.*\)$/\1/p' "$root/docker-compose.yml" | head -1)
	[ -n "$tag" ] || die "no nginx image in docker-compose.yml"
	bin=$(command -v nginx || echo /usr/sbin/nginx)
	[ -x "$bin" ] || die "no nginx binary: apt-get install nginx-light"
	key=$(recipe_key "$(declare -f passwd_files scratch_import)" "$(sha256sum "$bin" /etc/nginx/mime.types)")
	if fresh "$tag" "$key"; then return; fi
	log "$tag: Debian's $("$bin" -v 2>&1)"
	dir=$(mktemp -d "$cache/ctx.XXXX")
	passwd_files "$dir"
	echo "nginx:x:101:101:nginx:/nonexistent:/sbin/nologin" >>"$dir/etc/passwd"
	echo "nginx:x:101:" >>"$dir/etc/group"
	mkdir -p "$dir/usr/sbin" "$dir/etc/nginx/conf.d" "$dir/var/cache/nginx" "$dir/var/lib" "$dir/var/log/nginx" "$dir/run"
	cp "$bin" "$dir/usr/sbin/nginx"
	for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
		cp --parents -L "$lib" "$dir/"
	done
	cp /etc/nginx/mime.types "$dir/etc/nginx/"
	ln -s /var/cache/nginx "$dir/var/lib/nginx"
	ln -s /dev/stdout "$dir/var/log/nginx/access.log"
	ln -s /dev/stderr "$dir/var/log/nginx/error.log"
	chown 101:101 "$dir/var/cache/nginx"
	scratch_import "$tag" "$key" "$dir" "EXPOSE 80" \
		"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		'CMD ["nginx", "-g", "daemon off;"]'
	rm -rf "$dir"
	# Graceful shutdown, as the official image: import has no STOPSIGNAL.
	dir=$(mktemp -d "$cache/ctx.XXXX")
	printf 'FROM %s\nSTOPSIGNAL SIGQUIT\n' "$tag" >"$dir/Dockerfile"
	build "$tag" "$key" "$dir"
	rm -rf "$dir"
}

kafka_image() {
	local lib=$root/deploy/kafka/lib version tag key ctx
	[ -f "$lib/.done" ] || die "the Kafka jars are missing in $lib: run make kafka-jars"
	version=$(basename "$lib"/kafka_2.13-*.jar .jar | sed 's/^kafka_2.13-//')
	tag=$(sed -n 's/^[[:space:]]*image: \(apache\/kafka:.*\)$/\1/p' "$here/apache-kafka.yml" | head -1)
	[ "$tag" = "apache/kafka:$version" ] ||
		die "apache-kafka.yml runs $tag but deploy/kafka/lib holds Kafka $version"
	rootfs jre --include=openjdk-17-jre-headless
	key=$(recipe_key "$(image_id votestream-base/debian:jre)" "$(find -L "$lib" -name '*.jar' -printf '%f %s\n' | sort | sha256sum)" \
		"$(cat "$images_dir"/* "$images_dir"/*/* "$root/deploy/kafka/log4j2.yaml" 2>/dev/null | sha256sum)")
	if fresh "$tag" "$key"; then return; fi
	log "$tag: the Maven jars on Debian's JRE"
	ctx=$(mktemp -d "$cache/ctx.XXXX")
	cp -a "$images_dir"/. "$ctx/"
	mkdir -p "$ctx/libs"
	cp -L "$lib"/*.jar "$ctx/libs/"
	cp "$root/deploy/kafka/log4j2.yaml" "$ctx/docker/log4j2.yaml"
	build "$tag" "$key" "$ctx"
	rm -rf "$ctx"
}

cmd_images() {
	mkdir -p "$cache/rootfs"
	golang_image
	distroless_image
	prometheus_image
	nginx_image
	kafka_image
	# The classic builder leaves each build stage's last layer untagged: it
	# is the cache of the next build, so only week-old ones go.
	docker image prune -f --filter until=168h >/dev/null
	docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -v '^votestream/' >&2
}
