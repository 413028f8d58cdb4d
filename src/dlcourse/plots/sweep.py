"""Figures of the from-scratch and sweep labs: sample images, every run of a random search,
parallel coordinates, hyperparameter importance, and confusion matrices.

Each function takes plain frames (one row per run, or a confusion-matrix DataFrame from
`dlcourse.metrics`) and returns a `figure.CourseFigure` sized for the book's text column, so a
notebook cell that ends with the call shows it. The search's three summary figures (every run,
parallel coordinates, importance) carry an interactive twin (`plots.interactive_sweep`) built
from the same `*_inputs`: what is plotted, its labels and orders are decided once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.collections import LineCollection

from . import figure, label, palette


def _images(images) -> np.ndarray:
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    images = np.asarray(images, dtype=float)
    if images.ndim == 4:  # (N, 1, H, W)
        images = images[:, 0]
    if images.ndim == 2 and images.shape[1] == 784:
        images = images.reshape(-1, 28, 28)
    if images.ndim != 3:
        raise ValueError(f"images is not valid: expected (N, 28, 28), (N, 1, 28, 28) or (N, 784), got {images.shape}")
    return images


def class_samples(images, labels, classes: Sequence[str], per_class: int = 1, title: str | None = None):
    """The first `per_class` images of every class, one column per class, titled by class name."""
    x = _images(images)
    y = np.asarray(labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels)
    k = len(classes)
    per_row = min(k, 5)  # ten classes in two rows: each title legible in the text column
    blocks = -(-k // per_row)
    fig, axes = figure.subplots(blocks * per_class, per_row, row_height=1.55)
    for c in range(k):
        idx = np.flatnonzero(y == c)[:per_class]
        for r in range(per_class):
            ax = axes[(c // per_row) * per_class + r, c % per_row]
            if r < len(idx):
                ax.imshow(x[idx[r]], cmap="gray_r")
            if r == 0:
                ax.set_title(f"{c}: {classes[c]}")
    for ax in axes.flat:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return figure.finish(fig)


def scatter_inputs(frame: pd.DataFrame, y: str, hue: str, style: str | None, order: str | None,
                   category_orders: Mapping[str, Sequence] | None) -> tuple[pd.DataFrame, dict, str, str]:
    """What `runs_scatter` and its twin draw: the runs numbered (`run`), the legend order of `hue`
    and `style`, and the x and y labels."""
    data = frame.reset_index(drop=True).copy()
    if order is not None:
        data = data.sort_values(order, kind="stable").reset_index(drop=True)
    data["run"] = np.arange(1, len(data) + 1)
    orders = {k: [v for v in (category_orders or {}).get(k, sorted(data[k].unique())) if v in set(data[k])]
              for k in (hue, style) if k}
    xlabel = "run (ranked by " + label(order) + ")" if order else "run (order drawn)"
    return data, orders, xlabel, label(y) + " (fraction)"


def runs_scatter(frame: pd.DataFrame, y: str = "val_acc", hue: str = "optimizer", style: str | None = "activation",
                 order: str | None = None, chance: float | None = 0.1, title: str | None = None,
                 category_orders: Mapping[str, Sequence] | None = None):
    """Every run of a search as one point: run number (x) against its final `y`.

    With `order` the runs are numbered by that column (e.g. `y` itself, giving a ranked curve);
    else in the order they were drawn. A dashed line marks chance accuracy. `category_orders`
    ({column: values}, e.g. the search space) orders the legend of `hue` and `style`; by
    default their values are sorted.
    """
    data, orders, xlabel, ylabel = scatter_inputs(frame, y, hue, style, order, category_orders)
    fig, axes = figure.subplots(1, 1, row_height=3.4, width=figure.FIGURE_INCHES)
    ax = axes[0, 0]
    sns.scatterplot(data=data, x="run", y=y, hue=hue, style=style, s=45, ax=ax, hue_order=orders.get(hue),
                    palette=palette(len(orders[hue])), style_order=orders.get(style) if style else None)
    if chance is not None:
        ax.axhline(chance, ls="--", color="grey", lw=1, label="chance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", frameon=False)
    if title:
        ax.set_title(title)

    def twin():
        from .interactive_sweep import runs_scatter as draw

        return draw(data, y, hue, style, orders, xlabel, ylabel, chance, title)

    return figure.finish(fig, twin)


def _positions(values: pd.Series) -> tuple[np.ndarray, list, np.ndarray]:
    """Axis positions in [0, 1] for a column: evenly spaced sorted distinct values."""
    levels = sorted(values.unique(), key=lambda v: (isinstance(v, str), v))
    if len(levels) == 1:
        ticks = np.array([0.5])
    else:
        ticks = np.linspace(0, 1, len(levels))
    lookup = dict(zip(levels, ticks))
    return values.map(lookup).to_numpy(dtype=float), levels, ticks


def _tick(v) -> str:
    return ("0" if v == 0 else f"{v:g}") if isinstance(v, (int, float, np.number)) else str(v)


def parallel_inputs(frame: pd.DataFrame, params: Sequence[str], target: str,
                    category_orders: Mapping[str, Sequence] | None) -> tuple[pd.DataFrame, list]:
    """What `parallel_coordinates` and its twin draw: the runs, best last, and per axis its
    name, each run's position in [0, 1], and the tick positions and labels (the target's axis
    last, scaled from its lowest to its highest value)."""
    missing = [p for p in [*params, target] if p not in frame.columns]
    if missing:
        raise ValueError(f"params is not valid: no column {missing[0]!r} in the frame")
    data = frame.sort_values(target, kind="stable").reset_index(drop=True)
    columns = []
    for p in params:
        if category_orders and p in category_orders:
            levels = list(category_orders[p])
            ticks = np.linspace(0, 1, len(levels)) if len(levels) > 1 else np.array([0.5])
            pos = data[p].map(dict(zip(levels, ticks))).to_numpy(dtype=float)
        else:
            pos, levels, ticks = _positions(data[p])
        columns.append((p.replace("_", " "), pos, ticks, [_tick(v) for v in levels]))
    t = data[target].to_numpy(dtype=float)
    lo, hi = np.nanmin(t), np.nanmax(t)
    values = np.linspace(lo, hi, 5)
    scaled = (lambda v: (v - lo) / (hi - lo)) if hi > lo else (lambda v: np.full_like(v, 0.5))
    columns.append((label(target), scaled(t), scaled(values), [f"{v:.2f}" for v in values]))
    return data, columns


def parallel_coordinates(frame: pd.DataFrame, params: Sequence[str], target: str = "val_acc",
                         category_orders: Mapping[str, Sequence] | None = None, jitter: float = 0.025,
                         seed: int = 0, cmap: str = "viridis", title: str | None = None):
    """One vertical axis per hyperparameter plus the target, one line per run coloured by the target.

    Categorical axes list their values as tick labels (in `category_orders` if given, else
    sorted); lines get a little seeded vertical jitter so that runs sharing a value stay
    distinguishable. The best runs are drawn last, on top.
    """
    data, columns = parallel_inputs(frame, params, target, category_orders)
    rng = np.random.default_rng(seed)
    ys = np.column_stack([pos + (rng.uniform(-jitter, jitter, len(pos)) if i < len(params) else 0)
                          for i, (_, pos, _, _) in enumerate(columns)])
    xs = np.arange(ys.shape[1])
    t = data[target].to_numpy(dtype=float)

    fig, axes = figure.subplots(1, 1, row_height=4.4, width=figure.FIGURE_INCHES)
    ax = axes[0, 0]
    norm = plt.Normalize(np.nanmin(t), np.nanmax(t))
    lines = LineCollection([np.column_stack([xs, row]) for row in ys], cmap=cmap, norm=norm, linewidths=1.1,
                           alpha=0.75)
    lines.set_array(t)
    ax.add_collection(lines)
    for x, (_, _, ticks, labels) in zip(xs, columns):
        ax.axvline(x, color="black", lw=0.8)
        for tk, lb in zip(ticks, labels):
            # "xavier_normal" on two lines: on one it ran under the next axis's labels
            ax.text(x + 0.04, tk, lb.replace("_", "\n"), fontsize=figure.SMALL_FONT_PT, va="center", ha="left",
                    bbox={"facecolor": "white", "alpha": 0.7, "pad": 0.5, "lw": 0})
    ax.set_xlim(-0.2, xs[-1] + 0.7)
    ax.set_ylim(-0.08, 1.08)
    ax.set_xticks(xs)
    ax.set_xticklabels([name for name, _, _, _ in columns], rotation=30, ha="right")
    ax.set_yticks([])
    ax.grid(False)
    ax.set_ylabel("value on each axis")
    cbar = fig.colorbar(lines, ax=ax, pad=0.01)
    cbar.set_label(label(target) + " (fraction)")
    if title:
        ax.set_title(title)

    def twin():
        from .interactive_sweep import parallel_coordinates as draw

        return draw(data, columns, target, cmap, title)

    return figure.finish(fig, twin)


def importance_inputs(importance: pd.DataFrame, effects: pd.DataFrame, target: str) -> dict:
    """What `importance_bars` and its twin draw: the importances largest first, the value
    correlations largest first with their colours (positive green, negative red), and the labels."""
    eff = effects.dropna(subset=["correlation"]).sort_values("correlation", ascending=False)
    positive, negative = palette(4)[2], palette(4)[3]
    return {"importance": importance.sort_values("importance", ascending=False), "effects": eff,
            "colours": [positive if c > 0 else negative for c in eff["correlation"]],
            "bar": palette(1)[0],
            "xlabels": (f"share of {label(target)} variance explained (eta², 0-1)",
                        f"correlation of the value with {label(target)} (Pearson, -1 to 1)"),
            "ylabels": ("hyperparameter", "hyperparameter = value")}


def importance_bars(importance: pd.DataFrame, effects: pd.DataFrame, target: str = "val_acc", title: str | None = None):
    """Left: variance of `target` explained by each hyperparameter alone (eta^2), with the level
    that chance alone would reach. Right: correlation of each value's one-hot indicator with
    `target` (`search.importance` and `search.level_effects`)."""
    plan = importance_inputs(importance, effects, target)
    imp, eff = plan["importance"], plan["effects"]
    fig, axes = figure.subplots(1, 2, row_height=max(3.2, 0.2 * len(eff) + 1.0),
                                gridspec_kw={"width_ratios": [1, 1.2]})
    left, right = axes[0]
    sns.barplot(data=imp, y="hyperparameter", x="importance", color=plan["bar"], ax=left)
    if "chance" in imp.columns:
        left.scatter(imp["chance"], np.arange(len(imp)), marker="|", s=220, color="black", zorder=3,
                     label="chance level")
        left.legend(loc="lower right")
    sns.barplot(data=eff, y="label", x="correlation", hue="label", palette=plan["colours"], legend=False, ax=right)
    right.axvline(0, color="black", lw=0.8)
    for ax, xlabel, ylabel in zip((left, right), plan["xlabels"], plan["ylabels"]):
        ax.set_xlabel(xlabel.replace(" (", "\n(", 1) if ax is left else xlabel.replace(" with", "\nwith"))
        ax.set_ylabel(ylabel)
    if title:
        fig.suptitle(title)

    def twin():
        from .interactive_sweep import importance_bars as draw

        return draw(plan, title)

    return figure.finish(fig, twin)


def confusion_matrices(matrices: Mapping[str, pd.DataFrame], normalized: bool = True, title: str | None = None,
                       annot: bool = True, per_row: int = 2):
    """Heatmaps of confusion matrices (from `metrics.confusion_matrix`) side by side, one per entry.

    `normalized`: the matrices hold row fractions (per-class recall on the diagonal), shown in
    percent; else counts. `per_row` matrices side by side (at most three), so that a cell's
    number stays legible in the text column.
    """
    k = len(matrices)
    if k == 0:
        raise ValueError("matrices is not valid: give at least one confusion matrix")
    rows, cols = figure.grid_shape(k, per_row)
    fig, axes = figure.subplots(rows, cols, row_height=0.85 * figure.COLUMN_INCHES / cols + 0.4,
                                width=figure.FIGURE_INCHES if cols > 1 else 0.6 * figure.COLUMN_INCHES)
    figure.hide_unused(axes, k)
    for ax, (name, cm) in zip(axes.flat, matrices.items()):
        values = cm * 100 if normalized else cm
        sns.heatmap(values, annot=annot, fmt=".0f" if normalized else "d", cmap="Blues", cbar=True, square=True,
                    vmin=0, vmax=100 if normalized else None, annot_kws={"fontsize": figure.SMALL_FONT_PT}, ax=ax,
                    cbar_kws={"label": "share of the true class (%)" if normalized else "images (count)",
                              "shrink": 0.7})
        ax.set_title(name)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.tick_params(axis="x", rotation=60)
        ax.tick_params(axis="y", rotation=0)
    if title:
        fig.suptitle(title)
    return figure.finish(fig)


def level_strip(frame: pd.DataFrame, params: Sequence[str], target: str = "val_acc", title: str | None = None):
    """One small panel per hyperparameter: every run's `target` by value, with each value's mean."""
    n = len(params)
    nrow, ncol = figure.grid_shape(n)
    fig, axes = figure.subplots(nrow, ncol, row_height=2.4, sharey=True)
    for ax, p in zip(axes.flat, params):
        order = sorted(frame[p].unique(), key=lambda v: (isinstance(v, str), v))
        names = [_tick(v) for v in order]
        data = frame.assign(_v=frame[p].map(dict(zip(order, names))))
        sns.stripplot(data=data, x="_v", y=target, order=names, alpha=0.6, size=4, ax=ax, color=sns.color_palette()[0])
        sns.pointplot(data=data, x="_v", y=target, order=names, errorbar=None, color="black", markers="D",
                      linestyles="none", ax=ax)
        ax.set_xlabel(p.replace("_", " "))
        ax.set_ylabel("")  # one label for the shared axis (below): a label per row runs into the next
        long = sum(len(name) for name in names) > 30  # six optimizers' names collide at 20°
        ax.tick_params(axis="x", rotation=40 if long else 20)
        if long:
            plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    figure.hide_unused(axes, n)
    fig.supylabel(label(target) + " (fraction)", fontsize=plt.rcParams["axes.labelsize"])
    if title:
        fig.suptitle(title)
    return figure.finish(fig)


__all__ = ["class_samples", "runs_scatter", "parallel_coordinates", "importance_bars", "confusion_matrices",
           "level_strip"]
