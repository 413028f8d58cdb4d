"""`dlcourse book --plan`: what each lab would train and how long it would take, before anything runs.

Each lab is executed for real (papermill, the same parameters) into a temporary folder, with
$DLCOURSE_PLAN set for its kernel: its `runs.sweep` and `runs.run` calls then train stand-ins
instead of runs and record what they would train (see `dlcourse.runs.plan`), so the plan comes
from the notebooks themselves, stages that depend on earlier results included. Nothing is
written to `book/labs/`, to the results cache or to $DLCOURSE_RUN_LOG.

A lab's estimate = its training (the runs not cached, as estimated by `runs.plan`) + its other
time (kernel, analyses, figures, the NumPy labs' own fits): the plan-mode wall time of the lab
minus what its stand-ins cost, with each analysis that ran on a sample (`plan_mode.timed`)
counted at its estimate for the real number of samples.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from . import execution
from .labs import Lab, check_names
from .plan_mode import PLAN
from .settings import RUN_LOG

COLUMNS = ("runs", "model-epochs", "cached", "stacks", "alone", "training", "other", "total")


def plan_lab(lab: Lab, params: dict, *, root=None, timeout: float | None = execution.DEFAULT_TIMEOUT,
             progress: bool = False) -> dict:
    """The plan of one lab: `summarize` of what its kernel recorded, executed in plan mode."""
    check_names(lab, params)
    saved = {name: os.environ.pop(name, None) for name in (PLAN, RUN_LOG)}
    try:
        with tempfile.TemporaryDirectory(prefix=f"dlcourse-plan-{lab.stem}-") as tmp:
            log = Path(tmp) / "plan.jsonl"
            log.touch()
            os.environ[PLAN] = str(log)  # the kernel inherits it; no RUN_LOG: the plan uses no run
            start = time.perf_counter()
            execution.run_notebook(lab, params, Path(tmp) / lab.path.name, root=root, timeout=timeout,
                                   progress=progress)
            wall = time.perf_counter() - start
            records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    finally:
        os.environ.pop(PLAN, None)
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    return summarize(lab.stem, records, wall)


def summarize(name: str, records: list[dict], wall: float) -> dict:
    """One lab's plan from its records: runs (distinct keys), their model-epochs, how many are
    cached, the stacks and lone runs the rest train as, and the estimated seconds.

    Also `keys` (every run, in the order first asked for) and `batches` (the keys of each
    batch to train, as `runs.batches` cut them in the lab's sweep calls)."""
    runs: dict[str, dict] = {}
    for r in records:
        if "key" in r:
            runs.setdefault(r["key"], r)
    todo = [r for r in runs.values() if not r["cached"]]
    batches: dict[str, list[str]] = {}
    for r in todo:
        batches.setdefault(r["batch"], []).append(r["key"])
    standin = sum(r.get("standin_s", 0.0) for r in records)
    sampled = [r for r in records if "analysis" in r]  # analyses that ran on a sample: their real cost
    training = sum(r["estimate_s"] for r in todo)
    other = max(wall - standin - sum(r["measured_s"] for r in sampled), 0.0) + sum(r["estimate_s"] for r in sampled)
    return {"lab": name, "runs": len(runs), "model-epochs": sum(r["epochs"] for r in runs.values()),
            "cached": len(runs) - len(todo), "stacks": sum(len(b) > 1 for b in batches.values()),
            "alone": sum(len(b) == 1 for b in batches.values()), "training": training, "other": other,
            "total": training + other, "plan_seconds": wall, "keys": list(runs),
            "batches": list(batches.values()), "records": records}


def plan(todo: Iterable[tuple[Lab, dict]], *, root=None, timeout: float | None = execution.DEFAULT_TIMEOUT,
         progress: bool = False, log: Callable[[str], None] | None = None) -> list[dict]:
    """The plan of each (lab, parameters), in order (see `plan_lab`); `log` hears of each lab.

    Every lab is tried: one that fails gives {"lab": name, "error": the LabError's message}."""
    out = []
    for lab, params in todo:
        if log:
            log(f"  {lab.stem}: planning ...")
        start = time.perf_counter()
        try:
            out.append(plan_lab(lab, params, root=root, timeout=timeout, progress=progress))
        except execution.LabError as exc:
            out.append({"lab": lab.stem, "error": str(exc)})
        if log:
            p, took = out[-1], f"{time.perf_counter() - start:.0f} s"
            log(f"  {lab.stem}: FAILED after {took}" if "error" in p else
                f"  {lab.stem}: planned in {took}: {p['runs']} runs ({p['cached']} cached), estimated "
                f"{_clock(p['total'])} (training {_clock(p['training'])} + other {_clock(p['other'])})")
    return out


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def table(plans: list[dict]) -> str:
    """The plans as aligned text: one line per lab, a total line; times in minutes:seconds."""
    header = ["lab", "runs", "model-epochs", "cached", "stacks", "alone", "training (m:s)", "other (m:s)",
              "total (m:s)"]
    done = [p for p in plans if "error" not in p]
    total = {c: sum(p[c] for p in done) for c in COLUMNS}
    rows = [[p["lab"], *(["FAILED"] + [""] * 7 if "error" in p else [str(p[c]) for c in COLUMNS[:5]]
                         + [_clock(p[c]) for c in COLUMNS[5:]])]
            for p in [*plans, {"lab": "total", **total}]]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    lines.insert(-1, "-" * len(lines[0]))
    return "\n".join(lines)


__all__ = ["plan", "plan_lab", "summarize", "table", "COLUMNS"]
