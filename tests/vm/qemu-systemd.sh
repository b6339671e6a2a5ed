#!/bin/sh
# qemu as scripts/vm-lane.sh --init systemd runs it (vng --qemu): before the
# real qemu starts, fill the unit directory virtme-ng made for the guest's
# systemd (SYSTEMD_UNIT_PATH, on the kernel command line) with
#  * virtme-ng's getty drop-in (which runs the test command) moved from
#    serial-getty@ttyS0 to console-getty.service, wanted by getty.target.
#    The guest's generators believe they run in a container (the host's
#    /.dockerenv shows through the 9p root, and container= on the kernel
#    command line only convinces PID 1), so systemd-getty-generator never
#    adds the serial getty, and kernel arguments such as systemd.mask= never
#    reach them; and under emulation dev-ttyS0.device often times out.
#    /dev/console needs no udev;
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
    # virtme-ng's drop-in, for the console getty instead of the serial one
    conf="$dir/serial-getty@.service.d/virtme-ng.conf"
    if [ -f "$conf" ]; then
        mkdir -p "$dir/console-getty.service.d" "$dir/getty.target.wants"
        sed 's|^TTYPath=.*|TTYPath=/dev/console|' "$conf" > "$dir/console-getty.service.d/virtme-ng.conf"
        getty=/lib/systemd/system/console-getty.service
        [ -e "$getty" ] || getty=/usr/lib/systemd/system/console-getty.service
        ln -sf "$getty" "$dir/getty.target.wants/console-getty.service"
        ln -sf /dev/null "$dir/serial-getty@ttyS0.service"
    fi
    for u in ${SCTVM_MASKS:-}; do
        ln -sf /dev/null "$dir/$u"
    done
fi
exec "${SCTVM_QEMU:-qemu-system-x86_64}" "$@"
