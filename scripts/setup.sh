#!/usr/bin/env bash
# Installs what banger needs on a Debian 12 host (run as root). Idempotent.
#   scripts/setup.sh          what banger needs to build and run (make setup)
#   scripts/setup.sh --test   that, plus what only the tests use (make setup-test,
#                             which make check runs)
set -euo pipefail
test=0
case "${1:-}" in
  "") ;;
  --test) test=1 ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac
pkgs=(
  qemu-system-x86   # the qemu VMM (microvm machine)
  mmdebstrap        # builds the golden image from Debian packages
  eatmydata         # mmdebstrap's eatmydata hook: ~20% faster image builds
  e2fsprogs         # mkfs.ext4 for per-VM disks and the kernel's module disk; e2fsck/resize2fs for vm set --disk-size
  kmod              # depmod: modprobe's indexes on the kernel's module disk
  openssh-client    # banger vm ssh
  ca-certificates   # image and kernel downloads over HTTPS
  git               # workspaces (vm run REPO, vm workspace)
  make              # make build
)
if [ "$test" = 1 ]; then
  pkgs+=(
    iproute2          # ip netns: the end-to-end tests run in a private network namespace
    dnsutils          # dig: the network end-to-end test queries banger's DNS
    nftables          # nft: tests list the ruleset banger's table lives in
    docker-registry   # a real OCI registry for the image-pull end-to-end test
    busybox-static    # the Docker end-to-end test builds its container image from /bin/busybox (no registry in the guest)
    procps            # pgrep: the end-to-end tests look for stray VMMs
    gcc               # cgo for go test -race
    openssh-server    # sshd: the remote-host end-to-end test plays a remote machine in a namespace
    protobuf-compiler # protoc: make generate rebuilds the envd Connect-RPC code (committed)
    nodejs            # runs E2B's JS SDK against banger's HTTP API (e2e/e2b_test.go)
  )
  # npm installs that SDK, pinned, in e2e/e2bsdk (npm ci below); a nodejs
  # from NodeSource carries its own npm, which Debian's package conflicts with.
  command -v npm >/dev/null || pkgs+=(npm)
fi
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
# E2B's SDK for the HTTP API's end-to-end tests, at the version
# e2e/e2bsdk/package.json pins (exactly, with package-lock.json): npm ci
# only when node_modules lacks it or holds another version.
if [ "$test" = 1 ]; then
  sdk="$(cd "$(dirname "$0")/.." && pwd)/e2e/e2bsdk"
  want=$(cd "$sdk" && node -p 'require("./package.json").dependencies.e2b')
  have=$(cd "$sdk" && node -p 'require("./node_modules/e2b/package.json").version' 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    echo "setup: npm ci in $sdk (e2b $want)"
    (cd "$sdk" && npm ci --no-audit --no-fund)
  fi
fi
echo "setup: ok"
