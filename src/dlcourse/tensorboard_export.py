"""Cached runs as TensorBoard event files, so `tensorboard --logdir DIR` compares them.

The lab reports explored their runs in TensorBoard: a curve per run, a table of hyperparameters.
`export(out_dir)` writes one folder per run key under `out_dir`:

- `epoch/<column>` scalars, one point per epoch, for every column of the run's history
  (`train_loss`, `val_acc`, `seconds`, ...; NaN cells, such as the accuracy of a regression,
  are left out);
- `step/<column>` scalars (`loss`, `grad_norm`), one point per optimizer step, where the run
  recorded steps;
- the run's spec (its canonical form: the fields that decide the result) as hyperparameters of
  the HParams dashboard, which lists every `epoch/*` tag's last value as a metric.

Wall times are the run's own (each epoch ends `seconds` after the previous one), so
TensorBoard's "relative" axis shows training time, not the moment of export.

It reads the store's files (`dlcourse.cache`) directly, not through `dlcourse.runs`, so an
export never loads torch models or data. Writing uses `torch.utils.tensorboard.SummaryWriter`
(scalars) and tensorboard's own hparams summary, imported only when an export runs.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import HISTORY, SPEC, STEPS, CorruptEntry, Store

EVENTS_PREFIX = "events.out.tfevents."
#: Columns that say where a point lies (TensorBoard's step axis), not what was measured.
INDEXES = ("epoch", "step")


@dataclass(frozen=True)
class ExportedRun:
    """One run written: its folder and how many points of each kind went in."""

    key: str
    folder: Path
    epochs: int
    steps: int
    tags: tuple[str, ...]
    hparams: dict


def _read_csv(data: bytes) -> pd.DataFrame:
    # round-trip floats, so the exported values are the cached ones (pandas 3 does so by default)
    extra = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    return pd.read_csv(io.BytesIO(data), **extra)


def hparams_of(spec_file: dict) -> dict:
    """The hyperparameters TensorBoard shows for a run: its canonical spec (the fields that decide
    the result), lists written as text ("[100, 100]") and unset values (None) left out."""
    spec = spec_file.get("canonical") or spec_file.get("spec") or {}
    out = {}
    for name, value in spec.items():
        if value is None:
            continue
        out[name] = str(list(value)) if isinstance(value, (list, tuple)) else value
    return out


def wall_times(spec_file: dict, history: pd.DataFrame) -> tuple[float, np.ndarray]:
    """When the run started and when each epoch ended, in seconds since 1970: the entry's creation
    time less the run's epochs' `seconds`, then those seconds added up."""
    seconds = history["seconds"].to_numpy(dtype=float) if "seconds" in history else np.zeros(len(history))
    end = float((spec_file.get("env") or {}).get("created") or time.time())
    start = end - float(seconds.sum())
    return start, start + np.cumsum(seconds)


def _step_wall_times(steps: pd.DataFrame, history: pd.DataFrame, start: float, epoch_ends: np.ndarray) -> np.ndarray:
    """Steps spread evenly over their epoch: the last step of epoch e ends when epoch e does."""
    last = steps.groupby("epoch")["step"].max()
    anchors = [(0.0, start)] + [(float(last[e]), end) for e, end in zip(history["epoch"], epoch_ends) if e in last]
    return np.interp(steps["step"].to_numpy(dtype=float), [a for a, _ in anchors], [t for _, t in anchors])


def _scalars(writer, prefix: str, frame: pd.DataFrame, index: str, walls: np.ndarray) -> list[str]:
    tags = []
    for column in frame.columns:
        if column in INDEXES or not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        tag = f"{prefix}/{column}"
        points = [(int(i), float(v), float(w)) for i, v, w in zip(frame[index], frame[column], walls)
                  if not math.isnan(v)]
        for step, value, wall in points:
            writer.add_scalar(tag, value, step, walltime=wall)
        if points:
            tags.append(tag)
    return tags


def _replace_folder(tmp: Path, target: Path) -> None:
    """Move a freshly written run folder into place; an older export of the same run goes away,
    anything else in the way is an error rather than deleted."""
    if target.exists():
        foreign = [p.name for p in target.iterdir() if not p.name.startswith(EVENTS_PREFIX)]
        if foreign or not target.is_dir():
            raise ValueError(f"out_dir={str(target.parent)!r} is not valid: {target} exists and holds "
                             f"files that are not TensorBoard events ({', '.join(foreign[:3]) or 'a file'})")
        shutil.rmtree(target)
    os.rename(tmp, target)


def export_run(store: Store, key: str, out_dir: Path) -> ExportedRun:
    """Write one cached run into `out_dir/<key>/`; CorruptEntry if the entry does not validate."""
    from tensorboard.plugins.hparams import summary_v2 as hp_summary
    from torch.utils.tensorboard import SummaryWriter

    files = store.read(key)
    if files is None:
        raise CorruptEntry("missing")
    try:
        spec_file = json.loads(files[SPEC])
        history = _read_csv(files[HISTORY])
        steps = _read_csv(files[STEPS]) if STEPS in files else None
        hparams = hparams_of(spec_file)
        start, epoch_ends = wall_times(spec_file, history)
    except (KeyError, ValueError) as exc:  # a file missing or unparsable: the entry is unusable
        raise CorruptEntry(f"{type(exc).__name__}: {exc}") from None
    tmp = out_dir / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    try:
        writer = SummaryWriter(log_dir=str(tmp))
        try:
            # the session's trial id is the run key, so TensorBoard's HParams table names the run
            writer.file_writer.add_summary(hp_summary.hparams_pb(hparams, trial_id=key, start_time_secs=start),
                                           walltime=start)
            tags = _scalars(writer, "epoch", history, "epoch", epoch_ends)
            if steps is not None and len(steps):
                tags += _scalars(writer, "step", steps, "step", _step_wall_times(steps, history, start, epoch_ends))
        finally:
            writer.close()
        _replace_folder(tmp, out_dir / key)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportedRun(key, out_dir / key, len(history), 0 if steps is None else len(steps), tuple(tags), hparams)


def export(out_dir: str | os.PathLike, keys: list[str] | None = None, *, cache=None
           ) -> tuple[list[ExportedRun], list[tuple[str, str]]]:
    """Export cached runs to TensorBoard under `out_dir`: the given keys (unique prefixes are
    enough) or every entry. Returns (runs written, (key, reason) of entries skipped as corrupt).

    A key asked for by name that is corrupt is an error; when exporting everything, a corrupt
    entry is skipped and reported, so one bad entry does not hide the others.
    """
    store = Store(cache)
    named = keys is not None and len(keys) > 0
    chosen = [store.resolve(k) for k in keys] if named else store.keys()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    for key in chosen:
        try:
            written.append(export_run(store, key, out))
        except CorruptEntry as exc:
            if named:
                raise ValueError(f"key={key!r} is not valid: its cache entry is corrupt ({exc})") from None
            skipped.append((key, str(exc)))
    return written, skipped
