"""Interactive (Plotly) twins of the course's figures, for the HTML book and JupyterLab.

`metric_curves` takes the same long frame and the same arguments as `plots.curves.metric_curves`
and draws the same `curves.CurvePlan` (panels, orders, colours, labels, log axes) as a Plotly
figure: hovering a point shows the run, the epoch and the value; clicking a legend entry hides or
shows that run in every panel. `plots.curves.metric_curves` attaches it to its static figure
(`plots.figure.CourseFigure`), which stays the one for print, PDF and nbval.

`Interactive(fig)` (or `show(fig)`) is what a notebook cell outputs. Its HTML is the figure
without plotly.js (`to_html(full_html=False, include_plotlyjs=False)`): the book loads
plotly.js once per site from `_static` (the `dlcourse.sphinx_plotly` extension), never inlined
per figure. myst-nb renders that HTML; JupyterLab renders the Plotly JSON beside it instead.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import curves, figure, label
from .curves import curve_inputs, name

PLOTLY_MIME = figure.PLOTLY_MIME
#: Browser options of every figure: resize with the page, no Plotly logo in the toolbar.
CONFIG = {"responsive": True, "displaylogo": False}
#: Most points a line of the twin carries; a longer one (per-step curves) keeps every k-th
#: point, so that a page stays small (its figure data is in the page's HTML).
MAX_POINTS = 300


def thin(stats: pd.DataFrame, limit: int = MAX_POINTS) -> pd.DataFrame:
    """Every k-th row of `stats` (and its last) so that at most about `limit` remain."""
    if len(stats) <= limit:
        return stats
    step = -(-len(stats) // limit)
    keep = sorted(set(range(0, len(stats), step)) | {len(stats) - 1})
    return stats.iloc[keep]


def wrap(text: str, width: int) -> str:
    """`text` as Plotly title text: its line breaks, and breaks between words every `width`
    characters, as `<br>` (Plotly draws a "\n" as nothing, and a long title over its
    neighbour's)."""
    return "<br>".join(line for part in str(text).split("\n")
                       for line in (textwrap.wrap(part, width) or [""]))


def _log_axis(values: pd.Series) -> dict:
    """Tick values of a log axis over `values` where the static figure has its ticks
    (`curves.log_ticks`), labelled as plain numbers (`curves.log_label`): Plotly's own labels
    are a crowd of single digits ("2 5 0.1 2 5")."""
    positive = pd.to_numeric(values, errors="coerce")
    positive = positive[positive > 0]
    ticks = curves.log_ticks(float(positive.min()), float(positive.max())) if len(positive) else []
    if len(ticks) < 2:  # less than one labelled step: leave it to Plotly
        return {}
    return {"tickmode": "array", "tickvals": ticks, "ticktext": [curves.log_label(t) for t in ticks]}


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
    band: str = "sd",
):
    """The interactive twin of `plots.curves.metric_curves` (same arguments, and the same
    `CurvePlan`: panels, orders, colours and labels). Where several rows share a hue value and x
    in a panel (seeds, say), the line is their mean and the band ± one standard deviation, as on
    the static figure (on a log axis, and with `band="range"`: from the lowest to the highest run, as
    `plots.approximation.loss_curves` draws it); hovering a point shows the run, x and the value; a legend click toggles
    the run in every panel.
    """
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    plan = curve_inputs(frame, metrics, hue, ylabels, logy, categorical, col, x, xlabel, col_wrap)
    rows, cols = plan.shape
    many = plan.frame[x].nunique() >= 15
    width = {1: 80, 2: 40}.get(cols, 26)  # characters of a title over one panel
    titles = [""] * (rows * cols)
    for p in plan.panels:
        titles[p.row * cols + p.column] = wrap(plan.title(p), width)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.1,
                        vertical_spacing=min(0.3, 0.5 / rows) if rows > 1 else 0.12)
    shown = set()
    for p in plan.panels:
        part, ylabel, row, column = plan.part(p), plan.ylabels[p.metric], p.row + 1, p.column + 1
        for h in plan.hues:
            points = part.loc[part[hue] == h, [x, p.metric]].dropna()
            if points.empty:
                continue
            stats = thin(points.groupby(x, sort=True)[p.metric].agg(["mean", "std", "count", "min", "max"]))
            group = name(h)
            several = bool((stats["count"] > 1).any())
            template = (f"{label(hue)}: {group}<br>{plan.xlabel}: %{{x}}<br>{ylabel}: %{{y:.4g}}"
                        + ("<br>mean of %{customdata} runs" if several else "") + "<extra></extra>")
            if several:  # the band first, so the line draws over it
                half = stats["std"].fillna(0.0)
                spans = band == "range" or p.metric in plan.log_metrics  # a ± band may cross 0
                low, high = (stats["min"], stats["max"]) if spans else (stats["mean"] - half,
                                                                         stats["mean"] + half)
                fig.add_trace(go.Scatter(
                    x=list(stats.index) + list(stats.index[::-1]),
                    y=list(high) + list(low[::-1]),
                    mode="lines", fill="toself", fillcolor=plan.colours[h], opacity=0.2, line={"width": 0},
                    hoverinfo="skip",
                    legendgroup=group, showlegend=False, name=group), row=row, col=column)
            fig.add_trace(go.Scatter(
                x=stats.index.tolist(), y=stats["mean"].tolist(), customdata=stats["count"].tolist(),
                mode="lines" if many else "lines+markers", name=group, legendgroup=group,
                showlegend=group not in shown, line={"color": plan.colours[h], "width": 2}, marker={"size": 6},
                hovertemplate=template), row=row, col=column)
            shown.add(group)
        # a y title that repeats the panel's title is left out: beside the next panel it ran
        # into that panel's ticks
        if (p.column == 0 or col is None or sharey is False) and ylabel != plan.title(p):
            fig.update_yaxes(title_text=wrap(ylabel, 30), row=row, col=column)
        if p.metric in plan.log_metrics:
            fig.update_yaxes(type="log", row=row, col=column, **_log_axis(plan.frame[p.metric]))
        if plan.bottom(p):
            fig.update_xaxes(title_text=plan.xlabel, row=row, col=column)
    _share_y(fig, plan, sharey)
    if logx:
        fig.update_xaxes(type="log", **_log_axis(plan.frame[x]))
    if x == "epoch":  # whole epochs only, as on the static figure
        ticks = 10 if cols == 1 else 5  # a narrower panel fits fewer labels unrotated
        fig.update_xaxes(tickformat="d", dtick=max(1, int(np.ceil(plan.frame[x].max() / ticks))))
    fig.update_layout(
        title=title, template="plotly_white", hovermode="closest", font={"size": 12},
        legend={"title": {"text": label(hue)}, "groupclick": "togglegroup"},
        height=int(rows * height * figure.CSS_DPI) + 80 + (40 if title else 0),
        margin={"l": 60, "r": 20, "t": 50 + (40 if title else 0), "b": 50})
    fig.update_annotations(font_size=13)  # the panel titles
    for p in range(rows * cols):  # hide the axes of panels left empty
        if not any(q.row * cols + q.column == p for q in plan.panels):
            suffix = "" if p == 0 else str(p + 1)
            fig.layout["xaxis" + suffix].visible = False
            fig.layout["yaxis" + suffix].visible = False
    return fig


