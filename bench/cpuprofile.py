#!/usr/bin/env python3
"""Run a module under cProfile timed by CPU time (``time.process_time``), not
wall time: on a shared, loaded machine the waits for a core would otherwise
swamp the profile.

    python bench/cpuprofile.py OUT.prof MODULE [ARG...]

runs ``python -m MODULE ARG...`` and writes its profile to OUT.prof (also
when it exits with SystemExit).
"""

from __future__ import annotations

import cProfile
import runpy
import sys
import time


def main() -> None:
    out, module = sys.argv[1], sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    prof = cProfile.Profile(time.process_time)
    try:
        prof.runcall(runpy.run_module, module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code
    else:
        code = 0
    finally:
        prof.dump_stats(out)
    sys.exit(code)


if __name__ == "__main__":
    main()
