#!/usr/bin/env bash
# Installs what banger needs on a Debian 12 host (run as root). Idempotent.
set -euo pipefail
pkgs=(
  qemu-system-x86   # the qemu VMM (microvm machine)
  mmdebstrap        # builds the golden image from Debian packages
  eatmydata         # mmdebstrap's eatmydata hook: ~20% faster image builds
  e2fsprogs         # mkfs.ext4 for per-VM disks and the kernel's module disk
  kmod              # depmod: modprobe's indexes on the kernel's module disk
  iproute2          # ip netns for the end-to-end tests
  openssh-client    # banger vm ssh
  dnsutils          # dig: the network end-to-end test queries banger's DNS
  nftables          # nft: tests list the ruleset banger's table lives in
  ca-certificates
  docker-registry   # a real OCI registry for the image-pull end-to-end test
  git make gcc
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then
  echo "setup: Go 1.26 is required at /usr/local/go (https://go.dev/dl/)" >&2
  exit 1
fi
echo "setup: ok"
