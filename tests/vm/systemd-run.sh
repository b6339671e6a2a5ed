#!/bin/sh
# Started by the systemd guest's sctvm-tests.service (tests/vm/qemu-systemd.sh
# writes it): run the command virtme-ng put on the kernel command line
# (virtme.exec, base64: scripts/vm-lane.sh's call of tests/vm/guest.sh) with
# its output on virtme-ng's stdout port, which vng copies to the host, and its
# exit status on the ret port.  The unit powers the guest off afterwards.
port() {
    for p in /sys/class/virtio-ports/*; do
        [ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && echo "/dev/${p##*/}" && return 0
    done
    return 1
}
out=$(port virtme.stdout) || out=/dev/console
ret=$(port virtme.ret) || ret=/dev/null
cmd="" dir=/
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        virtme.exec=*) cmd=$(echo "$arg" | sed 's/^virtme.exec=`\(.*\)`$/\1/' | base64 -d) ;;
        virtme_chdir=*) dir=/${arg#virtme_chdir=} ;;
    esac
done
if [ -z "$cmd" ]; then
    echo "sctvm: no virtme.exec on the kernel command line" > "$out"
    echo 2 > "$ret"
    exit 2
fi
cd "$dir" || cd /
# one open of the port (a virtio port takes one opener at a time), shared below
exec > "$out" 2>&1
# a hung test shows where it hangs: every SCTVM_WATCH seconds (default 300),
# the processes of this unit (the tests and what they run), with what they wait in
cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)
( while sleep "${SCTVM_WATCH:-300}"; do
      echo "sctvm-watch: $(cut -d' ' -f1 /proc/uptime)s up, processes of the tests:"
      ps -o pid,etimes,stat,wchan:22,args --forest -p "$(paste -sd, "$cg/cgroup.procs")" |
          cut -c1-200
  done ) &
watch=$!
sh -c "$cmd" < /dev/null
rc=$?
kill "$watch" 2>/dev/null
echo "$rc" > "$ret"
exit "$rc"
