"""Figures of the function-approximation lab: loss curves, fitted curves, gradient norm, weight paths.

- `loss_curves`: loss against epoch (log scale), one line per net (mean over seeds, with their range),
  one panel per function;
- `predictions`: each net's output on a dense grid against the true function;
- `loss_and_grad_norm`: the loss and the gradient norm side by side against the optimizer step;
- `trajectories`: weight snapshots projected on two principal components, one colour per run,
  points joined in time order, start (circle) and end (cross) marked, one panel per view
  (whole model, first layer, ...).

The CNN lab's accuracy and loss curves are `plots.curves.metric_curves`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from . import figure, label, palette

MSE_AXIS = "mean squared error (log scale)"
STEP_AXIS = "optimizer step (mini-batch updates)"
GRAD_AXIS = "gradient norm ‖∇L‖₂ (log scale)"


def _order(frame: pd.DataFrame, column: str) -> list:
    return list(dict.fromkeys(frame[column]))


def _require(frame: pd.DataFrame, columns) -> None:
    for c in columns:
        if c is not None and c not in frame.columns:
            raise ValueError(f"column {c!r} is not in the frame; it has {list(frame.columns)}")


def _panels(frame: pd.DataFrame, hue: str, col: str | None, height: float):
    """One panel per value of `col` (or a single one), at most three per row, and one fixed
    colour per value of `hue`."""
    cols = [None] if col is None else _order(frame, col)
    fig, axes = figure.subplots(*figure.grid_shape(len(cols)), row_height=height)
    figure.hide_unused(axes, len(cols))
    hues = _order(frame, hue)
    return fig, zip(axes.flat, cols), dict(zip(hues, palette(len(hues))))


def _one_legend(fig, axes) -> None:
    """One legend for all panels, outside them at the right: a legend inside a panel covered
    its curves (the 5-layer net's first steps, the dashed true function)."""
    for ax in axes:
        if ax.get_legend() is not None:  # seaborn's own, one per panel
            ax.get_legend().remove()
    handles, labels = next(h for h in (ax.get_legend_handles_labels() for ax in axes) if h[0])
    fig.legend(handles, labels, loc="outside right center", frameon=False)


def loss_curves(frame: pd.DataFrame, y: str = "train_loss", x: str = "epoch", hue: str = "label",
                col: str | None = "function", title: str | None = None, height: float = 3.2):
    """`y` (a loss) against `x` on a log axis: one line per `hue`, one panel per `col` value.

    `frame`: one row per run and epoch (e.g. `experiments.history_frame`). Several runs of one
    `hue` (seeds) are drawn as their mean with a band from the lowest to the highest run. Its
    interactive twin is `plots.interactive.metric_curves` with `band="range"`.
    """
    _require(frame, (x, y, hue, col))
    fig, panels, colours = _panels(frame, hue, col, height)
    for ax, c in panels:
        part = frame if c is None else frame[frame[col] == c]
        sns.lineplot(data=part, x=x, y=y, hue=hue, palette=colours, lw=1.2, ax=ax, errorbar=("pi", 100))
        ax.set_yscale("log")
        ax.set_xlabel(label(x))
        ax.set_ylabel(f"{label(y)}, {MSE_AXIS}" if "loss" in y else label(y))
        ax.set_title(f"{label(col)} = {c}" if c is not None else label(y))
    _one_legend(fig, fig.axes)
    if title:
        fig.suptitle(title)

    def twin():  # the same panels, colours and labels; the band from the lowest to the highest run
        from .interactive import metric_curves

        return metric_curves(frame, metrics=[y], hue=hue, col=col, x=x, logy=True, title=title, height=height,
                             ylabels={y: f"{label(y)}, {MSE_AXIS}" if "loss" in y else label(y)}, band="range")

    return figure.finish(fig, twin)


def predictions(frame: pd.DataFrame, hue: str = "label", col: str | None = "function", title: str | None = None,
                height: float = 3.2):
    """Each net's prediction (coloured) and the true function (black, dashed) on a dense grid.

    `frame`: the rows of `analysis.trajectory.predict_curve` (x, target, prediction) with a
    `hue` column naming the net and a `col` column naming the function.
    """
    _require(frame, ("x", "target", "prediction", hue, col))
    fig, panels, colours = _panels(frame, hue, col, height)
    for ax, c in panels:
        part = frame if c is None else frame[frame[col] == c]
        truth = part.drop_duplicates("x").sort_values("x")
        ax.plot(truth["x"], truth["target"], color="black", ls="--", lw=1.6, label="true function", zorder=5)
        sns.lineplot(data=part, x="x", y="prediction", hue=hue, palette=colours, lw=1.3, ax=ax, errorbar=None)
        ax.set_xlabel("input x (dimensionless)")
        ax.set_ylabel("output f(x) (dimensionless)")
        ax.set_title(f"{label(col)} = {c}" if c is not None else "prediction")
    _one_legend(fig, fig.axes)
    if title:
        fig.suptitle(title)
    return figure.finish(fig)


def loss_and_grad_norm(steps: pd.DataFrame, hue: str = "label", x: str = "step", smooth: int = 1,
                       title: str | None = None, height: float = 3.2):
    """The loss (left) and the gradient norm (right) against the step, both on log axes.

    `steps`: per-step rows (step, loss, grad_norm) with a `hue` column; `smooth` > 1 draws a
    centred rolling median over that many steps (thick) over the raw values (faint).
    """
    for c in (x, "loss", "grad_norm", hue):
        if c not in steps.columns:
            raise ValueError(f"column {c!r} is not in the frame; it has {list(steps.columns)}"
                             + ("; train with record_grad_norm=True" if c == "grad_norm" else ""))
    fig, axes = figure.subplots(1, 2, row_height=height)
    names = _order(steps, hue)
    colours = dict(zip(names, palette(len(names))))
    for ax, metric, ylabel in zip(axes[0], ("loss", "grad_norm"), (f"training loss, {MSE_AXIS}", GRAD_AXIS)):
        for name in names:
            part = steps[steps[hue] == name].sort_values(x)
            raw = part[metric]
            if smooth > 1:
                ax.plot(part[x], raw, color=colours[name], lw=0.5, alpha=0.25)
                raw = raw.rolling(smooth, center=True, min_periods=1).median()
            ax.plot(part[x], raw, color=colours[name], lw=1.3, label=str(name))
        ax.set_yscale("log")
        ax.set_xlabel(STEP_AXIS if x == "step" else label(x))
        ax.set_ylabel(ylabel)
        ax.set_title("loss" if metric == "loss" else "gradient norm")
    _one_legend(fig, fig.axes)
    if title:
        fig.suptitle(title)
    return figure.finish(fig)


def trajectories(views: Mapping[str, object], title: str | None = None, height: float = 3.2,
                 run_label: str = "seed"):
    """Weight paths in PCA coordinates: one panel per view (two per row), one colour per run.

    `views`: {panel name: `analysis.trajectory.Trajectory`} (e.g. whole model, first layer).
    Points of a run are joined in time order; its first snapshot is a circle, its last a cross.
    Panel titles give the share of the weights' variance that PC1 and PC2 explain.
    """
    if not views:
        raise ValueError("no trajectories were given")
    names = list(views)
    fig, axes = figure.subplots(*figure.grid_shape(len(names), 2), row_height=height)
    figure.hide_unused(axes, len(names))
    runs: list = []
    for traj in views.values():
        runs += [r for r in _order(traj.frame, "run") if r not in runs]
    colours = dict(zip(runs, palette(len(runs))))
    for ax, name in zip(axes.flat, names):
        traj = views[name]
        frame = traj.frame
        if "pc2" not in frame.columns:
            raise ValueError(f"view {name!r} has fewer than 2 principal components")
        for run in _order(frame, "run"):
            part = frame[frame["run"] == run].sort_values("order")
            c = colours[run]
            ax.plot(part["pc1"], part["pc2"], color=c, lw=1.0, marker="o", ms=3, alpha=0.85)
            ax.plot(part["pc1"].iloc[0], part["pc2"].iloc[0], marker="o", ms=8, mfc="white", mec=c, mew=1.6)
            ax.plot(part["pc1"].iloc[-1], part["pc2"].iloc[-1], marker="X", ms=9, color=c, mec="black", mew=0.6)
        ev = traj.explained
        ax.set_title(f"{name}: {traj.size:,} weights\nPC1 {ev[0]:.0%}, PC2 {ev[1]:.0%} of variance")
        ax.set_xlabel("PC 1 (weight units)")
        ax.set_ylabel("PC 2 (weight units)")
    handles = [Line2D([], [], color=colours[r], marker="o", ms=4, lw=1, label=f"{run_label} {r}") for r in runs]
    handles += [Line2D([], [], ls="", marker="o", ms=8, mfc="white", mec="0.3", label="start"),
                Line2D([], [], ls="", marker="X", ms=9, color="0.3", label="end")]
    fig.legend(handles=handles, loc="outside right center", frameon=False)  # upper: into a title
    if title:
        fig.suptitle(title)
    return figure.finish(fig)


__all__: Sequence[str] = ("loss_curves", "predictions", "loss_and_grad_norm", "trajectories")
