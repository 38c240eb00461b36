#!/usr/bin/env bash
# The kernel matrix: boots Debian's kernels (or a kernel package you give it) under qemu and runs
# the kernel-facing tests inside each, against what this checkout already built (dist/, build/).
#
#   sudo scripts/kernel-matrix.sh                      # 5.10, 6.1 and 6.12 (Debian's current builds)
#   sudo scripts/kernel-matrix.sh --kernel 6.1         # one of them
#   sudo scripts/kernel-matrix.sh --deb ./linux-image-6.8.0-x_amd64.deb   # your own kernel package
#   sudo scripts/kernel-matrix.sh --tests "dist/test/kernel/verifier.test.js"
#   sudo scripts/kernel-matrix.sh --table              # also rewrite README's table from the results
#
# No root filesystem is built: a busybox initramfs loads the kernel's own virtio/9p modules, mounts
# this machine's / read-only over 9p and the checkout read-write at the same path, then chroots and
# runs one long-lived `node --test` (node runs 7-17x slower under TCG and fork/exec ~30x, so one
# process per guest). The guest writes its results into test-output/matrix/<kernel>/; the exit code
# comes back on the console. Each guest run holds the kernel lock. KVM cannot run Debian's kernels
# on this machine kind (nested virtualisation faults on BMI2/cmpxchg16b/xrstor): TCG only.
#
# Exit codes: 0 all passed, 1 a test failed, 2 the matrix itself failed (TCPLENS_ERR_MATRIX_*).
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOUT=$PWD
CACHE=${TCPLENS_KERNEL_CACHE:-/var/cache/tcplens-kernels}
OUT=$CHECKOUT/test-output/matrix
LOCK=/tmp/tcplens-kernel.lock
KERNELS=()
DEBS=()
TESTS=""
TIMEOUT=${TCPLENS_MATRIX_TIMEOUT:-900}
SMP=2
TABLE=0

die() { # die <code> <message> <hint>: the matrix's own failure, never a test result
  echo "TCPLENS_ERR_MATRIX_$1: $2" >&2
  [ -n "${3:-}" ] && echo "  hint: $3" >&2
  exit 2
}
log() { echo "matrix: $*" >&2; }

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [ $# -gt 0 ]; do
  case $1 in
    --kernel) KERNELS+=("$2"); shift 2 ;;
    --deb) DEBS+=("$(realpath "$2")"); shift 2 ;;
    --tests) TESTS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --smp) SMP=$2; shift 2 ;;
    --table) TABLE=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "TCPLENS_ERR_USAGE: unknown argument '$1'" >&2; usage 64 >&2 ;;
  esac
done
[ ${#KERNELS[@]} -eq 0 ] && [ ${#DEBS[@]} -eq 0 ] && KERNELS=(5.10 6.1 6.12)

[ "$(id -u)" = 0 ] || die NOT_ROOT "the matrix downloads kernels into $CACHE and runs BPF tests as root in the guests" "sudo $0"
for tool in qemu-system-x86_64 busybox dpkg-deb apt-get flock; do
  command -v $tool >/dev/null || die MISSING_TOOL "$tool is not installed" "./scripts/setup.sh --matrix"
done
[ -f /usr/bin/busybox ] && file_is_static=$(ldd /usr/bin/busybox 2>&1 || true)
case ${file_is_static:-} in *"not a dynamic"*|*"statically linked"*) ;; *) die MISSING_TOOL "/usr/bin/busybox is not static (the guest has no libc of its own)" "apt-get install busybox-static" ;; esac
[ -d dist/test/kernel ] && [ -d build/bpf ] || die NOT_BUILT "dist/ or build/ is missing: the guests run what the host built" "make -s && npx tsc -p ."

mkdir -p "$CACHE/debs" "$CACHE/kernels" "$OUT"

