#!/usr/bin/env bash
# The VM test lane: boot a stock Debian kernel under qemu with virtme-ng (pure
# cgroup v2, every controller on) and run a pytest selection inside it.  The
# exit status is pytest's in the guest; its output (names of failing tests and
# their output) is printed here.
#
#   scripts/vm-lane.sh [options] [--] [PYTEST ARGS...]      (default: tests/vm)
#     --init plain|systemd   the guest's init: virtme-ng's own (default) or systemd
#     --cgroup v2|hybrid     pure v2, every controller on (default), or the native
#                            host's layout: v1 controllers plus an empty v2 mount
#     --root DIR             guest root: / (the host's, read-only with overlays;
#                            default) or a distribution tree (tests/vm/mkroot.sh)
#     --kernel VMLINUZ       kernel image; default: Debian's linux-image-amd64,
#                            unpacked into .vm/kernel (tests/vm/fetch-kernel.sh);
#                            with --root, the newest DIR/boot/vmlinuz-*
#     --python PY            python in the guest (default: this worktree's .venv,
#                            or DIR/opt/sctvm/venv with --root)
#     --timeout SECONDS      give up on the guest after this long (default 2400,
#                            or SYSCONTAINER_VM_TIMEOUT)
#     --name NAME            label for the log lines (default: the kernel version)
#     --boots N              boot again, up to N boots in all, when the guest dies
#                            before pytest ends (default 2; see status 3 below)
# Environment: SYSCONTAINER_VM_TIME_SCALE (how much slower waits in the tests
# may be; default 10 under emulation, 2 with KVM), SYSCONTAINER_VM_VERBOSE=1
# (every boot message on stderr), SYSCONTAINER_VM_TCG_THREAD (without KVM:
# single, the default, runs the vCPUs on one host thread; multi, one thread
# each: faster, but see "tcg_thread" below).  Exit status 3: the guest died before
# pytest ended, on every boot (each death prints its kernel console's tail).
# (in braces: bash reads it all before running it, so an edit during a run is harmless)
{
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

init=plain root=/ kernel="" python="" name="" cgroup=v2
timeout_s=${SYSCONTAINER_VM_TIMEOUT:-2400} boots=2
while [ $# -gt 0 ]; do
    case "$1" in
        --init) init=$2; shift 2 ;;
        --cgroup) cgroup=$2; shift 2 ;;
        --root) root=$2; shift 2 ;;
        --kernel) kernel=$2; shift 2 ;;
        --python) python=$2; shift 2 ;;
        --timeout) timeout_s=$2; shift 2 ;;
        --name) name=$2; shift 2 ;;
        --boots) boots=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || set -- tests/vm
say() { echo "vm-lane${name:+ [$name]}: $*" >&2; }
die() { say "$*"; exit 2; }

case "$boots" in ""|*[!0-9]*|0) die "--boots must be a number of boots, 1 or more, not '$boots'" ;; esac
case "$init" in plain|systemd) ;; *) die "--init must be plain or systemd, not '$init'" ;; esac
case "$cgroup" in v2|hybrid) ;; *) die "--cgroup must be v2 or hybrid, not '$cgroup'" ;; esac
[ "$(id -u)" -eq 0 ] || die "run as root (the tests in the guest need root)"

QEMU=$(command -v qemu-system-x86_64 || true)
[ -n "$QEMU" ] || die "no qemu: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"

[ -x .venv/bin/python ] || die "no .venv: run scripts/setup.sh first"
if [ ! -x .venv/bin/vng ]; then
    say "installing virtme-ng into .venv"
    .venv/bin/python -m pip install -q virtme-ng >&2 || die "pip could not install virtme-ng"
fi
export PATH="$REPO/.venv/bin:$PATH"   # vng runs virtme-run from its own bin

