"""Waits in the system tests, stretched for a guest under emulation.

The VM lane sets SYSCONTAINER_VM_TIME_SCALE (10 under TCG, 2 with KVM): what
takes a second natively may take ten there, so every wait for something to
happen goes through these.
"""

from __future__ import annotations

import os


def scaled(seconds: float) -> float:
    """A wait stretched for a guest under emulation (the VM lane sets the scale)."""
    return seconds * float(os.environ.get("SYSCONTAINER_VM_TIME_SCALE", "1"))


def polls(seconds: float, interval: float = 0.05) -> range:
    """The rounds of a poll every ``interval`` seconds that gives up after ``seconds`` (scaled)."""
    return range(max(1, round(scaled(seconds) / interval)))
