"""Figures of the from-scratch and sweep labs: sample images, every run of a random search,
parallel coordinates, hyperparameter importance, and confusion matrices.

Each function takes plain frames (one row per run, or a confusion-matrix DataFrame from
`dlcourse.metrics`) and returns the matplotlib Figure, so a notebook cell that ends with the
call shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.collections import LineCollection

from . import label


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
    fig, axes = plt.subplots(per_class, k, figsize=(1.35 * k, 1.55 * per_class + 0.3), squeeze=False)
    for c in range(k):
        idx = np.flatnonzero(y == c)[:per_class]
        for r in range(per_class):
            ax = axes[r, c]
            ax.set_axis_off()
            if r < len(idx):
                ax.imshow(x[idx[r]], cmap="gray_r")
            if r == 0:
                ax.set_title(f"{c}: {classes[c]}", fontsize=9)
    if title:
        fig.suptitle(title, y=1.02)
    fig.tight_layout()
    return fig


def runs_scatter(frame: pd.DataFrame, y: str = "val_acc", hue: str = "optimizer", style: str | None = "activation",
                 order: str | None = None, chance: float | None = 0.1, title: str | None = None,
                 category_orders: Mapping[str, Sequence] | None = None):
    """Every run of a search as one point: run number (x) against its final `y`.

    With `order` the runs are numbered by that column (e.g. `y` itself, giving a ranked curve);
    else in the order they were drawn. A dashed line marks chance accuracy. `category_orders`
    ({column: values}, e.g. the search space) orders the legend of `hue` and `style`; by
    default their values are sorted.
    """
    data = frame.reset_index(drop=True).copy()
    if order is not None:
        data = data.sort_values(order, kind="stable").reset_index(drop=True)
    data["run"] = np.arange(1, len(data) + 1)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    orders = {k: [v for v in (category_orders or {}).get(k, sorted(data[k].unique())) if v in set(data[k])]
              for k in (hue, style) if k}
    sns.scatterplot(data=data, x="run", y=y, hue=hue, style=style, s=55, ax=ax, hue_order=orders.get(hue),
                    style_order=orders.get(style) if style else None)
    if chance is not None:
        ax.axhline(chance, ls="--", color="grey", lw=1, label="chance")
    ax.set_xlabel("run (ranked by " + label(order) + ")" if order else "run (order drawn)")
    ax.set_ylabel(label(y) + " (fraction)")
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _positions(values: pd.Series) -> tuple[np.ndarray, list, np.ndarray]:
    """Axis positions in [0, 1] for a column: evenly spaced sorted distinct values."""
    levels = sorted(values.unique(), key=lambda v: (isinstance(v, str), v))
    if len(levels) == 1:
        ticks = np.array([0.5])
    else:
        ticks = np.linspace(0, 1, len(levels))
    lookup = dict(zip(levels, ticks))
    return values.map(lookup).to_numpy(dtype=float), levels, ticks


def parallel_coordinates(frame: pd.DataFrame, params: Sequence[str], target: str = "val_acc",
                         category_orders: Mapping[str, Sequence] | None = None, jitter: float = 0.025,
                         seed: int = 0, cmap: str = "viridis", title: str | None = None):
    """One vertical axis per hyperparameter plus the target, one line per run coloured by the target.

    Categorical axes list their values as tick labels (in `category_orders` if given, else
    sorted); lines get a little seeded vertical jitter so that runs sharing a value stay
    distinguishable. The best runs are drawn last, on top.
    """
    missing = [p for p in [*params, target] if p not in frame.columns]
    if missing:
        raise ValueError(f"params is not valid: no column {missing[0]!r} in the frame")
    data = frame.sort_values(target, kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    cols, tick_info = [], []
    for p in params:
        if category_orders and p in category_orders:
            levels = list(category_orders[p])
            ticks = np.linspace(0, 1, len(levels)) if len(levels) > 1 else np.array([0.5])
            pos = data[p].map(dict(zip(levels, ticks))).to_numpy(dtype=float)
        else:
            pos, levels, ticks = _positions(data[p])
        cols.append(pos + rng.uniform(-jitter, jitter, len(pos)))
        tick_info.append((ticks, [("0" if v == 0 else f"{v:g}") if isinstance(v, (int, float, np.number)) else str(v)
                                  for v in levels]))
    t = data[target].to_numpy(dtype=float)
    lo, hi = np.nanmin(t), np.nanmax(t)
    cols.append((t - lo) / (hi - lo) if hi > lo else np.full_like(t, 0.5))
    tick_vals = np.linspace(lo, hi, 5)
    tick_info.append(((tick_vals - lo) / (hi - lo) if hi > lo else np.full(5, 0.5), [f"{v:.2f}" for v in tick_vals]))
    ys = np.column_stack(cols)
    xs = np.arange(ys.shape[1])

    fig, ax = plt.subplots(figsize=(1.25 * len(xs) + 1.5, 4.6))
    norm = plt.Normalize(lo, hi)
    segments = [np.column_stack([xs, row]) for row in ys]
    lines = LineCollection(segments, cmap=cmap, norm=norm, linewidths=1.2, alpha=0.75)
    lines.set_array(t)
    ax.add_collection(lines)
    for x, (ticks, labels) in zip(xs, tick_info):
        ax.axvline(x, color="black", lw=0.8)
        for tk, lb in zip(ticks, labels):
            ax.text(x + 0.04, tk, lb, fontsize=7.5, va="center", ha="left",
                    bbox={"facecolor": "white", "alpha": 0.7, "pad": 0.5, "lw": 0})
    ax.set_xlim(-0.2, xs[-1] + 0.6)
    ax.set_ylim(-0.08, 1.08)
    ax.set_xticks(xs)
    ax.set_xticklabels([*(p.replace("_", " ") for p in params), label(target)], rotation=20)
    ax.set_yticks([])
    ax.grid(False)
    ax.set_ylabel("value on each axis (ticks show the values)")
    cbar = fig.colorbar(lines, ax=ax, pad=0.01)
    cbar.set_label(label(target) + " (fraction)")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def importance_bars(importance: pd.DataFrame, effects: pd.DataFrame, target: str = "val_acc", title: str | None = None):
    """Left: variance of `target` explained by each hyperparameter alone (eta^2), with the level
    that chance alone would reach. Right: correlation of each value's one-hot indicator with
    `target` (`search.importance` and `search.level_effects`)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, max(3.5, 0.2 * len(effects) + 0.8)),
                                      gridspec_kw={"width_ratios": [1, 1.2]})
    imp = importance.sort_values("importance", ascending=False)
    sns.barplot(data=imp, y="hyperparameter", x="importance", color=sns.color_palette()[0], ax=left)
    if "chance" in imp.columns:
        left.scatter(imp["chance"], np.arange(len(imp)), marker="|", s=220, color="black", zorder=3,
                     label="chance level")
        left.legend(loc="lower right", fontsize=8)
    left.set_xlabel(f"share of {label(target)}\nvariance explained (eta², 0-1)")
    left.set_ylabel("hyperparameter")
    eff = effects.dropna(subset=["correlation"]).sort_values("correlation", ascending=False)
    colors = [sns.color_palette()[2] if c > 0 else sns.color_palette()[3] for c in eff["correlation"]]
    sns.barplot(data=eff, y="label", x="correlation", hue="label", palette=colors, legend=False, ax=right)
    right.axvline(0, color="black", lw=0.8)
    right.set_xlabel(f"correlation of the value\nwith {label(target)} (Pearson, -1 to 1)")
    right.set_ylabel("hyperparameter = value")
    right.tick_params(axis="y", labelsize=8)
    if title:
        fig.suptitle(title, y=1.02)
    fig.tight_layout()
    return fig


