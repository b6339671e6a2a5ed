"""Device access in a container's cgroups: v1 ``devices.allow``/``deny`` and
the cgroup v2 eBPF device program.

cgroup v1 keeps an exception list per cgroup: ``devices.allow`` adds to it,
``devices.deny`` takes away.  Before allowing, the current ``devices.list``
tells which permissions the runtime had granted already (``/dev/null``,
``b *:* m`` ...): a later deny takes back only what this tool added.

cgroup v2 has no files: a ``BPF_PROG_TYPE_CGROUP_DEVICE`` program attached
to the cgroup decides every access, and with several programs attached
(``BPF_F_ALLOW_MULTI``) every one of them must allow it.  So a device is
allowed by *replacing* each attached program with one that first checks
the devices this tool added and then runs the old program's own
instructions unchanged (read back from the kernel as translated code).
The replacement carries a marker with the length of its prefix, so the next
change strips the prefix and rebuilds it from the record, and removing the
last device puts back exactly the original code.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from .. import cgroup, syscalls
from ..errors import ToolError
from ..log import get_logger

log = get_logger(__name__)

PERMS = "rwm"


@dataclass(frozen=True)
class DevRule:
    kind: str       # "b" or "c"
    major: int
    minor: int
    perm: str       # subset of rwm

    def line(self, perm: str | None = None) -> str:
        return f"{self.kind} {self.major}:{self.minor} {perm if perm is not None else self.perm}"


def perm_union(*perms: str) -> str:
    have = set("".join(perms))
    return "".join(p for p in PERMS if p in have)


def perm_minus(perm: str, other: str) -> str:
    return "".join(p for p in PERMS if p in perm and p not in other)


# --- cgroup v1 ----------------------------------------------------------------

def allowed_by_list(text: str, kind: str, major: int, minor: int) -> str:
    """Permissions ``devices.list`` grants one device (wildcards included)."""
    got = ""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[1]:
            continue
        t, (ma, mi), acc = parts[0], parts[1].split(":", 1), parts[2]
        if t not in ("a", kind):
            continue
        if ma != "*" and ma != str(major) or mi != "*" and mi != str(minor):
            continue
        got = perm_union(got, acc)
    return got


def v1_preallowed(directory: str, rule: DevRule) -> str:
    return allowed_by_list(cgroup.read(directory, "devices.list"), rule.kind, rule.major,
                           rule.minor)


def v1_allow(directory: str, rule: DevRule) -> None:
    cgroup.write(directory, "devices.allow", rule.line())


def v1_deny(directory: str, rule: DevRule, keep: str = "") -> None:
    """Take back ``rule.perm`` except ``keep`` (what others still grant)."""
    perm = perm_minus(rule.perm, keep)
    if perm:
        cgroup.write(directory, "devices.deny", rule.line(perm))


# --- cgroup v2: eBPF device programs -------------------------------------------

BPF_MAP_CREATE = 0
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_OVERRIDE = 1
BPF_F_ALLOW_MULTI = 2
BPF_F_REPLACE = 4
DEVCG_DEV_BLOCK = 1
DEVCG_DEV_CHAR = 2
DEVCG_ACC = {"m": 1, "r": 2, "w": 4}
PROG_NAME = b"sct_devices"
MARKER = 0x5C7D0000
ATTR_SIZE = 128

# opcodes
_LDXW = 0x61        # dst = *(u32 *)(src + off)
_AND64 = 0x57
_RSH64 = 0x77
_MOV64_IMM = 0xB7
_MOV64_REG = 0xBF
_JNE_IMM = 0x55
_EXIT = 0x95
_CALL = 0x85
_LD_IMM64 = 0x18


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _prefix(rules: Sequence[DevRule]) -> list[bytes]:
    """Return 1 for an access one of ``rules`` allows; else fall through.

    r1 (the context) is never written, so the code appended after the prefix
    starts exactly as it would have on its own."""
    body: list[bytes] = [
        _insn(_LDXW, 2, 1, 0), _insn(_AND64, 2, imm=0xFFFF),    # r2 = device type
        _insn(_LDXW, 3, 1, 0), _insn(_RSH64, 3, imm=16),        # r3 = access bits
        _insn(_LDXW, 4, 1, 4),                                  # r4 = major
        _insn(_LDXW, 5, 1, 8),                                  # r5 = minor
    ]
    for rule in rules:
        allowed = sum(DEVCG_ACC[p] for p in rule.perm)
        kind = DEVCG_DEV_BLOCK if rule.kind == "b" else DEVCG_DEV_CHAR
        block = [
            (_JNE_IMM, 2, kind),
            (_MOV64_REG, 0, 3),
            (_AND64, 0, ~allowed),
            (_JNE_IMM, 0, 0),
            (_JNE_IMM, 4, rule.major),
            (_JNE_IMM, 5, rule.minor),
        ]
        n = len(block) + 2
        for i, (code, reg, imm) in enumerate(block):
            if code == _MOV64_REG:
                body.append(_insn(code, reg, imm))
            elif code == _JNE_IMM:
                body.append(_insn(code, reg, off=n - i - 1, imm=imm))
            else:
                body.append(_insn(code, reg, imm=imm))
        body += [_insn(_MOV64_IMM, 0, imm=1), _insn(_EXIT)]
    head = [_insn(_MOV64_IMM, 0, imm=MARKER), _insn(_MOV64_IMM, 0, imm=len(body) + 2)]
    return head + body


def _attr(*fields: tuple[int, str, int | bytes]) -> bytearray:
    attr = bytearray(ATTR_SIZE)
    for offset, fmt, value in fields:
        struct.pack_into(fmt, attr, offset, value)
    return attr


def _addr(buf: ctypes.Array) -> int:  # type: ignore[type-arg]
    return ctypes.addressof(buf)


def load_program(insns: Sequence[bytes], name: bytes = PROG_NAME) -> int:
    """Load a cgroup device program; the verifier's log goes into the error."""
    code = ctypes.create_string_buffer(b"".join(insns), len(insns) * 8)
    lic = ctypes.create_string_buffer(b"GPL")
    logbuf = ctypes.create_string_buffer(65536)
    attr = _attr((0, "<I", BPF_PROG_TYPE_CGROUP_DEVICE), (4, "<I", len(insns)),
                 (8, "<Q", _addr(code)), (16, "<Q", _addr(lic)), (24, "<I", 1),
                 (28, "<I", len(logbuf)), (32, "<Q", _addr(logbuf)), (48, "16s", name[:15]))
    try:
        return syscalls.bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD")
    except OSError as err:
        text = logbuf.value.decode(errors="replace").strip().splitlines()
        raise ToolError(f"the kernel refused the device program ({err.strerror}): "
                        f"{' | '.join(text[-3:])}") from None


