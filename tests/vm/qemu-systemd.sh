#!/bin/bash
# qemu as scripts/vm-lane.sh --init systemd runs it (vng --qemu): before the
# real qemu starts,
#  * virtme-ng's init command (init=/bin/sh -c "...: exec /sbin/init") execs
#    tests/vm/systemd-preinit.sh instead, which makes the read-only 9p root a
#    writable host (overlays, the --rwdir share) before systemd starts;
#  * the unit directory virtme-ng made for the guest's systemd
#    (SYSTEMD_UNIT_PATH) gets sctvm.target, the guest's default target
#    (systemd.unit=sctvm.target from vm-lane.sh): basic.target (udevd and its
#    coldplug, journald, dbus's socket) and sctvm-tests.service, which runs
#    the test command (tests/vm/systemd-run.sh) and powers the guest off.  No
#    getty, no virtme-ng-init (it would start a second udevd and mount over
#    a running system), nothing of multi-user.target;
#  * masks (links to /dev/null) for the host units named in SCTVM_MASKS that
#    the tests never need and that are slow over 9p.  (The guest's generators
#    believe they run in a container: the host's /.dockerenv shows through the
#    9p root, and container= on the kernel command line only convinces PID 1;
#    so kernel arguments such as systemd.mask= never reach them.)
# Environment: SCTVM_QEMU (the real qemu), SCTVM_MASKS.
here=$(cd "$(dirname "$0")" && pwd)
dir=""
args=()
for a in "$@"; do
    case "$a" in
        *SYSTEMD_UNIT_PATH=*)
            dir=${a##*SYSTEMD_UNIT_PATH=}; dir=${dir%%:*}
            a=${a/exec \/sbin\/init/exec \/bin\/sh $here\/systemd-preinit.sh}
            ;;
    esac
    args+=("$a")
done
if [ -n "$dir" ] && [ -d "$dir" ]; then
    # virtme-ng's getty drop-in would run virtme-ng-init: not here
    rm -rf "$dir/serial-getty@.service.d"
    cat > "$dir/sctvm.target" <<EOF
[Unit]
Description=syscontainer-tools VM lane
Requires=basic.target
Wants=sctvm-tests.service systemd-udevd.service systemd-udev-trigger.service
After=basic.target
AllowIsolate=yes
EOF
    cat > "$dir/sctvm-tests.service" <<EOF
[Unit]
Description=syscontainer-tools VM lane tests
After=basic.target systemd-udevd.service systemd-udev-trigger.service
[Service]
Type=oneshot
Environment=HOME=/root
ExecStart=/bin/sh $here/systemd-run.sh
StandardInput=null
StandardOutput=journal+console
TimeoutStartSec=infinity
SuccessAction=poweroff-force
FailureAction=poweroff-force
EOF
    for u in ${SCTVM_MASKS:-}; do
        ln -sf /dev/null "$dir/$u"
    done
fi
exec "${SCTVM_QEMU:-qemu-system-x86_64}" "${args[@]}"
