"""Display tables of final numbers: one row per run, or one row per setting with mean ± std over seeds.

The claims tables (what the reports said and our verdicts) are `dlcourse.analysis.evidence`'s;
this module only rounds and arranges numbers a lab has already computed, and decides how every
table of the book looks (`show_table`): numbers rounded as displayed, missing values as "—",
no unnamed 0..n-1 index. The tables this package returns are `Table`s: DataFrames a lab can
still index, assign to or unstack, which display themselves through `show_table`.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import validate

#: The per-epoch numbers a History may hold, in display order (also the default columns).
METRICS = ("train_loss", "val_loss", "test_loss", "train_acc", "val_acc", "test_acc")
#: Columns whose numbers mean nothing past a few decimals (epochs; seconds on a shared machine):
#: shown with at most these many, whatever a table's `digits`.
COARSE = {"best_epoch": 1, "epochs_run": 1, "seconds": 1, "epoch_seconds": 2}
#: Column names starting so count epochs or seconds too (lab 2's "epochs to target" and "seconds to
#: target", lab 6's "epoch to 0.97"), with at most these many decimals.
COARSE_PREFIXES = {"epoch to ": 1, "epochs to ": 1, "seconds to ": 2}


class Table(pd.DataFrame):
    """A DataFrame that displays as `show_table` shows it, rounded to `digits`.

    `html_columns` hold HTML (links) and are shown as HTML; every other cell is escaped text.
    """

    _metadata = ["digits"]
    digits = 3
    html_columns: tuple[str, ...] = ()
    table_kind: str | None = None

    @property
    def _constructor(self):
        return type(self)

    def _repr_html_(self) -> str:
        return show_table(self, self.digits, index=shows_index(self), html=self.html_columns,
                          kind=self.table_kind).to_html()


def as_table(frame: pd.DataFrame, digits: int = 3) -> Table:
    """`frame` as a Table that displays with `digits` decimals."""
    table = Table(frame)
    table.digits = digits
    return table


def _columns(frame: pd.DataFrame, columns: Sequence[str] | None, keys: Sequence[str]) -> list[str]:
    if columns is None:
        columns = [c for c in ("params", *METRICS, "best_epoch", "seconds") if c in frame.columns]
    columns = list(columns)
    missing = [c for c in [*keys, *columns] if c not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the frame; it has {list(frame.columns)}")
    return columns


def final_table(frame: pd.DataFrame, columns: Sequence[str] | None = None, digits: int = 4,
                index: str | None = None) -> Table:
    """The chosen columns of a results frame (default: parameter count, losses, accuracies,
    best epoch and seconds, those present), floats rounded to `digits` (a non-zero value too
    small for them is kept), indexed by the column `index` when given (e.g. "label"); without
    one, the row numbers are not shown."""
    columns = _columns(frame, columns, [index] if index else [])
    out = (frame.set_index(index) if index else frame)[columns].copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):  # a learning rate of 1e-5 must not round to 0
            rounded = out[col].round(digits)
            out[col] = rounded.where((rounded != 0) | (out[col] == 0) | out[col].isna(), out[col])
    return as_table(out, digits)


def seed_table(frame: pd.DataFrame, by: str | Sequence[str] = "label", columns: Sequence[str] | None = None,
               digits: int = 4) -> Table:
    """One row per value of `by` (a setting trained with several seeds): each numeric column as
    "mean ± std" over the rows of that setting (std with ddof 1), and `seeds`, the number of
    rows. A column that varies within no setting (a parameter count, a learning rate, a time
    that the seeds of one stack share) is a property of the setting: its value shows alone, as
    it reads best ("7", "0.001"). A column that varies within some setting is a measurement:
    every cell of it reads "mean ± std" to `digits` decimals, "1.0000 ± 0.0000" where the seeds
    agree, and the mean alone where a setting has one seed, so one column has one format.
    Settings keep their order of first appearance."""
    keys = [by] if isinstance(by, str) else list(by)
    columns = [c for c in _columns(frame, columns, keys) if c not in keys]
    groups = frame.groupby(keys, sort=False)
    out = pd.DataFrame({"seeds": groups.size()})
    for col in columns:
        mean, std, kinds = groups[col].mean(), groups[col].std(ddof=1), groups[col].nunique(dropna=False)
        d = _digits(col, digits)
        if (kinds == 1).all():
            out[col] = [_plain(m, d) for m in mean]
        else:
            out[col] = [_plain(m, d) if pd.isna(m) else _cell(float(m), d) if pd.isna(s)
                        else f"{_cell(float(m), d)} ± {s:.{d}f}" for m, s in zip(mean, std)]
    return as_table(out, digits)


def show_table(frame: pd.DataFrame, digits: int = 3, index: bool = True, html: Sequence[str] = (),
               kind: str | None = None):
    """A frame as the book shows it: floats rounded to `digits` as displayed (not only stored;
    a non-zero number too small for them in exponent form), missing values as "—", the index
    hidden when `index` is False (an unnamed 0..n-1 index tells a reader nothing). Text is
    escaped, except in the columns `html` (links). Returns a pandas Styler, which notebooks and
    the book render (with the class `dataframe`, styled like every other table; `kind` adds a
    class of its own, e.g. "claims", which pages.css lays out differently)."""
    styler = frame.style.set_table_attributes(f'class="dataframe{" " + kind if kind else ""}"')
    for col in frame.columns:  # one format per column: COARSE columns show fewer decimals
        styler = styler.format(functools.partial(_cell, digits=_digits(col, digits)), na_rep="—",
                               escape=None if col in html else "html", subset=[col])
    for axis in (0, 1):  # a break opportunity after each underscore (pages.css: ids break only there)
        styler = styler.format_index(functools.partial(_label, digits=digits), axis=axis, na_rep="—",
                                     escape=None)
    return styler if index else styler.hide(axis="index")


def shows_index(frame: pd.DataFrame) -> bool:
    """Whether a table should show its index: not when it is unnamed integers (0..n-1, or the row
    numbers of a frame it was cut from), which tell a reader nothing."""
    unnamed = all(name is None for name in frame.index.names)
    return not (unnamed and pd.api.types.is_integer_dtype(frame.index.dtype))


def _label(value, digits: int) -> str:
    """A header or index cell as HTML: escaped, with a line-break opportunity after each underscore
    (a claim id such as "xavier_beats_random" breaks into its words, not one letter per line)."""
    return html.escape(_cell(value, digits)).replace("_", "_<wbr>")


def _digits(column, digits: int) -> int:
    prefix = next((p for p in COARSE_PREFIXES if str(column).startswith(p)), None)
    coarse = COARSE_PREFIXES[prefix] if prefix else COARSE.get(column, digits)
    return min(digits, coarse)


def _cell(value, digits: int) -> str:
    """One cell as displayed: floats to `digits` decimals, tiny non-zero ones in exponent form,
    whole numbers from 10,000 on with thousands separators (as the prose writes them)."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value):
        if value != 0 and abs(value) < 0.5 * 10 ** -digits:
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return _whole(int(value))
    return str(value)


def _whole(value: int) -> str:
    """A whole number: 39,760 from 10,000 on; 2048 and a seed such as 1000 stay as they are."""
    return f"{value:,}" if abs(value) >= 10_000 else str(value)


def _plain(value: float, digits: int) -> str:
    """A number as it reads best: whole numbers without a point, others rounded to `digits`."""
    if pd.isna(value):
        return "—"
    if value != 0 and abs(value) < 0.5 * 10 ** -digits:
        return f"{value:.1e}"
    value = round(float(value), digits)
    return _whole(int(value)) if value.is_integer() else f"{value:.{digits}f}".rstrip("0")


def in_words(items: Sequence[object]) -> str:
    """Items as an English list for generated prose: "a", "a and b", "a, b and c"."""
    items = [str(x) for x in items]
    if not items:
        raise ValueError("items=[] is not valid; give at least one item")
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def count(n: int, word: str) -> str:
    """A count and its noun for generated prose: "1 epoch", "10 epochs", "1,000 steps"."""
    n = validate.non_negative_int("n", n)
    return f"{n:,} {word}{'' if n == 1 else 's'}"


__all__ = ["COARSE", "METRICS", "Table", "as_table", "count", "final_table", "in_words", "seed_table", "show_table",
           "shows_index"]