if [ "$root" != / ]; then
    dir=$(cd "$root" 2>/dev/null && pwd) || die "no root directory $root (tests/vm/mkroot.sh makes one)"
    root=$dir
    [ -x "$root/bin/sh" ] || die "$root is not a root file system (no bin/sh)"
    if [ -z "$kernel" ]; then
        kernel=$(ls -1 "$root"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
        [ -n "$kernel" ] || die "no kernel image: $root/boot has no vmlinuz-* (tests/vm/mkroot.sh installs one)"
    fi
    python=${python:-/opt/sctvm/venv/bin/python}
    [ -x "$root$python" ] || die "no python $python in $root"
else
    if [ -z "$kernel" ]; then
        kernel=$(tests/vm/fetch-kernel.sh "$REPO/.vm/kernel") \
            || die "no kernel image: could not fetch Debian's linux-image-amd64 (or pass --kernel)"
    fi
    python=${python:-$REPO/.venv/bin/python}
fi
[ -r "$kernel" ] || die "no kernel image: $kernel does not exist"
kver=$(basename "$kernel"); kver=${kver#vmlinuz-}
name=${name:-$kver}

# The guest sees the worktree read-only, and its python compiles every module
# it imports afresh when there is no bytecode for its version: 0.45 s instead
# of 0.17 s per command natively for bullseye's 3.9, many times that under
# TCG, on every command the tests and hooks run.  Compiled here first, at
# native speed (into the worktree's ignored __pycache__ directories).
if [ "$root" != / ]; then
    tests/vm/inroot.sh "$root" "$python" -m compileall -q syscontainer_tools lxcfs_toolkit >/dev/null ||
        die "could not compile the package with $root's $python"
else
    "$python" -m compileall -q syscontainer_tools lxcfs_toolkit >/dev/null ||
        die "could not compile the package with $python"
fi
accel=(--disable-kvm)
scale_default=10
# Under TCG the guest's vCPUs run on one host thread by default (see the
# environment above).  With one thread per vCPU (qemu's default, "multi"),
# Debian 13's 6.12 kernel died in 4 of 13 boots (docs/support.md), always
# the same way: "Oops: int3" on the first byte of a 5-byte NOP in a hot path
# (__alloc_pages, __kmalloc) while runc was starting a container.  That is a
# static branch being switched (the kernel patches it through an int3:
# text_poke_bp) and the other vCPU still executing the int3 after the
# patching had ended: a stale translation of code modified from another host
# thread.  One thread runs the vCPUs in turn and sees every patch.
tcg_thread=${SYSCONTAINER_VM_TCG_THREAD:-single}
case "$tcg_thread" in single|multi) ;; *) die "SYSCONTAINER_VM_TCG_THREAD must be single or multi, not '$tcg_thread'" ;; esac
accel_opts="-accel tcg,thread=$tcg_thread"
if [ -w /dev/kvm ] && grep -qE '^flags.* (vmx|svm)( |$)' /proc/cpuinfo; then
    accel=() accel_opts=""
    scale_default=2
fi
export SYSCONTAINER_VM_TIME_SCALE=${SYSCONTAINER_VM_TIME_SCALE:-$scale_default}

SYSTEMD_MASKS="ovsdb-server.service ovs-vswitchd.service openvswitch-switch.service
    docker.service docker.socket containerd.service lxcfs.service podman.service
    podman-restart.service systemd-tmpfiles-setup.service systemd-tmpfiles-clean.timer
    apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_reap.service cron.service
    systemd-binfmt.service systemd-journal-flush.service ssh.service rsyslog.service
    postgresql.service isulad.service systemd-timesyncd.service systemd-update-utmp.service"

run_id="sctvm$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
out="$REPO/.vm/runs/$run_id"
mkdir -p "$out"
cleanup() { rm -rf "$out"; }
trap cleanup EXIT

# a scratch disk with a real DOS partition table (virtio-blk in the guest, vda),
# made afresh for each boot
disk="$out/disk.img"

args=(--run "$kernel" "${accel[@]}" --force-9p --cpus 2 --memory 4G)
# a distribution root sees the worktree at its own path (read-only), then the
# run's directory inside it (writable)
gout=$out
if [ "$root" != / ]; then
    gout=/opt/sctvm/out
    mkdir -p "$root$gout" "$root$REPO"
    args+=(--root "$root" --rodir "$REPO=$REPO")
fi
args+=(--rwdir "$gout=$out" --disk "$disk"
      # a real PCI NIC whose only peer is an empty hub: no traffic leaves the guest
      "--qemu-opts=$accel_opts -netdev hubport,id=${run_id}n,hubid=7 -device virtio-net-pci,netdev=${run_id}n,mac=52:54:00:5c:70:01")
# udev would load these for qemu's emulated extras; each costs seconds under TCG
# and none is used by the tests
skip_mods=kvm_amd,kvm_intel,kvm,ccp,irqbypass,crct10dif_pclmul,crc32_pclmul,ghash_clmulni_intel
skip_mods+=,sha512_ssse3,sha256_ssse3,sha1_ssse3,aesni_intel,sr_mod,cdrom,iTCO_wdt,intel_pmc_bxt
skip_mods+=,iTCO_vendor_support,evdev,psmouse,pcspkr,serio_raw,ahci,libahci,libata,i2c_i801
skip_mods+=,lpc_ich,i2c_smbus,button,joydev,snd_pcsp,intel_rapl_msr,intel_rapl_common
args+=(--append "modprobe.blacklist=$skip_mods")
if [ "$init" = systemd ]; then
    # The host's /.dockerenv shows through the 9p root: without container= (empty)
    # systemd believes it runs in a container and starts no udevd.  The qemu
    # wrapper makes the root writable before systemd starts and gives the
    # guest's systemd a lean default target, sctvm.target, whose service runs
    # the test command and powers off; it masks host units (see
    # tests/vm/qemu-systemd.sh).
    args+=(--systemd --append "container= systemd.unit=sctvm.target systemd.show_status=error"
          --qemu "$REPO/tests/vm/qemu-systemd.sh")
    export SCTVM_QEMU="$QEMU" SCTVM_MASKS="$SYSTEMD_MASKS"
