"""Interactive (Plotly) twins of the course's figures, for the HTML book and JupyterLab.

`metric_curves` takes the same long frame and the same arguments as `plots.curves.metric_curves`
(what is plotted, labels, orders, log axes) and returns a Plotly figure: hovering a point shows
the run, the epoch and the value; clicking a legend entry hides or shows that run in every panel.
The seaborn figure stays the one for print, PDF and nbval.

`Interactive(fig)` (or `show(fig)`) is what a notebook cell outputs. Its HTML is the figure
without plotly.js (`to_html(full_html=False, include_plotlyjs=False)`): the book loads
plotly.js once per site from `_static` (the `dlcourse.sphinx_plotly` extension), never inlined
per figure. myst-nb renders that HTML; JupyterLab renders the Plotly JSON beside it instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import Normalize, to_hex

from . import label
from .curves import curve_inputs

PLOTLY_MIME = "application/vnd.plotly.v1+json"
#: Browser options of every figure: resize with the page, no Plotly logo in the toolbar.
CONFIG = {"responsive": True, "displaylogo": False}
PIXELS_PER_INCH = 96


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _order(values: pd.Series) -> list:
    """seaborn's order of a column's values: its categories, else numbers sorted, else first appearance."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.cat.categories)
    unique = [v for v in pd.unique(values) if pd.notna(v)]
    return sorted(unique) if _numeric(values) else unique


def _colours(values: pd.Series, levels: list) -> dict:
    """The colour seaborn gives each hue level: the course's palette for categories (husl past its
    length), seaborn's default cubehelix ramp for a numeric hue."""
    if _numeric(values):
        cmap = sns.color_palette("ch:", as_cmap=True)
        norm = Normalize(min(levels), max(levels))
        return {v: to_hex(cmap(norm(v))) for v in levels}
    n = len(levels)
    palette = sns.color_palette(None, n) if n <= len(sns.color_palette()) else sns.color_palette("husl", n)
    return {v: to_hex(c) for v, c in zip(levels, palette)}


def _name(value) -> str:
    return format(value) if not isinstance(value, float) else f"{value:g}"


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
    """The interactive twin of `plots.curves.metric_curves` (same arguments, same panels, orders,
    colours and labels): one row per metric, one column per value of `col` (or one panel per
    metric when `col` is None), one line per value of `hue`. Where several rows share a hue value
    and x in a panel (seeds, say), the line is their mean and the band ± one standard deviation,
    as on the static figure.
    """
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    frame, metrics, ylabels, log_metrics = curve_inputs(frame, metrics, hue, ylabels, logy, categorical)
    xlabel = xlabel or label(x)
    hues = _order(frame[hue])
    colours = _colours(frame[hue], hues)
    many = frame[x].nunique() >= 15

    if col is None:
        panels = [(1, j + 1, m, frame) for j, m in enumerate(metrics)]
        shape, titles, shared = (1, len(metrics)), [ylabels[m] for m in metrics], False
    else:
        values = _order(frame[col])
        panels = [(i + 1, j + 1, m, frame[frame[col] == v])
                  for i, m in enumerate(metrics) for j, v in enumerate(values)]
        shape = (len(metrics), len(values))
        titles = [f"{col} = {_name(v)}" if i == 0 else "" for i in range(len(metrics)) for v in values]
        shared = {"row": "rows", True: "all", "all": "all", "col": "columns"}.get(sharey, False)
    fig = make_subplots(rows=shape[0], cols=shape[1], subplot_titles=titles, shared_yaxes=shared,
                        horizontal_spacing=0.08 if shared else 0.12, vertical_spacing=0.12)

    shown = set()
    for row, column, metric, part in panels:
        ylabel = ylabels[metric]
        for h in hues:
            points = part.loc[part[hue] == h, [x, metric]].dropna()
            if points.empty:
                continue
            stats = points.groupby(x, sort=True)[metric].agg(["mean", "std", "count"])
            group = _name(h)
            several = bool((stats["count"] > 1).any())
            template = (f"{label(hue)}: {group}<br>{xlabel}: %{{x}}<br>{ylabel}: %{{y:.4g}}"
                        + ("<br>mean of %{customdata} runs" if several else "") + "<extra></extra>")
            if several:  # the band first, so the line draws over it
                half = stats["std"].fillna(0.0)
                fig.add_trace(go.Scatter(
                    x=list(stats.index) + list(stats.index[::-1]),
                    y=list(stats["mean"] + half) + list((stats["mean"] - half)[::-1]),
                    fill="toself", fillcolor=colours[h], opacity=0.2, line={"width": 0}, hoverinfo="skip",
                    legendgroup=group, showlegend=False, name=group), row=row, col=column)
            fig.add_trace(go.Scatter(
                x=stats.index.tolist(), y=stats["mean"].tolist(), customdata=stats["count"].tolist(),
                mode="lines" if many else "lines+markers", name=group, legendgroup=group,
                showlegend=group not in shown, line={"color": colours[h], "width": 2}, marker={"size": 6},
                hovertemplate=template), row=row, col=column)
            shown.add(group)
        if column == 1 or col is None:
            fig.update_yaxes(title_text=ylabel, row=row, col=column)
        if metric in log_metrics:
            fig.update_yaxes(type="log", row=row, col=column)
        if row == shape[0]:
            fig.update_xaxes(title_text=xlabel, row=row, col=column)
    if logx:
        fig.update_xaxes(type="log")
    if x == "epoch":  # whole epochs only, as on the static figure
        fig.update_xaxes(tickformat="d", dtick=max(1, int(np.ceil(frame[x].max() / 10))))
    fig.update_layout(
        title=title, template="plotly_white", hovermode="closest",
        legend={"title": {"text": label(hue)}, "groupclick": "togglegroup"},
        height=int(shape[0] * height * PIXELS_PER_INCH) + 80 + (40 if title else 0),
        margin={"l": 60, "r": 20, "t": 50 + (40 if title else 0), "b": 50})
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
