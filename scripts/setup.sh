#!/usr/bin/env bash
# Sets tcplens up on a fresh Debian machine and builds it: apt packages (only those missing),
# npm packages, vmlinux.h from this kernel's BTF, the BPF objects, the TypeScript. Idempotent.
# --tests also installs what only the tests need (the browser for the web page's test), so a user
# who runs the demo does not download a browser; --matrix what the kernel matrix needs (qemu).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() { # need <probe> <package>: probe is a command name or an absolute path
  if [[ $1 == /* ]]; then [ -e "$1" ] || missing+=("$2"); else command -v "$1" >/dev/null 2>&1 || missing+=("$2"); fi
}
need clang clang
need llvm-strip llvm
need bpftool bpftool
need /usr/include/bpf/bpf_helpers.h libbpf-dev
need nft nftables
need ip iproute2
need tcpdump tcpdump
need python3 python3
need make make
if [ "${1:-}" = --tests ]; then
  need /usr/bin/chromium chromium   # the web page's browser test (playwright-core drives it)
  need /usr/sbin/nats-server nats-server   # the bus tests' NATS JetStream cluster
fi
# --- kernel matrix (scripts/kernel-matrix.sh): only with --matrix, since qemu is ~300 MB that a
# user of tcplens (or the host-only test run) never needs
if [ "${1:-}" = --matrix ]; then
  need qemu-system-x86_64 qemu-system-x86
  need /usr/bin/busybox busybox-static   # the guests' initramfs: a static busybox, no libc of its own
fi
# --- end kernel matrix
if ! ldconfig -p 2>/dev/null | grep -q 'libbpf.so.1 '; then missing+=(libbpf1); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "TCPLENS_ERR_MISSING_TOOL: missing packages: ${missing[*]}" >&2
    echo "  hint: run this as root (sudo $0) so it can apt-get install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules/koffi ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

make -s
npx tsc -p .
touch build/.stamp
