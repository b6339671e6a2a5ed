"""The formats of cgroup files, parsed: one number, a limit, "key value" lines,
CPU lists, cpuacct.usage_all.  Kernel files are parsed as bytes with one split
where the format allows it; a file that does not match goes through a
line-by-line parser that skips what it cannot read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

# v1 reports "no limit" as PAGE_COUNTER_MAX pages (9223372036854771712 on
# x86-64); anything this large is no limit at all.
UNLIMITED = 1 << 62


def parse_cpu_list(text: str) -> tuple[int, ...] | None:
    """"0-3,8,10-11" -> (0, 1, 2, 3, 8, 10, 11); None when malformed."""
    cpus: set[int] = set()
    text = text.strip()
    if not text:
        return ()
    try:
        for part in text.split(","):
            lo, sep, hi = part.partition("-")
            first = int(lo)
            last = int(hi) if sep else first
            if first < 0 or last < first or last - first > 65536:
                return None
            cpus.update(range(first, last + 1))
    except ValueError:
        return None
    return tuple(sorted(cpus))


def int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def bint(raw: bytes | None) -> int | None:
    """A file holding one number (surrounding whitespace allowed); None if it does not."""
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def limit_of(text: str | bytes | None) -> int | None:
    """A limit file: None for "max", an absurdly large value, or unreadable."""
    if text is None:
        return None
    value = bint(text) if isinstance(text, bytes) else int_or_none(text)
    return limit_value(value)


def limit_value(value: int | None) -> int | None:
    if value is None or value < 0 or value >= UNLIMITED:
        return None
    return value


def keyed(text: str | None) -> dict[str, int]:
    """"key value" lines (memory.stat, cpu.stat) -> dict, skipping bad lines."""
    out: dict[str, int] = {}
    if not text:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def named(raw: bytes | None, names: Mapping[bytes, str]) -> dict[str, int]:
    """The values of a "key value" file (memory.stat, cpu.stat) whose keys are in
    ``names``, under the names given there; a key that is not a number is skipped.

    One split of the whole file (the kernel writes one pair a line); anything
    else (a line of one or three words) goes through the line-by-line parser."""
    if not raw:
        return {}
    tokens = raw.split()
    if len(tokens) != 2 * (raw.count(b"\n") + (raw[-1:] != b"\n")):
        lines = keyed(raw.decode("utf-8", "replace"))
        return {name: lines[key.decode()] for key, name in names.items() if key.decode() in lines}
    it = iter(tokens)
    pairs = dict(zip(it, it))
    out: dict[str, int] = {}
    for key, name in names.items():
        value = pairs.get(key)
        if value is not None:
            try:
                out[name] = int(value)
            except ValueError:
                continue
    return out


def lowest(values: Iterator[int | None]) -> int | None:
    found = [v for v in values if v is not None]
    return min(found) if found else None


def usage_all(raw: bytes) -> dict[int, tuple[int, int]]:
    """v1 cpuacct.usage_all ("cpu user system" then one "N USER SYS" line per CPU)."""
    tokens = raw.split()
    per_cpu: dict[int, tuple[int, int]] = {}
    if len(tokens) % 3 == 0 and tokens[:3] == [b"cpu", b"user", b"system"]:
        try:
            nums = list(map(int, tokens[3:]))
        except ValueError:
            pass
        else:
            if min(nums, default=0) >= 0:
                it = iter(nums)
                for cpu, user, system in zip(it, it, it):
                    per_cpu[cpu] = (user, system)
                return per_cpu
    for line in raw.decode("ascii", "replace").splitlines()[1:]:
        parts = line.split()
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            per_cpu[int(parts[0])] = (int(parts[1]), int(parts[2]))
    return per_cpu
