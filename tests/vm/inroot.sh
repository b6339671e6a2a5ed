#!/usr/bin/env bash
# Run a command with a distribution root (tests/vm/mkroot.sh) as / on this
# host's kernel, at native speed: the root pivoted to in a mount and PID
# namespace of its own (like a privileged container: the root's /proc, the
# host's /sys and /dev, a private /tmp and /run, the worktree at its own path),
# so nothing it mounts is seen outside and all of it goes when it ends.
#   tests/vm/inroot.sh DIR COMMAND [ARGS...]
# The VM lanes run the unit tests this way, and `scripts/vm-lanes.sh --full`
# the whole suite: what needs the root's python3 and user space (runc,
# iproute2, util-linux of that release) but not its kernel.  The tools reach
# "the host" through PID 1, which is a shell of this root here (it reaps
# orphans), so they see the root, never this machine's /.  Host networking
# and cgroups are this machine's (the tests give all they make a unique prefix).
set -euo pipefail
dir=${1:?usage: inroot.sh DIR COMMAND [ARGS...]}
shift
[ $# -gt 0 ] || { echo "usage: inroot.sh DIR COMMAND [ARGS...]" >&2; exit 2; }
dir=$(cd "$dir" && pwd)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$dir/bin/sh" ] || { echo "inroot: $dir is not a root file system" >&2; exit 2; }
mkdir -p "$dir$REPO" "$dir/.oldroot"
exec unshare --mount --pid --fork --kill-child --propagation private -- bash -c '
set -e
dir=$1 repo=$2; shift 2
mount --bind "$dir" "$dir"
mount -t proc proc "$dir/proc"
mount --rbind /sys "$dir/sys"
mount --rbind /dev "$dir/dev"
mount -t tmpfs -o mode=1777 tmpfs "$dir/tmp"
mount -t tmpfs -o mode=755 tmpfs "$dir/run"
mount --bind "$repo" "$dir$repo"
cd "$dir"
pivot_root . .oldroot
umount -l /.oldroot
cd "$repo"
export PYTHONDONTWRITEBYTECODE=1 PATH=/opt/sctvm/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin
# PID 1 stays this shell: it waits for the command and reaps what is orphaned
"$@" &
wait $!
' inroot "$dir" "$REPO" "$@"
