"""Learning curves (`metric_curves`, with its interactive twin) and wall-time bars, drawn from
long-form frames of run histories."""

from __future__ import annotations

import math

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import pandas as pd
import seaborn as sns
from matplotlib.colors import Normalize, to_hex
from matplotlib.lines import Line2D

from . import RAMP, figure, label, palette


def wall_time(frame: pd.DataFrame, x: str = "label", y: str = "seconds", hue: str | None = None, title: str | None = None):
    """Bar chart of training time per configuration, in seconds (several seeds: mean, ± 1 std bar)."""
    fig, axes = figure.subplots(1, 1, row_height=3.2, width=0.75 * figure.COLUMN_INCHES)
    ax = axes[0, 0]
    levels = order(frame[hue]) if hue else []
    sns.barplot(data=frame, x=x, y=y, hue=hue, hue_order=levels or None, errorbar="sd", ax=ax,
                palette=colours(frame[hue], levels) if hue else None, color=None if hue else palette(1)[0])
    ax.set_xlabel(label(x))
    ax.set_ylabel("wall time (s)")
    if hue:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title=label(hue))
    if title:
        ax.set_title(title)
    return figure.finish(fig)


def numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def order(values: pd.Series) -> list:
    """seaborn's order of a column's values: its categories, else numbers sorted, else first appearance."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.cat.categories)
    unique = [v for v in pd.unique(values) if pd.notna(v)]
    return sorted(unique) if numeric(values) else unique


def colours(values: pd.Series, levels: list) -> dict:
    """One colour per hue level, each readable on white: the course palette for categories, the
    course ramp for a numeric hue (widths, batch sizes)."""
    if numeric(values):
        norm = Normalize(min(levels), max(levels)) if len(levels) > 1 else (lambda v: 1.0)
        return {v: to_hex(RAMP(norm(v))) for v in levels}
    return dict(zip(levels, palette(len(levels))))


def name(value) -> str:
    return format(value) if not isinstance(value, float) else f"{value:g}"


class Panel(NamedTuple):
    row: int
    column: int
    metric: str
    value: object  # the `col` value drawn in the panel; None without `col`


@dataclass
class CurvePlan:
    """Everything `metric_curves` and its twin draw, decided once: the frame (a numeric hue made
    categorical when asked), the metrics present, their y labels and log scales, the hue levels
    in order with their colours, and the panels, at most `figure.MAX_PER_ROW` per row: one block
    of rows per metric when `col` is given, each block wrapping the values of `col`."""

    frame: pd.DataFrame
    metrics: list[str]
    ylabels: dict[str, str]
    log_metrics: set
    hues: list
    colours: dict
    panels: list[Panel]
    shape: tuple[int, int]
    xlabel: str
    col: str | None

    def title(self, panel: Panel) -> str:
        return f"{label(self.col)} = {name(panel.value)}" if self.col else self.ylabels[panel.metric]

    def part(self, panel: Panel) -> pd.DataFrame:
        return self.frame if self.col is None else self.frame[self.frame[self.col] == panel.value]

    def bottom(self, panel: Panel) -> bool:
        """Whether no panel lies below this one (it carries the x label)."""
        return not any(p.column == panel.column and p.row > panel.row for p in self.panels)


def curve_inputs(frame: pd.DataFrame, metrics: Sequence[str], hue: str, ylabels: dict[str, str] | None,
                 logy: bool | Sequence[str], categorical: bool, col: str | None = None, x: str = "epoch",
                 xlabel: str | None = None, col_wrap: int = figure.MAX_PER_ROW) -> CurvePlan:
    """The `CurvePlan` of `metric_curves` (an error if no metric is in the frame)."""
    metrics = [m for m in metrics if m in frame.columns]
    if not metrics:
        raise ValueError(f"none of the metrics is in the frame; it has {list(frame.columns)}")
    ylabels = {m: (ylabels or {}).get(m, label(m)) for m in metrics}
    if categorical and hue in frame.columns:
        first_seen = list(dict.fromkeys(frame[hue]))
        frame = frame.assign(**{hue: pd.Categorical(frame[hue].astype(str), [str(v) for v in first_seen])})
    log_metrics = set(metrics) if logy is True else set(logy or ())
    hues = order(frame[hue])
    per_row = min(col_wrap, figure.MAX_PER_ROW)
    if col is None:
        rows, cols = figure.grid_shape(len(metrics), per_row)
        panels = [Panel(i // cols, i % cols, m, None) for i, m in enumerate(metrics)]
    else:
        values = order(frame[col])
        block, cols = figure.grid_shape(len(values), per_row)
        rows = block * len(metrics)
        panels = [Panel(i * block + j // cols, j % cols, m, v)
                  for i, m in enumerate(metrics) for j, v in enumerate(values)]
    return CurvePlan(frame, metrics, ylabels, log_metrics, hues, colours(frame[hue], hues), panels, (rows, cols),
                     xlabel or label(x), col)


class Grid:
    """What `metric_curves` returns: the figure, its axes as rows × columns and its legend (as
    seaborn's FacetGrid offers them); a notebook cell that ends with it shows the figure and,
    in the book, its interactive twin (`twin`)."""

    def __init__(self, fig: figure.CourseFigure, axes, legend):
        self.figure, self.axes, self.legend = fig, axes, legend

    @property
    def twin(self):
        return self.figure.twin

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.figure._repr_mimebundle_(include, exclude)


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
    height: float = 2.6,
    categorical: bool = False,
    col_wrap: int = figure.MAX_PER_ROW,
) -> Grid:
    """Learning curves with every axis labelled: one block of panels per metric, one panel per
    value of `col` (or one panel per metric when `col` is None), at most three side by side
    (`col_wrap`: fewer), one line per value of `hue`: with several runs (seeds) per line, their
    mean with a band of ± one standard deviation (no bootstrap, so the figure is the same on
    every build); on a log axis, where such a band may reach below zero, from the lowest to the
    highest run. The figure fits the book's text column; its interactive twin
    (`plots.interactive.metric_curves`, same arguments) comes with it.

    `x` may be `epoch`, `step` or `elapsed` (wall time, seconds); `xlabel` / `ylabels` override
    the default labels (e.g. to name the loss and its unit). `sharey="row"`: the panels of one
    metric share their y axis, so columns compare at a glance (True: all panels; False: none).
    `logy`: True for every panel, or the metrics to draw on a log scale. `categorical`: colour a
    numeric `hue` (batch sizes, say) with distinct colours instead of one graded ramp.
    `height`: inches per row of panels.
    """
    from matplotlib.ticker import MaxNLocator

    plan = curve_inputs(frame, metrics, hue, ylabels, logy, categorical, col, x, xlabel, col_wrap)
    fig, axes = figure.subplots(*plan.shape, row_height=height,
                                width=None if plan.shape[1] > 1 else 0.6 * figure.COLUMN_INCHES)
    many = plan.frame[x].nunique() >= 15
    for p in plan.panels:
        ax = axes[p.row, p.column]
        log = p.metric in plan.log_metrics
        sns.lineplot(data=plan.part(p), x=x, y=p.metric, hue=hue, hue_order=plan.hues, palette=plan.colours,
                     errorbar=("pi", 100) if log else "sd", marker=None if many else "o", markersize=4,
                     legend=False, ax=ax)
        ax.set_title(plan.title(p))
        ax.set_ylabel(plan.ylabels[p.metric] if p.column == 0 or col is None or sharey is False else "")
        ax.set_xlabel(plan.xlabel if plan.bottom(p) else "")
        if log:
            ax.set_yscale("log")
        if logx:
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
        if x == "epoch":  # whole epochs only; one tick for a one-epoch run, not a crowd of fractions
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True, min_n_ticks=1))
    figure.hide_unused(axes, {(p.row, p.column) for p in plan.panels})
    _share_y(axes, plan.panels, sharey)
    for p in plan.panels:  # on the final ranges: how many ticks a log axis takes depends on its span
        if p.metric in plan.log_metrics:
            plain_log_ticks(axes[p.row, p.column].yaxis)
    handles = [Line2D([], [], color=plan.colours[h], marker="o", markersize=4, lw=1.6, label=name(h))
               for h in plan.hues]
    # beside the panels, clear of a title (at the top, a long title ran into the legend's)
    legend = fig.legend(handles=handles, title=label(hue), loc="outside right center" if title else
                        "outside right upper", frameon=False)
    if title:
        fig.suptitle(title)
    from .interactive import metric_curves as twin

    kwargs = dict(metrics=metrics, hue=hue, col=col, x=x, xlabel=xlabel, ylabels=ylabels, logx=logx, logy=logy,
                  sharey=sharey, title=title, height=height, categorical=categorical, col_wrap=col_wrap)
    figure.finish(fig, twin=lambda: twin(frame, **kwargs))
    return Grid(fig, axes, legend)


def _share_y(axes, panels: list[Panel], sharey: str | bool) -> None:
    """One y range for the panels of a metric (`sharey="row"`) or for all of them (True)."""
    if sharey is False or sharey == "none":
        return
    groups: dict = {}
    for p in panels:
        groups.setdefault(p.metric if sharey in ("row", "col") else None, []).append(axes[p.row, p.column])
    for members in groups.values():
        if len(members) > 1:
            low = min(ax.get_ylim()[0] for ax in members)
            high = max(ax.get_ylim()[1] for ax in members)
            for ax in members:
                ax.set_ylim(low, high)

def plain_log_ticks(axis) -> None:
    """Log-axis ticks written as plain numbers (0.2, not 2×10⁻¹): at 1, 2 and 5 times powers of
    ten over at most two decades; over more, at the powers of ten alone, written 10⁻ⁿ where a
    plain number would be long (a crowd of 1-2-5 ticks over seven decades reads as noise)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    low, high = sorted(axis.get_view_interval())
    subs = _log_subs(low, high)
    wide = subs == (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(_log_tick if wide else (lambda v, _: f"{v:g}")))
    axis.set_minor_formatter(NullFormatter())


def _log_subs(low: float, high: float) -> tuple[float, ...]:
    """The multiples of each power of ten that get a tick: 1, 2 and 5 over at most two decades,
    the powers alone over more (the one rule of `plain_log_ticks` and `log_ticks`)."""
    return (1.0,) if low > 0 and high / low > 100 else (1.0, 2.0, 5.0)


def log_ticks(low: float, high: float) -> list[float]:
    """Where `plain_log_ticks` puts the ticks of a log axis over [low, high], as a list (for the
    Plotly twins)."""
    if not (0 < low <= high and math.isfinite(high)):
        return []
    subs = _log_subs(low, high)
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    ticks = [m * 10.0 ** k for k in range(first, last + 1) for m in subs]
    return [float(f"{t:.12g}") for t in ticks if low <= t <= high]


def log_label(value: float) -> str:
    """A tick of `log_ticks` as HTML text (Plotly): plain where short, else m×10<sup>n</sup>."""
    text = f"{value:g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = f"10<sup>{int(exponent)}</sup>"
    return power if mantissa == "1" else f"{mantissa}×{power}"


def _log_tick(value: float, _=None) -> str:
    """A power of ten as a plain number where that is short (0.01 to 1000), else as $10^{n}$."""
    exponent = round(math.log10(value))
    return f"{value:g}" if -2 <= exponent <= 3 else f"$10^{{{exponent}}}$"


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
    fig, axes = figure.subplots(1, 1, row_height=3.6, width=0.8 * figure.COLUMN_INCHES)
    ax = axes[0, 0]
    data = frame.sort_values(x)
    levels = sorted(data[hue].unique()) if hue is not None else []
    hues = dict(zip(levels, palette(len(levels))))
    sns.scatterplot(data=data, x=x, y=y, hue=hue, style=style, s=80, palette=hues or None, ax=ax)
    for level, part in data.groupby(hue, sort=True) if hue is not None else ():
        ax.plot(part[x], part[y], color=hues[level], alpha=0.4, lw=1)
    if logx:
        ax.set_xscale("log")
        plain_log_ticks(ax.xaxis)
    ax.set_xlabel("trainable parameters (count, log scale)" if x == "params" else label(x))
    ax.set_ylabel(ylabel or label(y))
    if title:
        ax.set_title(title)
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return figure.finish(fig)