@dataclass(frozen=True)
class ProgInfo:
    id: int
    name: bytes
    insns: list[bytes]
    nr_maps: int


def prog_info(fd: int) -> ProgInfo:
    info = ctypes.create_string_buffer(256)
    attr = _attr((0, "<I", fd), (4, "<I", 256), (8, "<Q", _addr(info)))
    syscalls.bpf(BPF_OBJ_GET_INFO_BY_FD, attr, "BPF_OBJ_GET_INFO_BY_FD")
    raw = info.raw
    prog_id, = struct.unpack_from("<I", raw, 4)
    xlated_len, = struct.unpack_from("<I", raw, 20)
    nr_maps, = struct.unpack_from("<I", raw, 52)
    name = raw[64:80].split(b"\0", 1)[0]
    insns: list[bytes] = []
    if xlated_len:
        code = ctypes.create_string_buffer(xlated_len)
        info2 = ctypes.create_string_buffer(256)
        struct.pack_into("<I", info2, 20, xlated_len)
        struct.pack_into("<Q", info2, 32, _addr(code))
        attr = _attr((0, "<I", fd), (4, "<I", 256), (8, "<Q", _addr(info2)))
        syscalls.bpf(BPF_OBJ_GET_INFO_BY_FD, attr, "BPF_OBJ_GET_INFO_BY_FD")
        data = code.raw
        if any(data):
            insns = [data[i:i + 8] for i in range(0, xlated_len, 8)]
    return ProgInfo(prog_id, name, insns, nr_maps)