# A private apt configuration for bullseye (5.10): its own sources, lists and cache under $CACHE;
# the system's sources are never touched. bookworm packages come from the system's own apt.
BULLSEYE=$CACHE/apt-bullseye
apt_bullseye() {
  apt-get -o Dir::Etc::SourceList="$BULLSEYE/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
    -o Dir::Etc::PreferencesParts=/nonexistent -o Dir::State="$BULLSEYE/state" -o Dir::Cache="$BULLSEYE/cache" \
    -o Dir::State::status=/dev/null -o APT::Architecture=amd64 -o Acquire::Languages=none "$@"
}
apt_cache_bullseye() {
  apt-cache -o Dir::Etc::SourceList="$BULLSEYE/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
    -o Dir::State="$BULLSEYE/state" -o Dir::Cache="$BULLSEYE/cache" -o Dir::State::status=/dev/null "$@"
}
setup_bullseye() {
  mkdir -p "$BULLSEYE/state/lists/partial" "$BULLSEYE/cache/archives/partial"
  cat > "$BULLSEYE/sources.list" <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-bullseye-stable.gpg] http://deb.debian.org/debian bullseye main
deb [signed-by=/usr/share/keyrings/debian-archive-bullseye-security-automatic.gpg] http://deb.debian.org/debian-security bullseye-security main
EOF
  if [ -z "$(find "$BULLSEYE/state/lists" -name '*Packages' -mtime -7 2>/dev/null | head -1)" ]; then
    apt_bullseye update -qq >&2 || die DOWNLOAD "cannot read bullseye's package lists" "check network access to deb.debian.org"
  fi
}

# The newest package whose name matches, from the given apt-cache.
newest() { "$1" search --names-only "$2" 2>/dev/null | awk '{print $1}' | sort -V | tail -1; }

# fetch_kernel <5.10|6.1|6.12>: prints the path of the cached .deb
fetch_kernel() {
  local want=$1 pkg deb
  case $want in
    5.10) setup_bullseye; pkg=$(newest apt_cache_bullseye '^linux-image-5\.10\.0-[0-9]+-amd64$') ;;
    6.1) pkg=$(newest apt-cache '^linux-image-6\.1\.0-[0-9]+-amd64$') ;;
    6.12) pkg=$(newest apt-cache '^linux-image-6\.12\.[0-9]+\+deb12-amd64$') ;;
    *) die NO_KERNEL "unknown kernel '$want'" "use --kernel 5.10|6.1|6.12, or --deb FILE for your own package" ;;
  esac
  [ -n "$pkg" ] || die NO_KERNEL "no Debian package found for Linux $want" "apt-get update (6.1, 6.12 come from bookworm's lists)"
  deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | tail -1 || true)
  if [ -z "$deb" ]; then
    log "downloading $pkg"
    if [ "$want" = 5.10 ]; then
      (cd "$CACHE/debs" && apt_bullseye download -qq "$pkg") >&2 || die DOWNLOAD "apt-get download $pkg failed" "check network access to deb.debian.org"
    else
      (cd "$CACHE/debs" && apt-get download -qq "$pkg") >&2 || die DOWNLOAD "apt-get download $pkg failed" "apt-get update, then retry"
    fi
    deb=$(ls "$CACHE/debs/${pkg}_"*.deb | tail -1)
  fi
  echo "$deb"
}

# extract <deb>: unpacks once into $CACHE/kernels/<package_version>/, builds modules.dep; prints the dir
extract() {
  local deb=$1 dir
  dir=$CACHE/kernels/$(basename "$deb" .deb)
  if [ ! -f "$dir/.done" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    dpkg-deb -x "$deb" "$dir" || die BAD_PACKAGE "$deb is not a kernel package dpkg-deb can unpack" "give a linux-image-*.deb"
    local ver
    ver=$(ls "$dir/lib/modules" 2>/dev/null | head -1)
    [ -n "$ver" ] && ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1 || die BAD_PACKAGE "$deb holds no /boot/vmlinuz-* and /lib/modules/<version>" "give a linux-image-*.deb (not a meta or headers package)"
    busybox depmod -b "$dir" "$ver" 2>/dev/null || true
    touch "$dir/.done"
  fi
  echo "$dir"
}

# module_file <kdir> <ver> <name>: the path of a module (name with - or _), empty if built in
module_file() {
  local n=${3//-/_} alt=${3//_/-}
  find "$1/lib/modules/$2/kernel" \( -name "$n.ko" -o -name "$n.ko.xz" -o -name "$n.ko.zst" -o -name "$alt.ko" -o -name "$alt.ko.xz" -o -name "$alt.ko.zst" \) | head -1
}

# The modules the guest needs before it can reach the host's files (their dependencies come
# along). Any of them may be built in; then it is skipped.
BOOT_MODULES="virtio_pci 9pnet_virtio 9p"

# add_module <moddir> <relative path> <dest>: the module after its dependencies (modules.dep), once,
# uncompressed, appended to <dest>/order
add_module() {
  local moddir=$1 rel=$2 dest=$3 name d
  name=$(basename "$rel"); name=${name%%.ko*}
  grep -qx "$name" "$dest/order" && return 0
  for d in $(sed -n "s|^$rel: *||p" "$moddir/modules.dep"); do add_module "$moddir" "$d" "$dest"; done
  case $rel in
    *.xz) xz -dc "$moddir/$rel" > "$dest/$name.ko" ;;
    *.zst) zstd -qdc "$moddir/$rel" > "$dest/$name.ko" ;;
    *) cp "$moddir/$rel" "$dest/$name.ko" ;;
  esac
  echo "$name" >> "$dest/order"
}

