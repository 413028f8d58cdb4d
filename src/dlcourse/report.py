"""Display tables of final numbers: one row per run, or one row per setting with mean ± std over seeds.

The claims tables (what the reports said and our verdicts) are `dlcourse.analysis.evidence`'s;
this module only rounds and arranges numbers a lab has already computed.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

#: The per-epoch numbers a History may hold, in display order (also the default columns).
METRICS = ("train_loss", "val_loss", "test_loss", "train_acc", "val_acc", "test_acc")


def _columns(frame: pd.DataFrame, columns: Sequence[str] | None, keys: Sequence[str]) -> list[str]:
    if columns is None:
        columns = [c for c in ("params", *METRICS, "best_epoch", "seconds") if c in frame.columns]
    columns = list(columns)
    missing = [c for c in [*keys, *columns] if c not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the frame; it has {list(frame.columns)}")
    return columns


def final_table(frame: pd.DataFrame, columns: Sequence[str] | None = None, digits: int = 4,
                index: str | None = None) -> pd.DataFrame:
    """The chosen columns of a results frame (default: parameter count, losses, accuracies,
    best epoch and seconds, those present), floats rounded to `digits`, indexed by the column
    `index` when given (e.g. "label")."""
    columns = _columns(frame, columns, [index] if index else [])
    out = (frame.set_index(index) if index else frame)[columns].copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(digits)
    return out


def seed_table(frame: pd.DataFrame, by: str | Sequence[str] = "label", columns: Sequence[str] | None = None,
               digits: int = 4) -> pd.DataFrame:
    """One row per value of `by` (a setting trained with several seeds): each numeric column as
    "mean ± std" over the rows of that setting (std with ddof 1), and `seeds`, the number of
    rows. A value that does not vary within a setting (a parameter count, a learning rate, one
    seed) shows alone, rounded to `digits`. Settings keep their order of first appearance."""
    keys = [by] if isinstance(by, str) else list(by)
    columns = [c for c in _columns(frame, columns, keys) if c not in keys]
    groups = frame.groupby(keys, sort=False)
    out = pd.DataFrame({"seeds": groups.size()})
    for col in columns:
        mean, std, kinds = groups[col].mean(), groups[col].std(ddof=1), groups[col].nunique(dropna=False)
        out[col] = [_plain(m, digits) if k == 1 or pd.isna(s) else f"{m:.{digits}f} ± {s:.{digits}f}"
                    for m, s, k in zip(mean, std, kinds)]
    return out


def show_table(frame: pd.DataFrame, digits: int = 3, index: bool = True):
    """A frame as the book shows it: floats rounded to `digits` as displayed (not only stored),
    missing values as "—", and the index hidden when `index` is False (an unnamed 0..n-1 index
    tells a reader nothing). Returns a pandas Styler, which notebooks and the book render."""
    styler = frame.style.format(precision=digits, na_rep="—", thousands=None)
    return styler if index else styler.hide(axis="index")


def _plain(value: float, digits: int) -> str:
    """A number as it reads best: whole numbers without a point, others rounded to `digits`."""
    if pd.isna(value):
        return "—"
    value = round(float(value), digits)
    return str(int(value)) if value.is_integer() else f"{value:.{digits}f}".rstrip("0")


__all__ = ["METRICS", "final_table", "seed_table", "show_table"]
