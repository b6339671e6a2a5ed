#!/usr/bin/env bash
# Run a command with a distribution root (tests/vm/mkroot.sh) as / on this
# host's kernel: chroot in a mount namespace of its own (the root's /proc,
# /sys, /dev, a private /tmp and /run, the worktree at its own path), so
# nothing it mounts is seen outside and all of it goes when it ends.
#   tests/vm/inroot.sh DIR COMMAND [ARGS...]
# The VM lanes run the unit tests this way: they need the root's python3, not
# its kernel.  (System tests need the guest: the tools reach the host's mount
# namespace through PID 1, which is outside a chroot.)
set -euo pipefail
dir=${1:?usage: inroot.sh DIR COMMAND [ARGS...]}
shift
[ $# -gt 0 ] || { echo "usage: inroot.sh DIR COMMAND [ARGS...]" >&2; exit 2; }
dir=$(cd "$dir" && pwd)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$dir/bin/sh" ] || { echo "inroot: $dir is not a root file system" >&2; exit 2; }
mkdir -p "$dir$REPO"
# (the root bound onto itself first: a mount point, as pivot_root and runc want)
exec unshare --mount --propagation private -- bash -c '
set -e
dir=$1 repo=$2; shift 2
mount --bind "$dir" "$dir"
mount -t proc proc "$dir/proc"
mount --rbind /sys "$dir/sys"
mount --rbind /dev "$dir/dev"
mount -t tmpfs -o mode=1777 tmpfs "$dir/tmp"
mount -t tmpfs -o mode=755 tmpfs "$dir/run"
mount --bind "$repo" "$dir$repo"
cd "$dir$repo"
exec chroot "$dir" /usr/bin/env -C "$repo" PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/sctvm/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
' inroot "$dir" "$REPO" "$@"
