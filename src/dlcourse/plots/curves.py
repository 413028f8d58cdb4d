"""Learning curves (`metric_curves`) and wall-time bars, drawn from long-form frames of run histories."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import seaborn as sns

from . import label


def wall_time(frame: pd.DataFrame, x: str = "label", y: str = "seconds", hue: str | None = None, title: str | None = None):
    """Bar chart of training time per configuration, in seconds (several seeds: mean, ± 1 std bar)."""
    g = sns.catplot(data=frame, x=x, y=y, hue=hue, kind="bar", errorbar="sd", height=3.2, aspect=1.6)
    g.set_axis_labels(label(x), "wall time (s)")
    if title:
        g.figure.suptitle(title, y=1.03)
    return g


def curve_inputs(frame: pd.DataFrame, metrics: Sequence[str], hue: str, ylabels: dict[str, str] | None,
                 logy: bool | Sequence[str], categorical: bool) -> tuple[pd.DataFrame, list[str], dict, set]:
    """What `metric_curves` and its interactive twin plot, decided once: the metrics present in
    the frame (an error if none is), each metric's y label, the frame with a numeric `hue` made
    categorical in first-seen order when asked, and the metrics drawn on a log scale."""
    metrics = [m for m in metrics if m in frame.columns]
    if not metrics:
        raise ValueError(f"none of the metrics is in the frame; it has {list(frame.columns)}")
    ylabels = {m: (ylabels or {}).get(m, label(m)) for m in metrics}
    if categorical and hue in frame.columns:
        order = list(dict.fromkeys(frame[hue]))
        frame = frame.assign(**{hue: pd.Categorical(frame[hue].astype(str), [str(v) for v in order])})
    log_metrics = set(metrics) if logy is True else set(logy or ())
    return frame, metrics, ylabels, log_metrics


def metric_curves(
    frame: pd.DataFrame,
    metrics: Sequence[str] = ("train_loss", "val_loss"),
    hue: str = "label",
    col: str | None = None,
    x: str = "epoch",
    xlabel: str | None = None,
    ylabels: dict[str, str] | None = None,
    logx: bool = False,
    logy: bool | Sequence[str] = False,
    sharey: str | bool = "row",
    title: str | None = None,
    height: float = 3.0,
    categorical: bool = False,
):
    """Learning curves with every axis labelled: one row per metric, one column per value of `col`
    (or one panel per metric when `col` is None), one line per value of `hue`: with several
    runs (seeds) per line, their mean with a band of ± one standard deviation (no bootstrap, so
    the figure is the same on every build).

    `x` may be `epoch` or `elapsed` (wall time, seconds); `xlabel` / `ylabels` override the
    default labels (e.g. to name the loss and its unit). Panels of a row share their y axis, so
    columns compare at a glance. `logy`: True for every panel, or the metrics to draw on a log
    scale (e.g. the losses but not the accuracies). `categorical`: colour a numeric `hue` (batch
    sizes, say) with distinct colours instead of one graded ramp.
    """
    frame, metrics, ylabels, log_metrics = curve_inputs(frame, metrics, hue, ylabels, logy, categorical)
    ids = [c for c in dict.fromkeys([hue, col, x]) if c]
    long = frame.melt(id_vars=ids, value_vars=metrics, var_name="metric", value_name="value")
    many = long[x].nunique() >= 15
    if col is None:
        facet = {"col": "metric", "col_order": metrics}
        sharey = False
    else:
        facet = {"col": col, "row": "metric", "row_order": metrics}
    g = sns.relplot(data=long, x=x, y="value", hue=hue, kind="line", errorbar="sd", marker=None if many else "o",
                    markersize=4, height=height, aspect=1.2, facet_kws={"sharey": sharey, "margin_titles": False},
                    **facet)
    if col is not None:
        for i, m in enumerate(metrics):
            for j, name in enumerate(g.col_names):
                ax = g.axes[i, j]
                ax.set_title(f"{col} = {format(name)}" if i == 0 else "")
                ax.set_ylabel(ylabels[m] if j == 0 else "")
    else:
        for ax, m in zip(g.axes.flat, metrics):
            ax.set_title(ylabels[m])
            ax.set_ylabel(ylabels[m])
    for ax in g.axes[-1]:
        ax.set_xlabel(xlabel or label(x))
    if logx:
        g.set(xscale="log")
    from matplotlib.ticker import MaxNLocator

    for i, row in enumerate(g.axes):
        for j, ax in enumerate(row):
            if (metrics[j] if col is None else metrics[i]) in log_metrics:
                ax.set_yscale("log")
                _plain_log_ticks(ax.yaxis)
    for ax in g.axes.flat:
        if x == "epoch":  # whole epochs only; one tick for a one-epoch run, not a crowd of fractions
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if logx:
            _plain_log_ticks(ax.xaxis)
    # relplot laid the figure out before these labels existed: lay it out again so a long y label
    # of a right-hand panel does not run into its left neighbour (the legend keeps its room)
    g.tight_layout()
    if title:
        g.figure.suptitle(title, y=1.03)
    return g


def _plain_log_ticks(axis) -> None:
    """Log-axis ticks at 1, 2 and 5 times powers of ten, written as plain numbers (0.2, not 2×10⁻¹)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def metric_vs_params(
    frame: pd.DataFrame,
    y: str = "test_acc",
    x: str = "params",
    hue: str | None = "depth",
    style: str | None = "width",
    ylabel: str | None = None,
    title: str | None = None,
    logx: bool = True,
):
    """One point per run: a final number (default test accuracy) against the parameter count
    (log scale), coloured by `hue` and shaped by `style`, with lines joining each `hue` group."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    data = frame.sort_values(x)
    sns.scatterplot(data=data, x=x, y=y, hue=hue, style=style, s=80, palette="colorblind", ax=ax)
    if hue is not None:
        for i, (_, part) in enumerate(data.groupby(hue, sort=True)):
            ax.plot(part[x], part[y], color=sns.color_palette("colorblind")[i % 10], alpha=0.4, lw=1)
    if logx:
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
    ax.set_xlabel("trainable parameters (count, log scale)" if x == "params" else label(x))
    ax.set_ylabel(ylabel or label(y))
    if title:
        ax.set_title(title)
    ax.legend(loc="best", fontsize="small", frameon=True)
    fig.tight_layout()
    return fig
