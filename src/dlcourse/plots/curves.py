"""Learning curves and wall-time bars, drawn from long-form frames of run histories."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import seaborn as sns

from . import label


def learning_curves(
    frame: pd.DataFrame,
    metrics: Sequence[str] = ("train_loss", "val_loss"),
    hue: str = "label",
    col: str | None = None,
    x: str = "epoch",
    title: str | None = None,
    logy: bool = False,
    height: float = 3.2,
):
    """One panel per metric (and per value of `col`), one line per value of `hue`.

    `frame` holds one row per run and epoch: the History columns plus the `hue`/`col` columns.
    """
    metrics = [m for m in metrics if m in frame.columns]
    ids = [c for c in {hue, col, x} if c]
    long = frame.melt(id_vars=ids, value_vars=metrics, var_name="metric", value_name="value")
    long["metric"] = long["metric"].map(label)
    facet = {"col": "metric"} if col is None else {"col": col, "row": "metric"}
    g = sns.relplot(data=long, x=x, y="value", hue=hue, kind="line", marker="o" if long[x].nunique() < 15 else None,
                    height=height, aspect=1.25, facet_kws={"sharey": False}, **facet)
    g.set_axis_labels(label(x), "value")
    if col is None:
        g.set_titles("{col_name}")
        for ax, m in zip(g.axes.flat, metrics):
            ax.set_ylabel(label(m))
    else:
        g.set_titles("{row_name} | {col_var} = {col_name}")
    if logy:
        g.set(yscale="log")
    if title:
        g.figure.suptitle(title, y=1.03)
    return g


def wall_time(frame: pd.DataFrame, x: str = "label", y: str = "seconds", hue: str | None = None, title: str | None = None):
    """Bar chart of total training time per configuration, in seconds."""
    g = sns.catplot(data=frame, x=x, y=y, hue=hue, kind="bar", height=3.2, aspect=1.6)
    g.set_axis_labels(label(x), "wall time (s)")
    if title:
        g.figure.suptitle(title, y=1.03)
    return g
