"""Every figure the labs draw, one module per kind of figure.

`curves` (learning curves, wall time), `figure` (the course's figure: sized for the book's text
column, shown as a PNG and, where it has one, its interactive twin), `interactive` and
`interactive_sweep` (the Plotly twins), and one module per lab topic where its figures are its
own. All figures use seaborn on long-form pandas frames and label their axes with units.
"""

from __future__ import annotations

import matplotlib

matplotlib.use(matplotlib.get_backend() if matplotlib.get_backend() != "agg" else "agg")

import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import ListedColormap, to_hex, to_rgb  # noqa: E402

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

#: Least contrast (WCAG ratio) of a line colour on the white page: seaborn's colour-blind palette
#: has a pale pink (1.7) and a yellow (1.4) that vanish on white; they are left out.
MIN_CONTRAST = 2.5


def contrast(colour) -> float:
    """WCAG contrast ratio of `colour` against white (1 = invisible, 21 = black)."""
    linear = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in to_rgb(colour)]
    return 1.05 / (0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2] + 0.05)


_READABLE = [to_hex(c) for c in [*sns.color_palette("colorblind"), *sns.color_palette("dark")]
             if contrast(c) >= MIN_CONTRAST]
#: The first colours, in order: blue, orange, green, vermillion (lab 8's positive and negative
#: bars are the third and fourth), pink, grey, purple, navy, teal. The colour-blind palette's tan
#: and the dark palette's burnt orange come later: beside orange and vermillion, thin lines in them
#: read as a third and a fourth orange (lab 2's seven optimizers had three).
_FIRST = ["#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#949494", "#591e71", "#001c7f", "#006374"]
#: The course's categorical colours: seaborn's colour-blind palette and its dark one, each colour
#: dark enough to read on white, in the order above.
PALETTE = [c for c in _FIRST if c in _READABLE] + [c for c in _READABLE if c not in _FIRST]
#: The ramp for a numeric hue (widths, batch sizes): seaborn's "flare" without its palest quarter.
RAMP = ListedColormap(sns.color_palette("flare", as_cmap=True)(np.linspace(0.3, 1.0, 256)), name="course_ramp")


def palette(n: int) -> list[str]:
    """`n` distinct colours readable on white: the course palette, then husl at a mid lightness."""
    if n <= len(PALETTE):
        return PALETTE[:n]
    return [to_hex(c) for c in sns.husl_palette(n, l=0.5, s=0.9)]


def style() -> None:
    """The course's plot style: seaborn's whitegrid, the course palette, type sized so that a
    figure as wide as the book's text column keeps every label at 9 pt or more, and 96 dots per
    inch, so that an inch of figure is 96 CSS pixels on the page (`figure.COLUMN_INCHES`)."""
    sns.set_theme(style="whitegrid", palette=PALETTE, context="notebook", font_scale=0.85)
    matplotlib.rcParams["figure.dpi"] = 96


def label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


style()