fi
# The guest's kernel console, at warning level (an oops or a panic raises it
# to everything), is kept in $out/console: its tail is printed when the guest
# dies before pytest ends (a panic, qemu failing).  With SYSCONTAINER_VM_VERBOSE
# every boot message is shown on stderr as well.
console="$out/console"
args+=(--verbose)
[ -n "${SYSCONTAINER_VM_VERBOSE:-}" ] || args+=(--append loglevel=5)
guest_cmd="env SYSCONTAINER_VM_TIME_SCALE=$SYSCONTAINER_VM_TIME_SCALE SYSCONTAINER_VM_CGROUP=$cgroup"
guest_cmd+=" SYSCONTAINER_VM_ROOT=$(printf '%q' "$root")"
guest_cmd+=" bash $(printf '%q' "$REPO/tests/vm/guest.sh") $(printf '%q' "$gout") $(printf '%q' "$python")"
for a in "$@"; do guest_cmd+=" $(printf '%q' "$a")"; done
args+=(--exec "$guest_cmd")

console_tail() {
    sleep 1   # (the console's filter may still be writing)
    if [ -s "$console" ]; then
        say "the last lines of its kernel console:"
        tail -n 60 "$console" | sed 's/^/  console: /' >&2
    fi
}
# one boot: its vng status in vrc
boot() {
    rm -f "$out/rc" "$console" "$disk"
    truncate -s 256M "$disk"
    printf 'label: dos\nsize=96MiB, type=83\nsize=96MiB, type=83\n' | sfdisk -q "$disk" >/dev/null
    say "booting $kernel (${accel[*]:-kvm}, init $init, cgroup $cgroup, root $root) for: $*"
    # vng, virtme-run and qemu in a session of their own: whatever ends this
    # script (a timeout, ^C, CI) ends the guest too
    # (its output through pipes: virtme-ng reopens its stdout by path, which
    # would truncate a log file the caller redirected into; the console is
    # vng's stderr, beside the guest's own stderr: its lines are the ones with
    # a kernel time stamp, and the decompressor's few before them)
    setsid timeout -k 30 "$timeout_s" vng "${args[@]}" </dev/null > >(cat) 2> >(
        awk -v file="$console" -v show="${SYSCONTAINER_VM_VERBOSE:-}" '
            { sub(/\r$/, "") }
            /^\[ *[0-9]+\.[0-9]+\] / || /^(Probing EDD|Memory KASLR|Poking KASLR)/ {
                print >> file; fflush(file); if (show == "") next }
            { print; fflush() }' >&2) &
    vpid=$!
    trap 'kill -TERM -- -$vpid 2>/dev/null || true; cleanup' EXIT
    trap 'exit 130' INT TERM HUP
    set +e
    wait "$vpid"
    vrc=$?
    set -e
}

# the lane's time, and how many boots it took when more than one
took() { echo "lane duration $(( $(date +%s) - t0 ))s$([ "$n" -eq 1 ] || echo " ($n boots)")"; }
t0=$(date +%s)
n=1
while :; do
    boot "$@"
    if [ "$vrc" -eq 124 ] || [ "$vrc" -eq 137 ]; then
        say "guest timeout: no result after ${timeout_s}s (raise --timeout / SYSCONTAINER_VM_TIMEOUT; TCG is slow)"
        console_tail
        say "$(took)"
        exit 124
    fi
    [ ! -s "$out/rc" ] || break
    say "the guest ended (vng status $vrc) without running the tests to the end"
    console_tail
    # Under emulation that has been qemu or the guest's kernel dying, not a
    # test failing (pytest's own failures end with a status): the lane boots
    # once more, and says so, rather than fail CI on it.
    if [ "$n" -ge "$boots" ]; then
        say "$(took)"
        exit 3
    fi
    n=$((n + 1))
    say "boot $n of at most $boots"
done
rc=$(cat "$out/rc")
say "pytest in the guest exited $rc; $(took)"
exit "$rc"
exit
}
