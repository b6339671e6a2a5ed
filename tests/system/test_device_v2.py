"""cgroup v2 eBPF device programs, tested for real.

On the hybrid layout runc puts the container into a v2 cgroup too (under
/sys/fs/cgroup/unified) but attaches no device program there, because the
devices controller is on v1.  The test attaches its own program that denies
every block device, as a v2 runtime would; the kernel enforces it in
addition to the v1 devices cgroup.  On pure v2 (the VM lane's --cgroup v2)
the program is the runtime's own.  Either way add-device replaces it with
one that also allows the added device, and remove-device takes the
allowance back, leaving the runtime's code.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from syscontainer_tools import cgroup, syscalls
from syscontainer_tools.resources import devcgroup
from tests.system.cgroups import v2_dir

pytestmark = pytest.mark.system


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


# r2 = ctx->access_type & 0xffff; if r2 == BLOCK: return 0; return 1
DENY_BLOCK = [
    insn(0x61, 2, 1, 0), insn(0x57, 2, imm=0xFFFF),
    insn(0x55, 2, off=2, imm=devcgroup.DEVCG_DEV_BLOCK),
    insn(0xB7, 0, imm=0), insn(0x95),
    insn(0xB7, 0, imm=1), insn(0x95),
]


def attach(cgdir: Path, insns: list[bytes]) -> None:
    prog = devcgroup.load_program(insns, b"test_runtime")
    fd = os.open(cgdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        attr = bytearray(128)
        struct.pack_into("<IIII", attr, 0, fd, prog, devcgroup.BPF_CGROUP_DEVICE,
                         devcgroup.BPF_F_ALLOW_MULTI)
        syscalls.bpf(devcgroup.BPF_PROG_ATTACH, attr)
    finally:
        os.close(fd)
        os.close(prog)


def attached_code(cgdir: Path) -> list[list[bytes]]:
    out = []
    for prog_id in devcgroup.query(str(cgdir))[1]:
        fd = devcgroup._prog_fd(prog_id)
        try:
            out.append(devcgroup.prog_info(fd).insns)
        finally:
            os.close(fd)
    return out


def test_v2_device_program(make_container, make_loop, tool, state_dir):
    ctr = make_container("ebpf")
    a, b = make_loop(), make_loop()
    cg = v2_dir(ctr.pid)
    mounts = cgroup.host_mounts()
    hybrid = bool(mounts.v1)
    if cg == Path(mounts.v2 or "/"):
        # runc before 1.0 final (Debian 11's 1.0.0~rc93) leaves the container in
        # the unified root on a hybrid host: no cgroup of its own to attach to
        pytest.skip("the runtime gives the container no v2 cgroup of its own")
    assert cg.is_dir()
    if hybrid:   # (on pure v2 the runtime attached its own)
        attach(cg, DENY_BLOCK)
    original = attached_code(cg)
    assert len(original) == 1
    # the runtime's program is in force: a block node made by hand cannot be opened
    major, minor = a.majmin
    denied = ctr.sh(f"mknod /tmp/pre b {major} {minor}; dd if=/tmp/pre bs=512 count=1 "
                    "of=/dev/null", check=False)
    assert denied.returncode != 0 and "not permitted" in denied.stderr
    ctr.sh("rm -f /tmp/pre")

    for n, loop in enumerate((a, b)):
        proc = tool("add-device", ctr.id, f"{loop.path}:/dev/v{n}")
        assert proc.returncode == 0, proc.stderr
    for n in (0, 1):
        ok = ctr.sh(f"dd if=/dev/v{n} bs=512 count=1 of=/dev/null", check=False)
        assert ok.returncode == 0, ok.stderr
    # still one program, and char devices still pass through the original logic
    assert len(attached_code(cg)) == 1
    assert ctr.sh("echo x > /dev/null && echo ok").stdout == "ok\n"

    proc = tool("remove-device", ctr.id, f"{a.path}:/dev/v0")
    assert proc.returncode == 0, proc.stderr
    ok = ctr.sh("dd if=/dev/v1 bs=512 count=1 of=/dev/null", check=False)
    assert ok.returncode == 0, ok.stderr
    # v0 is denied again by the v2 program (on hybrid: even where v1 allows it)
    if hybrid:
        Path(f"/sys/fs/cgroup/devices/{ctr.id}/devices.allow").write_text(f"b {major}:{minor} r")
    again = ctr.sh(f"mknod /tmp/v0 b {major} {minor}; dd if=/tmp/v0 bs=512 count=1 "
                   "of=/dev/null", check=False)
    assert again.returncode != 0 and "not permitted" in again.stderr

    proc = tool("remove-device", ctr.id, f"{b.path}:/dev/v1")
    assert proc.returncode == 0, proc.stderr
    # with nothing added, exactly the runtime's own code is attached again
    assert attached_code(cg) == original