# initramfs <kdir>: busybox, the boot modules (uncompressed) and init; cached next to the kernel
initramfs() {
  local kdir=$1 ver img root m f
  ver=$(ls "$kdir/lib/modules" | head -1)
  img=$kdir/initramfs.cpio.gz
  if [ ! -f "$img" ] || [ test/matrix/guest-init.sh -nt "$img" ]; then
    root=$(mktemp -d)
    mkdir -p "$root"/{bin,sbin,proc,sys,dev,host,mods,lib/modules}
    cp /usr/bin/busybox "$root/bin/busybox"
    for a in sh mount umount mkdir insmod modprobe chroot poweroff cat echo sleep ln dmesg tail sed sync; do ln -s busybox "$root/bin/$a"; done
    ln -s ../bin/busybox "$root/sbin/modprobe"
    : > "$root/mods/order"
    for m in $BOOT_MODULES; do
      f=$(module_file "$kdir" "$ver" "$m")
      [ -n "$f" ] && add_module "$kdir/lib/modules/$ver" "${f#"$kdir/lib/modules/$ver/"}" "$root/mods"
    done
    cp test/matrix/guest-init.sh "$root/init"
    chmod +x "$root/init"
    (cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$img.tmp" && mv "$img.tmp" "$img"
    rm -rf "$root"
  fi
  echo "$img"
}

# Which kernel tests each guest runs: the ones that exercise what differs between kernels (every
# object loading, the accept paths, TOA parsing and saved SYNs, sockmap, socket filters, the
# feature probes). The lab-wide and CLI tests are left to the host: they test topology and
# user-space logic, take minutes on the host and would take over half an hour each under TCG.
DEFAULT_TESTS="dist/test/kernel/kernel-features.test.js dist/test/kernel/verifier.test.js dist/test/kernel/accept.test.js dist/test/kernel/accept-acceptor.test.js dist/test/kernel/toa-parser.test.js dist/test/kernel/toa-save-syn.test.js dist/test/kernel/accel-semantics.test.js dist/test/kernel/hops-filter.test.js dist/test/kernel/ring-buffer.test.js"

# 5.10 lacks what accept, toa and accel need in sock_ops (bpf_get_netns_cookie: 5.15) and in BPF
# iterators (bpf_get_socket_cookie: 5.12); hops needs lookup-and-delete on hash maps (5.14: the
# matrix measured ENOTSUPP) and the ring-buffer test's producer object does not load there
# (EINVAL). There the set is the probes (which check accept's coded error) and object loading.
TESTS_5_10="dist/test/kernel/kernel-features.test.js dist/test/kernel/verifier.test.js dist/test/kernel/accept-acceptor.test.js"
# Before 6.10 accel cannot link its sk_msg program to a sockmap (BPF_LINK_TYPE_SOCKMAP is 6.10):
# it stops with TCPLENS_ERR_UNSUPPORTED there, so its test is left out.
tests_for() { # tests_for <label> <release>
  if [ -n "$TESTS" ]; then echo "$TESTS"; return; fi
  case $2 in
    5.*) echo "$TESTS_5_10" ;;
    6.[0-9].*|6.[0-9]-*) echo "${DEFAULT_TESTS/ dist\/test\/kernel\/accel-semantics.test.js/}" ;;
    *) echo "$DEFAULT_TESTS" ;;
  esac
}

