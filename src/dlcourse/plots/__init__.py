"""Every figure the labs draw, one module per kind of figure.

`curves` (learning curves, wall time), and one module per lab topic where its figures are its
own. All figures use seaborn on long-form pandas frames and label their axes with units.
"""

from __future__ import annotations

import matplotlib

matplotlib.use(matplotlib.get_backend() if matplotlib.get_backend() != "agg" else "agg")

import seaborn as sns  # noqa: E402

METRIC_LABELS = {
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "test_loss": "test loss",
    "train_acc": "training accuracy",
    "val_acc": "validation accuracy",
    "test_acc": "test accuracy",
    "seconds": "wall time (s)",
    "epoch": "epoch",
    "step": "optimizer step",
    "grad_norm": "gradient norm (L2)",
}


def style() -> None:
    """The course's plot style: seaborn's whitegrid, a colour-blind-safe palette."""
    sns.set_theme(style="whitegrid", palette="colorblind", context="notebook")


def label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


style()
