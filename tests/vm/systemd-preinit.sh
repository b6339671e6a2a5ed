#!/bin/sh
# PID 1 of the VM lane's systemd guest for a moment (scripts/vm-lane.sh --init
# systemd; tests/vm/qemu-systemd.sh makes virtme-ng's init command exec this
# instead of /sbin/init): make the read-only 9p root a writable host, as
# virtme-ng's own init would (but before systemd starts, so that journald,
# logind, udevd and the tests find a normal system), then exec systemd.
#  * virtme_initmountN=PATH (--rwdir): the 9p share tagged virtme.initmountN at PATH
#  * virtme_rw_overlayN=DIR: an overlay on DIR with its upper layer on tmpfs,
#    except /usr and /lib (the tests write nothing there; an overlay would also
#    hide the kernel's modules virtme-ng mounted under /lib/modules) and /tmp,
#    /var/tmp (a fresh tmpfs: the host's /tmp is not the guest's business)
# A directory of the 9p root is the host's: its /proc (with the host's
# /proc/cmdline and mountinfo), /sys and /run show through, with the host's
# file system types (9p passes statfs on).  A mount of the guest's own has
# a device number of its own.
own() { [ "$(stat -c %d "$1")" != "$(stat -c %d /)" ]; }
own /proc || mount -t proc proc /proc
own /sys || mount -t sysfs sysfs /sys
own /dev || mount -t devtmpfs devtmpfs /dev
own /run || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p /run/sctvm
for arg in $(cat /proc/cmdline); do
    key=${arg%%=*} val=${arg#*=}
    case "$key" in
        virtme_initmount[0-9]|virtme_initmount[0-9][0-9])
            mount -t 9p -o version=9p2000.L,trans=virtio,access=any,msize=512000 \
                "virtme.${key#virtme_}" "$val" \
                || # no generators (each is a program loaded over 9p, run again at every
# daemon-reload, which the tests do often; none makes a unit they need): a
# link to /dev/null in /etc/systemd/system-generators masks one
mkdir -p /etc/systemd/system-generators
for g in /usr/lib/systemd/system-generators/* /lib/systemd/system-generators/*; do
    [ -e "$g" ] && ln -sf /dev/null "/etc/systemd/system-generators/${g##*/}"
done
echo "sctvm preinit: cannot mount $key at $val" >&2 ;;
        virtme_rw_overlay[0-9]|virtme_rw_overlay[0-9][0-9])
            case "$val" in
                /usr|/lib|/usr/*|/lib/*) ;;
                /tmp|/var/tmp) ;;
                *)
                    d=/run/sctvm/$key
                    mkdir -p "$d/upper" "$d/work"
                    mount -t overlay -o "xino=off,lowerdir=$val,upperdir=$d/upper,workdir=$d/work" \
                        "sctvm-$key" "$val" \
                        || echo "sctvm preinit: cannot overlay $val" >&2 ;;
            esac ;;
    esac
done
# after the overlay on /etc and /var: virtme-ng's empty fstab, a fresh /tmp
# (without nodev: the tests keep container roots with device nodes there)
: > /etc/fstab
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
# podman's and the engines' stores: the guest's own, never the host's
for d in /var/lib/containers /var/lib/syscontainer-tools /var/lib/lxc /var/log; do
    [ -d "$d" ] || mkdir -p "$d"
    mount -t tmpfs -o mode=0755 tmpfs "$d"
done
echo "sctvm preinit: $(awk '$3 == "overlay" || $3 == "tmpfs" || $3 == "9p" {printf "%s(%s) ", $2, $3}' /proc/mounts)" > /dev/kmsg
exec /sbin/init "$@"
