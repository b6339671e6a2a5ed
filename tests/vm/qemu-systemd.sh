#!/bin/sh
# qemu as scripts/vm-lane.sh --init systemd runs it (vng --qemu): before the
# real qemu starts, fill the unit directory virtme-ng made for the guest's
# systemd (SYSTEMD_UNIT_PATH, on the kernel command line) with
#  * serial-getty@ttyS0.service wanted by getty.target: the getty virtme-ng
#    runs the test command on.  The guest's generators believe they run in a
#    container (the host's /.dockerenv shows through the 9p root, and
#    container= on the kernel command line only convinces PID 1), so
#    systemd-getty-generator never adds it, and kernel arguments such as
#    systemd.mask= never reach them either;
#  * masks (links to /dev/null) for the host units named in SCTVM_MASKS that
#    the tests never need and that are slow over 9p.
# Environment: SCTVM_QEMU (the real qemu), SCTVM_MASKS.
dir=""
for a in "$@"; do
    case "$a" in
        *SYSTEMD_UNIT_PATH=*) dir=${a##*SYSTEMD_UNIT_PATH=}; dir=${dir%%:*} ;;
    esac
done
if [ -n "$dir" ] && [ -d "$dir" ]; then
    getty=/lib/systemd/system/serial-getty@.service
    [ -e "$getty" ] || getty=/usr/lib/systemd/system/serial-getty@.service
    mkdir -p "$dir/getty.target.wants"
    ln -sf "$getty" "$dir/getty.target.wants/serial-getty@ttyS0.service"
    for u in ${SCTVM_MASKS:-}; do
        ln -sf /dev/null "$dir/$u"
    done
fi
exec "${SCTVM_QEMU:-qemu-system-x86_64}" "$@"
