"""Plan mode, as every layer sees it: `dlcourse book --plan` executes each lab with $DLCOURSE_PLAN
naming a file, and whatever would cost real time records in that file what it would cost instead.

Training is planned by `dlcourse.runs.plan` (stand-in runs, an estimate per batch). Analyses whose
cost grows with the samples they look at (lab 4's interpolations and input Jacobians: minutes at the
full profile) call `samples` and `timed`: in plan mode they run on PLAN_SAMPLES samples and record
their measured seconds and the seconds the real number of samples would take (scaled linearly), so
that the plan does not take as long as the lab. Outside plan mode both do nothing.
No torch here: the NumPy course code may use it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

#: When set (to a file), the lab runs in plan mode: `runs.run` and `runs.sweep` plan instead of
#: training (see `runs.plan`), analyses sample (below); `dlcourse.planning` sets it for a kernel.
PLAN = "DLCOURSE_PLAN"
#: The samples a sampled analysis evaluates in plan mode, at most.
PLAN_SAMPLES = 200


def active() -> bool:
    return bool(os.environ.get(PLAN))


def record(lines: list[dict]) -> None:
    """Append records (JSON lines) to the plan file; the one writer of it."""
    with open(os.environ[PLAN], "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))


def samples(n: int) -> int:
    """How many of `n` samples an analysis evaluates: all, or in plan mode at most PLAN_SAMPLES."""
    return min(n, PLAN_SAMPLES) if active() else n


@contextlib.contextmanager
def timed(what: str, used: int, real: int):
    """Time the block; in plan mode, when it ran on `used` of `real` samples, record its seconds
    (`measured_s`) and the seconds all `real` would take (`estimate_s`, scaled linearly)."""
    start = time.perf_counter()
    yield
    if active() and 0 < used < real:
        measured = time.perf_counter() - start
        record([{"analysis": what, "measured_s": measured, "estimate_s": measured * real / used}])


__all__ = ["PLAN", "PLAN_SAMPLES", "active", "record", "samples", "timed"]
