"""Mount the Python lxcfs and serve it in the foreground until SIGTERM/SIGINT.

``serve(mountpoint)`` is what ``lxcfs-toolkit serve`` calls; ``python -m
lxcfs_toolkit.server MOUNTPOINT`` does the same without the CLI.

Mount options, and why:

* ``allow_other``: container processes are not the daemon's uid;
* ``fsname=lxcfs,subtype=lxcfs``: the mount shows up as ``lxcfs`` of type
  ``fuse.lxcfs``, like C lxcfs, so tools that look for it find either daemon;
* ``entry_timeout``/``attr_timeout``/``negative_timeout``: the tree and the
  attributes never change, so the kernel may keep them for a long time and
  skip a LOOKUP/GETATTR round trip into Python on every open();
* direct I/O is set per open file (the content depends on who reads);
* ``nonempty``: like C lxcfs built with fuse3, mount even over files.

libfuse installs its own SIGTERM/SIGINT/SIGHUP handlers: the signal ends
the loop and libfuse unmounts before ``fuse.FUSE()`` returns; if the mount
is somehow still there afterwards it is detached lazily.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import logging
import os
import sys

from lxcfs_toolkit.kernfile import read_text
from syscontainer_tools.errors import ToolError, render

log = logging.getLogger(__name__)

MNT_DETACH = 2
KERNEL_CACHE_SECONDS = 3600


# the daemon could not start: the one error type, its hint says what the user can do
ServeError = ToolError


def _umount_lazy(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
    if libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)


def mount_entry(path: str, mountinfo: str = "/proc/self/mountinfo") -> tuple[str, str] | None:
    """(fstype, source) of the topmost mount at ``path``, or None."""
    found = None
    for line in (read_text(mountinfo) or "").splitlines():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if len(fields) >= 5 and len(tail) >= 2:
            point = fields[4].replace("\\040", " ")
            if point == path:
                found = (tail[0], tail[1])
    return found


def check_mountpoint(mountpoint: str, *, clean_stale: bool = True) -> None:
    """Refuse a live mount; detect (and by default lazily unmount) a stale one.

    The probe lists the directory: a dead FUSE daemon's attributes may still
    be cached by the kernel (stat succeeds), but an OPENDIR request fails
    with ENOTCONN.
    """
    try:
        os.listdir(mountpoint)
    except FileNotFoundError:
        os.makedirs(mountpoint, exist_ok=True)
        return
    except OSError as err:
        if err.errno not in (errno.ENOTCONN, errno.ECONNABORTED):
            raise ServeError(f"cannot use {mountpoint}: {err.strerror}") from err
        if not clean_stale:
            raise ServeError(
                f"stale FUSE mount at {mountpoint} (transport endpoint is not connected)",
                hint=f"unmount it with 'fusermount -u -z {mountpoint}' or 'umount -l {mountpoint}'",
            ) from err
        log.warning("stale FUSE mount at %s (transport endpoint is not connected): "
                    "detaching it with a lazy unmount", mountpoint)
        try:
            _umount_lazy(mountpoint)
        except OSError as uerr:
            raise ServeError(f"cannot unmount the stale mount at {mountpoint}: {uerr.strerror}") from uerr
        return
    entry = mount_entry(mountpoint)
    if entry is not None and entry[0].startswith("fuse"):
        raise ServeError(
            f"{mountpoint} is already served by a running {entry[1]} ({entry[0]})",
            hint="stop that daemon first; two lxcfs stacked on one directory confuse the hooks",
        )
    if not os.path.isdir(mountpoint):
        raise ServeError(f"{mountpoint} is not a directory")


def serve(
    mountpoint: str,
    *,
    cfs_quota: bool = True,
    single_cpu: bool = True,
    threads: bool = True,
    debug: bool = False,
) -> None:
    """Mount the lxcfs view at ``mountpoint`` and serve until SIGTERM or SIGINT.

    ``cfs_quota``: show only as many CPUs as the CFS quota allows (rounded
    up). ``single_cpu``: let the daemon gather its threads on one CPU while
    many readers are concurrent (see ``lxcfs_toolkit.affinity``).
    ``threads=False`` serves every request on one thread (libfuse ``-s``).
    """
    from lxcfs_toolkit.cgroups import Hierarchies
    from lxcfs_toolkit.fastfuse import FastFUSE, context  # lazy: only the daemon needs libfuse
    from lxcfs_toolkit.fs import LxcfsOperations

    mountpoint = os.path.abspath(mountpoint)
    check_mountpoint(mountpoint)
    ops = LxcfsOperations(Hierarchies.discover(), cfs_quota=cfs_quota, context=context)
    log.info("serving lxcfs at %s (cgroup v1: %s; v2: %s)", mountpoint,
             ",".join(sorted(ops.reader.hier.v1)) or "none", ops.reader.hier.v2 or "none")
    if single_cpu:
        from lxcfs_toolkit import fastfuse
        from lxcfs_toolkit.affinity import AffinityGovernor

        fastfuse.governor = AffinityGovernor()
        fastfuse.governor.register_thread()
    try:
        FastFUSE(
            ops,
            mountpoint,
            raw_fi=True,
            foreground=True,
            debug=debug,
            nothreads=not threads,
            allow_other=True,
            nonempty=True,
            fsname="lxcfs",
            subtype="lxcfs",
            entry_timeout=KERNEL_CACHE_SECONDS,
            attr_timeout=KERNEL_CACHE_SECONDS,
            negative_timeout=KERNEL_CACHE_SECONDS,
        )
    except RuntimeError as err:
        raise ServeError(f"cannot mount lxcfs at {mountpoint} (libfuse error {err})",
                         hint="is the fuse module loaded and /dev/fuse present?") from err
    finally:
        entry = mount_entry(mountpoint)
        if entry is not None and entry[1] == "lxcfs":
            log.warning("%s still mounted after the FUSE loop ended: detaching it", mountpoint)
            try:
                _umount_lazy(mountpoint)
            except OSError as err:
                log.error("cannot unmount %s: %s", mountpoint, err.strerror)
    log.info("unmounted %s", mountpoint)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lxcfs_toolkit.server",
                                     description="Serve the Python lxcfs at MOUNTPOINT.")
    parser.add_argument("mountpoint")
    parser.add_argument("--no-cfs-quota", action="store_true",
                        help="show every cpuset CPU even when a CFS quota allows fewer")
    parser.add_argument("--all-cpus", action="store_true",
                        help="never gather the daemon's threads on one CPU")
    parser.add_argument("--single-thread", action="store_true",
                        help="serve every request on one thread (libfuse -s)")
    parser.add_argument("--debug", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(args.mountpoint, cfs_quota=not args.no_cfs_quota, single_cpu=not args.all_cpus,
              threads=not args.single_thread, debug=args.debug)
    except ToolError as err:
        for line in render(err, action="serve lxcfs"):
            print(line, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