def query(cgdir: str) -> tuple[int, list[int]]:
    """(attach flags, ids of the device programs attached to ``cgdir`` itself)."""
    fd = os.open(cgdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        ids = (ctypes.c_uint32 * 64)()
        attr = _attr((0, "<I", fd), (4, "<I", BPF_CGROUP_DEVICE), (16, "<Q", _addr(ids)),
                     (24, "<I", 64))
        syscalls.bpf(BPF_PROG_QUERY, attr, cgdir)
        flags, = struct.unpack_from("<I", attr, 12)
        count, = struct.unpack_from("<I", attr, 24)
        return flags, list(ids[:count])
    finally:
        os.close(fd)


def _prog_fd(prog_id: int) -> int:
    return syscalls.bpf(BPF_PROG_GET_FD_BY_ID, _attr((0, "<I", prog_id)), f"bpf prog {prog_id}")


def original_code(info: ProgInfo) -> list[bytes]:
    """The attached program's own instructions, without a prefix of ours."""
    insns = info.insns
    if not insns:
        raise ToolError(f"cannot read the instructions of device program {info.id} "
                        "(JIT hardening hides them?)")
    if info.name == PROG_NAME and len(insns) >= 2:
        code0, _, _, imm0 = struct.unpack("<BBhi", insns[0])
        _, _, _, imm1 = struct.unpack("<BBhi", insns[1])
        if code0 == _MOV64_IMM and imm0 == MARKER and 2 <= imm1 <= len(insns):
            insns = insns[imm1:]
    if info.nr_maps or any(i[0] in (_CALL, _LD_IMM64) for i in insns):
        raise ToolError(f"device program {info.id} attached to the container's cgroup uses "
                        "maps or helper calls: cannot extend it")
    return list(insns)


def v2_enforced(cgdir: str | None) -> bool:
    """Whether device programs are attached to this (non-root) v2 cgroup."""
    if not cgdir or cgdir.rstrip("/") == (cgroup.host_mounts().v2 or "").rstrip("/"):
        return False
    try:
        return bool(query(cgdir)[1])
    except OSError as err:
        if err.errno in (22, 95):          # no BPF_CGROUP_DEVICE support: nothing enforced
            return False
        raise ToolError(f"cannot query the device programs of {cgdir}: {err.strerror}") \
            from None


def v2_sync(cgdir: str, rules: Iterable[DevRule], leave: Collection[bytes] = ()) -> int:
    """Make every device program attached to ``cgdir`` allow ``rules`` on top
    of its original logic; returns how many programs were replaced.

    Programs named in ``leave`` are someone else's to rebuild (systemd's
    ``sd_devices``: systemd detaches the one it attached when it attaches
    the next, so a replaced one would stay attached forever)."""
    rules = list(rules)
    try:
        flags, ids = query(cgdir)
    except OSError as err:
        raise ToolError(f"cgroup v2 device controller not supported for {cgdir}: "
                        f"{err.strerror}") from None
    cgfd = os.open(cgdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        replaced = 0
        for prog_id in ids:
            old = _prog_fd(prog_id)
            try:
                info = prog_info(old)
                if info.name in leave:
                    log.debug("device program %d (%s) on %s left alone", prog_id,
                              info.name.decode(errors="replace"), cgdir)
                    continue
                code = original_code(info)
                insns = (_prefix(rules) + code) if rules else code
                new = load_program(insns, PROG_NAME if rules else b"sct_orig")
                try:
                    if flags & BPF_F_ALLOW_MULTI:
                        attr = _attr((0, "<I", cgfd), (4, "<I", new), (8, "<I", BPF_CGROUP_DEVICE),
                                     (12, "<I", BPF_F_ALLOW_MULTI | BPF_F_REPLACE),
                                     (16, "<I", old))
                    else:
                        attr = _attr((0, "<I", cgfd), (4, "<I", new), (8, "<I", BPF_CGROUP_DEVICE),
                                     (12, "<I", flags))
                    try:
                        syscalls.bpf(BPF_PROG_ATTACH, attr, cgdir)
                    except OSError as err:
                        raise ToolError(f"cannot attach the device program to {cgdir}: "
                                        f"{err.strerror}") from None
                    log.debug("device program %d on %s replaced (%d rules)", prog_id, cgdir,
                              len(rules))
                    replaced += 1
                finally:
                    os.close(new)
            finally:
                os.close(old)
        return replaced
    finally:
        os.close(cgfd)


# --- both -------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceCgroups:
    """Where device access of one container is decided."""

    v1: str | None      # the v1 devices cgroup directory
    v2: str | None      # the v2 cgroup, when device programs are attached to it
    leave: tuple[bytes, ...] = ()   # names of v2 programs v2_sync must not replace

    @classmethod
    def for_pid(cls, pid: int, leave: tuple[bytes, ...] = ()) -> DeviceCgroups:
        cgs = cgroup.for_pid(pid)
        v1 = cgs.v1.get("devices")
        v2 = cgs.v2 if v2_enforced(cgs.v2) else None
        return cls(v1, v2, leave)

    def v2_sync(self, rules: Iterable[DevRule]) -> int:
        return v2_sync(self.v2, rules, self.leave) if self.v2 else 0