# run_guest <label> <kdir>: boots it, runs the tests; sets RESULT (passed|failed) or dies
run_guest() {
  local label=$1 kdir=$2 img vmlinuz ver dir rc code
  ver=$(ls "$kdir/lib/modules" | head -1)
  vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -1)
  img=$(initramfs "$kdir")
  dir=$OUT/$label
  rm -rf "$dir" && mkdir -p "$dir"
  local tests
  tests=$(tests_for "$label" "$ver")
  for t in $tests; do [ -f "$t" ] || die NOT_BUILT "$t does not exist" "npx tsc -p ."; done
  cat > "$dir/run.sh" <<EOF
#!/bin/sh
# written by scripts/kernel-matrix.sh: what the guest runs inside the chroot
cd '$CHECKOUT'
export TCPLENS_MATRIX_KERNEL='$label' TCPLENS_MATRIX_OUT='$dir' PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp
exec node --test --test-concurrency=1 --test-timeout=600000 \\
  --test-reporter=spec --test-reporter-destination=stdout \\
  --test-reporter=./dist/test/matrix/json-reporter.js --test-reporter-destination='$dir/results.jsonl' \\
  $tests
EOF
  chmod +x "$dir/run.sh"
  log "$label: booting $(basename "$vmlinuz") (TCG, $SMP vCPUs), tests: $(echo $tests | wc -w) files"
  local start=$SECONDS
  set +e
  flock "$LOCK" timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp "$SMP" -m 4096 -nographic -no-reboot \
    -kernel "$vmlinuz" -initrd "$img" \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init tcplens.run=$dir/run.sh tcplens.checkout=$CHECKOUT tcplens.modules=$kdir/lib/modules" \
    -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$CHECKOUT,mount_tag=checkout,security_model=none,multidevs=remap" \
    -nic none > "$dir/console.log" 2>&1 < /dev/null
  rc=$?
  set -e
  echo "$((SECONDS - start))" > "$dir/seconds"
  code=$(tr -d '\r' < "$dir/console.log" | sed -n 's/^TCPLENS_GUEST_EXIT=\([0-9]*\)$/\1/p' | tail -1)
  if [ -z "$code" ]; then
    if [ $rc = 124 ] || [ $rc = 137 ]; then
      die TIMEOUT "$label: the guest did not finish within ${TIMEOUT}s (console: $dir/console.log)" "raise --timeout, or run fewer --tests"
    fi
    if grep -q '^TCPLENS_GUEST_BOOTED' "$dir/console.log"; then
      die GUEST "$label: the guest booted but stopped before reporting an exit code (qemu exit $rc; console: $dir/console.log)" "see the console log's last lines"
    fi
    die NO_BOOT "$label: the guest did not boot (qemu exit $rc; console: $dir/console.log)" "see the console log; is it an x86-64 kernel with virtio and 9p modules?"
  fi
  if [ "$code" = 125 ]; then
    die GUEST "$label: $(tr -d '\r' < "$dir/console.log" | sed -n 's/^TCPLENS_GUEST_ERROR: //p' | head -1) (console: $dir/console.log)" "see the console log's last lines"
  fi
  echo "$ver" > "$dir/release"
  if [ "$code" = 0 ]; then RESULT=passed; else RESULT=failed; fi
  log "$label: $RESULT (exit $code) in $((SECONDS - start))s"
}

overall=0
labels=()
for k in "${KERNELS[@]}"; do
  deb=$(fetch_kernel "$k")
  kdir=$(extract "$deb")
  run_guest "$k" "$kdir"
  labels+=("$k")
  [ "$RESULT" = passed ] || overall=1
done
for d in "${DEBS[@]}"; do
  [ -f "$d" ] || die NO_KERNEL "$d does not exist" "give the path of a linux-image-*.deb"
  kdir=$(extract "$d")
  label=$(ls "$kdir/lib/modules" | head -1)
  run_guest "$label" "$kdir"
  labels+=("$label")
  [ "$RESULT" = passed ] || overall=1
done

node dist/test/matrix/summary.js --table=$TABLE "${labels[@]}" || overall=1
exit $overall
