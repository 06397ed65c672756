#!/usr/bin/env bash
# Build the local TEST base image `debian:bookworm-slim` with debootstrap (Docker Hub is not
# reachable from CI). Cached: skipped when the image exists; the rootfs tarball is kept in
# ${SV_CACHE_DIR:-~/.cache/streamvault} so a wiped Docker engine reloads it in seconds.
#
# THIS MACHINE'S CA bundle is baked into this locally built base only (registries are
# reached through a TLS-inspecting proxy here). The project's Dockerfiles never carry it:
# on a normal machine they build FROM the official debian:bookworm-slim unchanged.
#
#   SV_BASE_REBUILD=1  rebuild even if the image exists
set -euo pipefail
IMAGE=${SV_BASE_IMAGE:-debian:bookworm-slim}
CACHE=${SV_CACHE_DIR:-$HOME/.cache/streamvault}
TARBALL=$CACHE/debian-bookworm-slim-rootfs.tar
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

if [ "${SV_BASE_REBUILD:-0}" != 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "==> base image $IMAGE present (cached)"; exit 0
fi

CHANGES=(
  -c 'ENV LANG=C.UTF-8'
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  -c 'CMD ["bash"]'
  -c 'LABEL org.streamvault.local-test-base=1'
)
if [ -s "$CA" ]; then
  # Every client in the build containers trusts this machine's CA bundle.
  CHANGES+=(
    -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt'
    -c 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt'
    -c 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt'
    -c 'ENV NPM_CONFIG_CAFILE=/etc/ssl/certs/ca-certificates.crt'
  )
fi

if [ "${SV_BASE_REBUILD:-0}" != 1 ] && [ -s "$TARBALL" ]; then
  echo "==> importing cached base rootfs $TARBALL"
  docker import "${CHANGES[@]}" "$TARBALL" "$IMAGE" >/dev/null
  exit 0
fi

command -v debootstrap >/dev/null || {
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
ROOTFS=$(mktemp -d /tmp/sv-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
echo "==> debootstrap --variant=minbase bookworm ($MIRROR)"
t0=$(date +%s)
debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >/tmp/sv-debootstrap.log 2>&1 \
  || { tail -30 /tmp/sv-debootstrap.log; exit 1; }

# What the official slim image does: full apt sources (updates + security), no docs/man/locales,
# no apt caches kept in layers.
rm -f "$ROOTFS/etc/apt/sources.list"
cat > "$ROOTFS/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
cat > "$ROOTFS/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
cat > "$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
CFG
echo 'Acquire::Languages "none";' > "$ROOTFS/etc/apt/apt.conf.d/docker-no-languages"
echo 'APT::Install-Recommends "false";' > "$ROOTFS/etc/apt/apt.conf.d/docker-no-recommends"
rm -rf "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/* \
       "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb

if [ -s "$CA" ]; then
  # The bundle where every client looks, and as a local CA so that installing Debian's
  # ca-certificates later (update-ca-certificates) keeps it.
  mkdir -p "$ROOTFS/etc/ssl/certs" "$ROOTFS/usr/local/share/ca-certificates"
  cp "$CA" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
  cp "$CA" "$ROOTFS/usr/local/share/ca-certificates/host-ca-bundle.crt"
fi

mkdir -p "$CACHE"
tar --numeric-owner -C "$ROOTFS" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
docker import "${CHANGES[@]}" "$TARBALL" "$IMAGE" >/dev/null
echo "==> built $IMAGE in $(( $(date +%s) - t0 ))s"