def _share_y(fig, plan, sharey) -> None:
    """Link the y axes of one metric's panels (`sharey="row"`) or of all panels (True): zooming
    one zooms the others, as the static figure shares their range."""
    if sharey is False or sharey == "none":
        return
    cols = plan.shape[1]
    groups: dict = {}
    for p in plan.panels:
        groups.setdefault(p.metric if sharey in ("row", "col") else None, []).append(p.row * cols + p.column + 1)
    for members in groups.values():
        first = "y" if members[0] == 1 else f"y{members[0]}"
        for index in members[1:]:
            fig.layout["yaxis" + str(index)].matches = first


def train_vs_heldout(history: pd.DataFrame, hue: str, x: str, plan: dict, title: str | None, height: float):
    """The twin of `plots.landscape.train_vs_heldout`, from its `plan` (hue levels and colours,
    and per panel its y label and {column: set name}): solid the training set, dashed the
    held-out one; a legend click toggles a run's four lines; hovering names run, set and value."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(plan["panels"]), horizontal_spacing=0.12)
    for column, (ylabel, sets) in enumerate(plan["panels"], start=1):
        for level in plan["levels"]:
            part = history[history[hue] == level]
            for (source, set_name), dash in zip(sets.items(), ("solid", "dash")):
                stats = thin(part.groupby(x, sort=True)[source].agg(["mean"]).dropna())
                group = name(level)
                fig.add_trace(go.Scatter(
                    x=stats.index.tolist(), y=stats["mean"].tolist(), mode="lines+markers",
                    name=f"{group}, {set_name}", legendgroup=group, showlegend=column == 1,
                    line={"color": plan["colours"][level], "width": 2, "dash": dash}, marker={"size": 5},
                    hovertemplate=(f"{label(hue)}: {group}<br>{set_name}<br>{plan['xlabel']}: %{{x}}"
                                   f"<br>{ylabel}: %{{y:.4g}}<extra></extra>")), row=1, col=column)
        fig.update_yaxes(title_text=ylabel, row=1, col=column)
        fig.update_xaxes(title_text=plan["xlabel"], row=1, col=column)
    if x == "epoch":
        fig.update_xaxes(tickformat="d", dtick=max(1, int(np.ceil(history[x].max() / 10))))
    fig.update_layout(
        title=title, template="plotly_white", hovermode="closest", font={"size": 12},
        legend={"title": {"text": label(hue)}, "groupclick": "togglegroup"},
        height=int(height * figure.CSS_DPI) + 80 + (40 if title else 0),
        margin={"l": 60, "r": 20, "t": 40 + (40 if title else 0), "b": 50})
    return fig


class Interactive:
    """A Plotly figure as a notebook output: HTML without plotly.js (for myst-nb and the book,
    which serves plotly.js once from `_static`) and the Plotly JSON (for JupyterLab)."""

    def __init__(self, fig):
        self.fig = fig

    def html(self) -> str:
        return self.fig.to_html(full_html=False, include_plotlyjs=False, config=CONFIG)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        title = self.fig.layout.title.text or "interactive figure"
        return {"text/html": self.html(), PLOTLY_MIME: json.loads(self.fig.to_json()),
                "text/plain": f"<Plotly figure: {title}, {len(self.fig.data)} traces>"}


def show(fig) -> None:
    """Display `fig` in a notebook as `Interactive(fig)` does (for a figure that is not the
    cell's last expression)."""
    from IPython.display import display

    display(Interactive(fig))
