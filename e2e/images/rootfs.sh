#!/usr/bin/env bash
# Builds the Debian root filesystem of the kind node image with debootstrap
# (packages only, no prebuilt image) and writes it as a tarball into the cache.
#   e2e/images/rootfs.sh OUT.tar
# The package list lives here; build.sh hashes this file into the image tag.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/../tools/versions.env"
out=${1:?usage: rootfs.sh OUT.tar}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=(
  systemd systemd-sysv dbus libseccomp2 util-linux mount procps bash ca-certificates
  iptables nftables iproute2 conntrack ethtool kmod socat
  containerd runc containernetworking-plugins
  pigz jq curl busybox-static
)
[ "$(id -u)" = 0 ] || { echo "rootfs.sh: debootstrap needs root (run as root or with sudo)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "rootfs.sh: debootstrap not found (apt-get install debootstrap)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/devctl-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
include=$(IFS=,; echo "${packages[*]}")
debootstrap --variant=minbase --include="$include" "$DEBIAN_SUITE" "$work/root" "$mirror" >"$work/log" 2>&1 || {
  tail -30 "$work/log" >&2; echo "rootfs.sh: debootstrap failed (is $mirror reachable?)" >&2; exit 1; }
# Trim what a node never needs.
chroot "$work/root" apt-get clean
rm -rf "$work/root"/var/lib/apt/lists/* "$work/root"/usr/share/doc/* "$work/root"/usr/share/man/* \
  "$work/root"/usr/share/locale/* "$work/root"/var/log/*.log "$work/root"/var/cache/debconf/*-old
tar -C "$work/root" --numeric-owner -cf "$out.tmp" .
mv "$out.tmp" "$out"