def confusion_matrices(matrices: Mapping[str, pd.DataFrame], normalized: bool = True, title: str | None = None,
                       annot: bool = True):
    """Heatmaps of confusion matrices (from `metrics.confusion_matrix`) side by side, one per entry.

    `normalized`: the matrices hold row fractions (per-class recall on the diagonal), shown in
    percent; else counts.
    """
    k = len(matrices)
    if k == 0:
        raise ValueError("matrices is not valid: give at least one confusion matrix")
    n_classes = max(len(m) for m in matrices.values())
    size = 0.5 * n_classes + 2
    fig, axes = plt.subplots(1, k, figsize=(size * k, 0.8 * size), squeeze=False)
    for ax, (name, cm) in zip(axes[0], matrices.items()):
        values = cm * 100 if normalized else cm
        sns.heatmap(values, annot=annot, fmt=".0f" if normalized else "d", cmap="Blues", cbar=True, square=True,
                    vmin=0, vmax=100 if normalized else None, annot_kws={"fontsize": 7}, ax=ax,
                    cbar_kws={"label": "share of the true class (%)" if normalized else "images (count)",
                              "shrink": 0.7})
        ax.set_title(name)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.tick_params(axis="x", rotation=60, labelsize=8)
        ax.tick_params(axis="y", rotation=0, labelsize=8)
    if title:
        fig.suptitle(title, y=1.02)
    fig.tight_layout()
    return fig


def level_strip(frame: pd.DataFrame, params: Sequence[str], target: str = "val_acc", title: str | None = None):
    """One small panel per hyperparameter: every run's `target` by value, with each value's mean."""
    n = len(params)
    ncol = min(3, n)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 2.8 * nrow), squeeze=False, sharey=True)
    for ax, p in zip(axes.flat, params):
        order = sorted(frame[p].unique(), key=lambda v: (isinstance(v, str), v))
        names = [("0" if v == 0 else f"{v:g}") if isinstance(v, (int, float, np.number)) else str(v) for v in order]
        data = frame.assign(_v=frame[p].map(dict(zip(order, names))))
        sns.stripplot(data=data, x="_v", y=target, order=names, alpha=0.6, size=4, ax=ax, color=sns.color_palette()[0])
        sns.pointplot(data=data, x="_v", y=target, order=names, errorbar=None, color="black", markers="D",
                      linestyles="none", ax=ax)
        ax.set_xlabel(p.replace("_", " "))
        ax.set_ylabel(label(target) + " (fraction)")
        ax.tick_params(axis="x", labelsize=8, rotation=20)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, y=1.02)
    fig.tight_layout()
    return fig


__all__ = ["class_samples", "runs_scatter", "parallel_coordinates", "importance_bars", "confusion_matrices",
           "level_strip"]
