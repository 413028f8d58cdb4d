"""Interactive (Plotly) twins of the search's summary figures: every run, parallel coordinates
and importance. Each takes what its static figure's `*_inputs` in `plots.sweep` decided (the
runs, orders, labels, colours), so the two figures cannot drift apart; `plots.sweep` attaches
them to its figures, which the book shows as the twin (`plots.figure`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from . import palette
from .interactive import wrap

SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "triangle-down", "star")


def _layout(fig, title: str | None, height: int) -> None:
    fig.update_layout(title=title, template="plotly_white", hovermode="closest", font={"size": 12},
                      height=height + (40 if title else 0), margin={"l": 60, "r": 20, "t": 40 + (40 if title else 0),
                                                                     "b": 50})


def runs_scatter(data: pd.DataFrame, y: str, hue: str, style: str | None, orders: dict, xlabel: str,
                 ylabel: str, chance: float | None, title: str | None):
    """One point per run; hovering names the run, its `hue` and `style` values and its `y`;
    a legend click toggles a `hue` value's runs."""
    import plotly.graph_objects as go

    colours = dict(zip(orders[hue], palette(len(orders[hue]))))
    symbols = {v: SYMBOLS[i % len(SYMBOLS)] for i, v in enumerate(orders.get(style, []))} if style else {}
    fig = go.Figure()
    # the legend keys the colours (a circle each) and then the markers (grey): a data trace's
    # own legend entry would show the marker of its first run
    for h in orders[hue]:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=str(h), legendgroup=str(h),
                                 legendgrouptitle={"text": hue} if h == orders[hue][0] else None,
                                 marker={"color": colours[h], "size": 8, "symbol": "circle"}))
    for v, symbol in symbols.items():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=str(v), legendgroup=f"{style}={v}",
                                 legendgrouptitle={"text": style} if v == next(iter(symbols)) else None,
                                 marker={"color": "grey", "size": 8, "symbol": symbol}, hoverinfo="skip"))
    for h in orders[hue]:
        part = data[data[hue] == h]
        extra = [hue] + ([style] if style else [])
        fig.add_trace(go.Scatter(
            x=part["run"], y=part[y], mode="markers", name=str(h), legendgroup=str(h), showlegend=False,
            marker={"color": colours[h], "size": 8,
                    "symbol": [symbols[v] for v in part[style]] if style else "circle"},
            customdata=part[extra].astype(str).to_numpy(),
            hovertemplate=(f"run %{{x}}<br>{hue}: %{{customdata[0]}}"
                           + (f"<br>{style}: %{{customdata[1]}}" if style else "")
                           + f"<br>{ylabel}: %{{y:.4f}}<extra></extra>")))
    if chance is not None:
        fig.add_hline(y=chance, line={"dash": "dash", "color": "grey", "width": 1},
                      annotation_text="chance", annotation_position="bottom right")
    fig.update_xaxes(title_text=xlabel)
    fig.update_yaxes(title_text=ylabel)
    fig.update_layout(legend={"groupclick": "togglegroup", "tracegroupgap": 4})
    _layout(fig, title, 380)
    return fig


def parallel_coordinates(data: pd.DataFrame, columns: Sequence, target: str, cmap: str, title: str | None):
    """Plotly's parallel coordinates: one axis per column of `plots.sweep.parallel_inputs`, lines
    coloured by `target`; dragging along an axis selects the runs in a range."""
    import plotly.graph_objects as go

    dimensions = [{"label": name, "values": pos, "tickvals": list(ticks), "ticktext": list(labels),
                   "range": [-0.05, 1.05]} for name, pos, ticks, labels in columns]
    fig = go.Figure(go.Parcoords(
        line={"color": data[target].to_numpy(dtype=float), "colorscale": cmap.capitalize(), "showscale": True,
              "colorbar": {"title": {"text": wrap(columns[-1][0], 12)}}},
        # small tick labels: ten axes share the text column, and a long value ("xavier_normal")
        # at 12 px ran over its neighbour's
        dimensions=dimensions, labelangle=-20, labelside="bottom", tickfont={"size": 10}))
    _layout(fig, title, 420)
    fig.update_layout(margin={"l": 40, "r": 40, "t": 60 + (40 if title else 0), "b": 70})
    return fig


def importance_bars(plan: dict, title: str | None):
    """The two bar panels of `plots.sweep.importance_bars`, with each bar's value on hover."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    imp, eff = plan["importance"], plan["effects"]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.22)
    fig.add_trace(go.Bar(x=imp["importance"], y=imp["hyperparameter"], orientation="h", name="importance",
                         marker_color=plan["bar"], showlegend=False,
                         hovertemplate="%{y}: eta² = %{x:.3f}<extra></extra>"), row=1, col=1)
    if "chance" in imp.columns:
        fig.add_trace(go.Scatter(x=imp["chance"], y=imp["hyperparameter"], mode="markers", name="chance level",
                                 marker={"symbol": "line-ns-open", "size": 18, "color": "black"},
                                 hovertemplate="%{y}: chance level %{x:.3f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=eff["correlation"], y=eff["label"], orientation="h", name="correlation",
                         marker_color=plan["colours"], showlegend=False,
                         hovertemplate="%{y}: r = %{x:.3f}<extra></extra>"), row=1, col=2)
    # the x titles wrapped to their panel's width; the right panel's y title left out (its
    # "name=value" ticks say it, and the title ran into the left panel's bars)
    for column, (xlabel, ylabel) in enumerate(zip(plan["xlabels"], plan["ylabels"]), start=1):
        fig.update_xaxes(title_text=wrap(xlabel, 34), row=1, col=column)
        fig.update_yaxes(title_text=ylabel if column == 1 else None, autorange="reversed", row=1, col=column)
    _layout(fig, title, max(320, int(18 * len(eff)) + 120))
    # the legend ("chance level") right above the left panel: below it ran into the wrapped x titles
    fig.update_layout(legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1, "yanchor": "bottom"})
    return fig


__all__ = ["runs_scatter", "parallel_coordinates", "importance_bars"]
