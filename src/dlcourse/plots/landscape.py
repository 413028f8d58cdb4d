"""Figures of the generalization lab: loss along an interpolation, and metrics against a model property.

- `interpolation`: loss and accuracy of theta(alpha), train and test, one row of panels per pair.
- `against`: panels of metrics against one quantity (batch size, parameter count), log x axis;
  `sensitivity_panels` and `parameter_panels` are its two uses.
- `train_vs_heldout`: loss and accuracy per epoch on the training and a held-out set, one colour
  per run (the random-label experiment).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import seaborn as sns

from . import figure, label
from .curves import colours, order, plain_log_ticks

LOSS_AXIS = "cross-entropy loss (nats)"
ACC_AXIS = "accuracy (fraction correct)"
SENS_AXIS = r"sensitivity, mean $\Vert\partial p/\partial x\Vert_F$"
X_LABELS = {
    "batch_size": "batch size (images per step, log scale)",
    "parameters": "number of parameters (log scale)",
    "params": "number of parameters (log scale)",
    "alpha": "α  (0 = model a, 1 = model b)",
}


def interpolation(curve: pd.DataFrame, row: str | None = None, names: Mapping[str, Sequence[str]] | None = None,
                  title: str | None = None, height: float = 3.0):
    """Loss (left) and accuracy (right) along alpha, one line per set (train, test).

    `curve`: the long frame of `analysis.landscape.interpolation_curve` (alpha, set, loss, acc),
    with an extra column named by `row` when it holds several pairs (one row of panels each).
    `names`: per row value, the names of model a and b, written in the panel titles.
    """
    rows = [None] if row is None else list(dict.fromkeys(curve[row]))
    fig, axes = figure.subplots(len(rows), 2, row_height=height)
    for i, r in enumerate(rows):
        part = curve if r is None else curve[curve[row] == r]
        heading = "" if r is None else f"{r}: "
        if names is not None and r in names:
            heading += f"a = {names[r][0]}, b = {names[r][1]}"
        for j, (metric, ylabel) in enumerate((("loss", LOSS_AXIS), ("acc", ACC_AXIS))):
            ax = axes[i, j]
            sns.lineplot(data=part, x="alpha", y=metric, hue="set", style="set", markers=True, dashes=False,
                         errorbar="sd", ax=ax)
            for a in (0.0, 1.0):
                ax.axvline(a, color="0.6", lw=0.8, ls="--", zorder=0)
            if metric == "loss" and part["loss"].max() > 20 * max(part["loss"].min(), 1e-3):
                ax.set_yscale("log")
                ylabel = "loss (nats, log scale)"
            ax.set_xlabel(X_LABELS["alpha"])
            ax.set_ylabel(ylabel)
            ax.set_title(heading.rstrip(": ") or ("loss" if metric == "loss" else "accuracy"))
            ax.legend(title=None)
    if title:
        fig.suptitle(title)
    return figure.finish(fig)


def against(frame: pd.DataFrame, x: str, panels: Mapping[str, Sequence[str]], hue: str | None = None,
            logx: bool = True, title: str | None = None, height: float = 3.0):
    """One panel per entry of `panels` ({y-axis label: [metric columns]}), metrics against `x`.

    Within a panel each metric is one line (e.g. train and test loss); with `hue`, one line per
    value of that column instead, and the panel must name a single metric.
    """
    fig, axes = figure.subplots(*figure.grid_shape(len(panels)), row_height=height)
    figure.hide_unused(axes, len(panels))
    for ax, (ylabel, metrics) in zip(axes.flat, panels.items()):
        metrics = [m for m in metrics if m in frame.columns]
        if hue is not None:
            sns.lineplot(data=frame, x=x, y=metrics[0], hue=hue, marker="o", errorbar="sd", ax=ax)
        else:
            long = frame.melt(id_vars=[x], value_vars=metrics, var_name="metric", value_name="value")
            long["metric"] = long["metric"].map(label)
            sns.lineplot(data=long, x=x, y="value", hue="metric", style="metric", markers=True, dashes=False,
                         errorbar="sd", ax=ax)
        if logx:
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
        xlabel = X_LABELS.get(x, label(x))  # on two lines beside another panel: a third of the column is narrow
        ax.set_xlabel(xlabel if len(panels) == 1 else xlabel.replace(" (", "\n(", 1))
        ax.set_ylabel(ylabel)
        if ax.get_legend() is not None:
            if hue is None and len(metrics) == 1:
                ax.get_legend().remove()
            else:
                ax.legend(title=hue)
    if title:
        fig.suptitle(title)
    return figure.finish(fig)


def sensitivity_panels(frame: pd.DataFrame, x: str = "batch_size", title: str | None = None):
    """Input sensitivity beside train/test loss and accuracy, against batch size (one row per model)."""
    return against(frame, x, {SENS_AXIS: ["sensitivity"], LOSS_AXIS: ["train_loss", "test_loss"],
                              ACC_AXIS: ["train_acc", "test_acc"]}, title=title)


def parameter_panels(frame: pd.DataFrame, x: str = "params", title: str | None = None):
    """Train/test loss and accuracy against the number of parameters (one row per model)."""
    return against(frame, x, {LOSS_AXIS: ["train_loss", "test_loss"], ACC_AXIS: ["train_acc", "test_acc"]},
                   title=title)


def train_vs_heldout(history: pd.DataFrame, hue: str = "label", held_out: str = "val", x: str = "epoch",
                     held_out_name: str = "held-out", title: str | None = None, height: float = 3.0):
    """Loss (left) and accuracy (right) per epoch: colour = run (`hue`), solid = training set,
    dashed = the held-out set whose columns start with `held_out` (`val` or `test`)."""
    missing = [c for c in (hue, x, "train_loss", f"{held_out}_loss") if c not in history.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the frame; it has {list(history.columns)}")
    levels = order(history[hue])
    panels = [(ylabel, {f"train_{metric}": "training", f"{held_out}_{metric}": held_out_name})
              for metric, ylabel in (("loss", LOSS_AXIS), ("acc", ACC_AXIS))]
    plan = {"levels": levels, "colours": colours(history[hue], levels), "xlabel": label(x),
            "panels": [(ylabel, {c: n for c, n in sets.items() if c in history.columns}) for ylabel, sets in panels]}
    fig, axes = figure.subplots(1, 2, row_height=height)
    for ax, (ylabel, sets) in zip(axes[0], plan["panels"]):
        long = history.melt(id_vars=[hue, x], value_vars=list(sets), var_name="set", value_name="value")
        long["set"] = long["set"].map(sets)
        sns.lineplot(data=long, x=x, y="value", hue=hue, hue_order=levels, palette=plan["colours"], style="set",
                     style_order=list(sets.values()), errorbar="sd", ax=ax)
        ax.set_xlabel(plan["xlabel"])
        ax.set_ylabel(ylabel)
    axes[0, 0].get_legend().remove()
    axes[0, 1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    if title:
        fig.suptitle(title)

    def twin():
        from .interactive import train_vs_heldout as draw

        return draw(history, hue, x, plan, title, height)

    return figure.finish(fig, twin)
