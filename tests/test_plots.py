"""The book's figures are readable in its text column: at most three panels per row, type of
at least 9 pt as displayed, lines that stand out on white; and each is shown once, as a PNG at
twice its displayed resolution, with its interactive twin where it has one."""

from __future__ import annotations

import base64
import struct
from types import SimpleNamespace

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from dlcourse import metrics, plots, search  # noqa: E402
from dlcourse.plots import approximation as ap, curves, figure, landscape, sweep  # noqa: E402

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _history(hue_values=(50, 100, 200), cols=(16, 32, 64, 128, 256), epochs=6, seeds=2) -> pd.DataFrame:
    """Lab 3's grid: a run per hue value, `col` value and seed, one row per epoch."""
    rng = np.random.default_rng(0)
    rows = [{"width": h, "batch_size": c, "seed": s, "epoch": e, "train_loss": 2 / e + rng.random() / 10,
             "val_loss": 2.2 / e + rng.random() / 10, "val_acc": 1 - 0.5 / e}
            for h in hue_values for c in cols for s in range(seeds) for e in range(1, epochs + 1)]
    return pd.DataFrame(rows)


def _runs(n: int = 40) -> pd.DataFrame:
    """A random search's results: one row per run over the search space, with a validation accuracy."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({k: rng.choice(np.array(v, dtype=object), n) for k, v in search.SPACE.items()})
    for k, v in search.SPACE.items():
        if all(isinstance(x, (int, float)) for x in v):
            frame[k] = frame[k].astype(float)
    frame["val_acc"] = rng.uniform(0.1, 0.9, n)
    return frame


def _trajectory(runs: int = 4):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame([{"run": r, "order": i, "pc1": rng.normal(), "pc2": rng.normal()}
                          for r in range(runs) for i in range(8)])
    return SimpleNamespace(frame=frame, explained=[0.4, 0.2], size=101_770)


def _matrix():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 500)
    return metrics.confusion_matrix(y, np.where(rng.random(500) < 0.8, y, rng.integers(0, 10, 500)), CLASSES,
                                    normalize="true")


def _figures() -> dict:
    """Every figure function at the shapes the labs draw, the crowded ones included."""
    history = _history()
    runs = _runs()
    steps = pd.DataFrame([{"label": l, "step": s, "loss": 1 / s, "grad_norm": 1 + 1 / s}
                          for l in ("2 layers", "3 layers") for s in range(1, 200)])
    finals = pd.DataFrame([{"batch_size": b, "batch norm": bn, "train_loss": 1 / b, "val_loss": 1.1 / b,
                            "roughness": 0.1, "sensitivity": 1.0, "test_loss": 1.2 / b, "train_acc": 0.9,
                            "test_acc": 0.8} for b in (16, 64, 256) for bn in ("on", "off")])
    fits = pd.DataFrame([{"function": f, "label": l, "epoch": e, "train_loss": 1 / e}
                         for f in ("sinc", "sign", "sine") for l in ("2 layers", "4 layers") for e in range(1, 20)])
    return {
        "lab 1 curves (numeric hue, two depths)": curves.metric_curves(
            history[history["batch_size"] == 16].assign(depth=1), hue="width", col="depth", logy=True),
        "lab 3 five batch sizes": curves.metric_curves(history, hue="width", col="batch_size"),
        "lab 7 three metrics": curves.metric_curves(history, metrics=["train_loss", "val_loss", "val_acc"],
                                                    hue="width", title="a title of some length for the figure"),
        "wall time": curves.wall_time(history.assign(epoch_seconds=1.0), x="batch_size", y="epoch_seconds",
                                      hue="width", title="Seconds per epoch (epochs 2 and on)"),
        "metric vs params": curves.metric_vs_params(history.assign(params=history["width"] * 100, depth=1,
                                                                   test_acc=0.9)),
        "lab 5 trajectories": ap.trajectories({"whole model": _trajectory(), "first layer": _trajectory(),
                                               "last layer": _trajectory()}),
        "lab 5 loss curves": ap.loss_curves(fits),
        "lab 5 grad norm": ap.loss_and_grad_norm(steps, smooth=5),
        "lab 4 against": landscape.sensitivity_panels(finals.assign(label="mlp")),
        "lab 3 against": landscape.against(finals, x="batch_size", hue="batch norm",
                                           panels={"train (nats)": ["train_loss"], "val (nats)": ["val_loss"],
                                                   "roughness": ["roughness"]}),
        "lab 7 confusion matrices": sweep.confusion_matrices({"relu (test, seed 0)": _matrix(),
                                                              "tanh (test, seed 0)": _matrix()}),
        "lab 8 parallel coordinates": sweep.parallel_coordinates(
            runs, list(search.SPACE), category_orders={k: search.SPACE[k] for k in ("optimizer", "init", "activation")}),
        "lab 8 runs": sweep.runs_scatter(runs, category_orders=search.SPACE),
        "lab 8 importance": sweep.importance_bars(search.importance(runs), search.level_effects(runs)),
        "lab 8 level strip": sweep.level_strip(runs, list(search.SPACE)),
        "lab 8 class samples": sweep.class_samples(np.zeros((20, 28, 28)), np.arange(20) % 10, CLASSES),
    }


@pytest.fixture(scope="module")
def figures():
    made = _figures()
    yield {name: getattr(f, "figure", f) for name, f in made.items()} | {"_made": made}
    plt.close("all")


def _panels_per_row(fig) -> list[int]:
    """Visible panels (colour bars aside) side by side, per row of the figure."""
    rows: dict = {}
    for ax in fig.axes:
        if ax.get_visible() and not hasattr(ax, "_colorbar"):
            rows.setdefault(round(ax.get_position().y0, 2), []).append(ax)
    return [len(v) for v in rows.values()]


def test_at_most_three_panels_side_by_side(figures):
    # the class samples are thumbnails with a one-word title each, not plots: five per row
    rows = {name: _panels_per_row(fig) for name, fig in figures.items() if name not in ("_made", "lab 8 class samples")}
    assert all(max(r) <= figure.MAX_PER_ROW for r in rows.values()), rows
    # lab 3's five batch sizes wrap: two metrics x (3 + 2) panels
    assert sorted(rows["lab 3 five batch sizes"]) == [2, 2, 3, 3]
    assert len(rows["lab 8 level strip"]) == 3


def test_type_is_at_least_9_pt_at_display_size(figures):
    sizes = {name: round(figure.min_font_pt(fig), 2) for name, fig in figures.items() if name != "_made"}
    assert all(size >= figure.MIN_FONT_PT for size in sizes.values()), sizes


def test_figures_fit_the_text_column(figures):
    # a figure wider than the column is shrunk, its type with it: the course's are drawn to fit
    scales = {name: round(figure.display_scale(fig), 2) for name, fig in figures.items() if name != "_made"}
    assert all(s >= 0.9 for s in scales.values()), scales


def test_a_wider_figure_is_shrunk_and_its_type_with_it():
    fig, ax = plt.subplots(figsize=(2 * figure.COLUMN_INCHES, 3))
    ax.set_title("wide", fontsize=12)
    ax.tick_params(labelsize=12)
    scale = figure.display_scale(fig)
    assert scale < 0.7 and scale == pytest.approx(figure.COLUMN_PX / figure.natural_width(fig))
    assert figure.min_font_pt(fig) == pytest.approx(12 * scale)
    plt.close(fig)


def test_every_line_colour_stands_out_on_white(figures):
    assert min(plots.contrast(c) for c in plots.PALETTE) >= plots.MIN_CONTRAST
    assert min(plots.contrast(c) for c in plots.palette(25)) >= plots.MIN_CONTRAST  # past the palette: husl
    assert plots.contrast(plots.RAMP(0.0)) >= plots.MIN_CONTRAST  # the ramp's lightest end
    assert plots.contrast("#fbafe4") < plots.MIN_CONTRAST  # the pale pink lab 1 used to draw
    # lab 1's curves, coloured by a numeric width: every drawn line
    fig = figures["lab 1 curves (numeric hue, two depths)"]
    colours = {line.get_color() for ax in fig.axes for line in ax.get_lines()}
    assert len(colours) >= 3 and min(plots.contrast(c) for c in colours) >= plots.MIN_CONTRAST


def _png_width(data: str) -> int:
    raw = base64.b64decode(data)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", raw[16:20])[0]


def test_a_figure_shows_once_at_twice_its_displayed_resolution(figures):
    made = figures["_made"]
    assert not plt.get_fignums() or all(plt.figure(n) not in [getattr(f, "figure", f) for f in made.values()]
                                        for n in plt.get_fignums())  # closed: the inline backend skips them
    data, meta = made["lab 7 confusion matrices"]._repr_mimebundle_()
    width = meta["image/png"]["width"]
    assert abs(_png_width(data["image/png"]) - 2 * width) <= 2
    assert width <= figure.COLUMN_PX * 1.1
    assert "text/html" not in data  # a static figure: the book shows the PNG


def test_a_figure_says_what_it_shows_in_its_alt_text():
    from dlcourse.sphinx_plotly import FigureAltRenderer

    fig, axes = figure.subplots(1, 2)
    for ax, title in zip(axes.flat, ("depth = 1", "depth = 2")):
        ax.set(title=title, xlabel="epoch", ylabel="training\nloss (nats)")
    assert figure.alt_text(fig) == "training loss (nats) against epoch; panels: depth = 1; depth = 2"
    axes[0, 1].set(title="accuracy", ylabel="accuracy", xlabel="")  # a title that repeats its y label says nothing more
    assert figure.alt_text(fig) == "depth = 1: training loss (nats), accuracy against epoch"
    data, meta = figure.finish(fig)._repr_mimebundle_()
    assert meta["image/png"]["alt"] == figure.alt_text(fig) and figure.alt_text(fig) in data["text/plain"]
    fig.suptitle("Learning curves")
    assert figure.alt_text(fig) == "Learning curves"
    lone, ax = figure.subplots()
    assert figure.alt_text(lone) == "figure"  # nothing to say: a placeholder, which the book test refuses
    plt.close("all")

    # the book's renderer gives the image node that alt text; other outputs are left to myst-nb
    class Renderer:
        def render_image(self, data):
            return [{"uri": "_images/x.png"}]

    png = SimpleNamespace(mime_type="image/png", output_metadata={"image/png": {"alt": "Learning curves"}})
    assert FigureAltRenderer.handle_mime(Renderer(), png, False) == [{"uri": "_images/x.png", "alt": "Learning curves"}]
    plain = SimpleNamespace(mime_type="image/png", output_metadata={"image/png": {"width": 300}})
    assert FigureAltRenderer.handle_mime(Renderer(), plain, False) is None


def test_a_twin_shows_in_html_and_the_static_figure_prints(figures):
    data, meta = figures["_made"]["lab 3 five batch sizes"]._repr_mimebundle_()
    page = data["text/html"]
    assert 'class="plotly-graph-div"' in page and "Plotly.newPlot" in page and "<script src" not in page
    assert page.count('class="dlc-print"') == 1 and "@media print" in page  # the static copy, for paper
    assert "image/png" in data and figure.PLOTLY_MIME in data
    assert len(page) < 400_000, len(page)


def test_the_twin_keeps_a_long_per_step_curve_small():
    from dlcourse.plots import interactive

    steps = pd.DataFrame([{"run": r, "step": s, "loss": 1 / s} for r in ("a", "b") for s in range(1, 5001)])
    fig = interactive.metric_curves(steps, metrics=["loss"], x="step", hue="run")
    assert all(len(t.x) <= interactive.MAX_POINTS + 1 for t in fig.data)
    assert fig.data[0].x[0] == 1 and fig.data[0].x[-1] == 5000  # first and last step kept


def test_the_sweep_twins_share_what_the_static_figures_draw(figures):
    runs = _runs()
    made = figures["_made"]
    scatter = made["lab 8 runs"].twin
    data, orders, _, ylabel = sweep.scatter_inputs(runs, "val_acc", "optimizer", "activation", None, search.SPACE)
    keys = [t for t in scatter.data if t.showlegend is not False]
    runs_drawn = [t for t in scatter.data if t.showlegend is False]
    # the legend: one colour per optimizer, in the space's order, then one grey marker per activation
    assert [t.name for t in keys] == [*map(str, orders["optimizer"]), *map(str, orders["activation"])]
    assert {t.marker.symbol for t in keys[:len(orders["optimizer"])]} == {"circle"}
    assert len({t.marker.symbol for t in keys[len(orders["optimizer"]):]}) == len(orders["activation"])
    # a legend click toggles that optimizer's runs: its key and its runs share a legend group
    assert [t.legendgroup for t in runs_drawn] == [str(v) for v in orders["optimizer"]]
    assert "run %{x}" in runs_drawn[0].hovertemplate and ylabel in runs_drawn[0].hovertemplate
    assert sum(len(t.x) for t in runs_drawn) == len(runs)
    parallel = made["lab 8 parallel coordinates"].twin.data[0]
    static_labels = [t.get_text() for t in figures["lab 8 parallel coordinates"].axes[0].get_xticklabels()]
    assert [d.label for d in parallel.dimensions] == static_labels
    importance = made["lab 8 importance"].twin
    static = figures["lab 8 importance"].axes[0]
    assert list(importance.data[0].y) == [t.get_text() for t in static.get_yticklabels()]


def test_the_function_fits_twin_bands_the_lowest_to_highest_run():
    fits = pd.DataFrame([{"function": f, "label": l, "seed": s, "epoch": e, "train_loss": (1 + s) / e}
                         for f in ("sinc", "sign") for l in ("2 layers", "4 layers") for s in (0, 1)
                         for e in range(1, 6)])
    twin = ap.loss_curves(fits).twin
    bands = [t for t in twin.data if t.fill == "toself"]
    assert len(bands) == 4 and [a.text for a in twin.layout.annotations] == ["function = sinc", "function = sign"]
    # a band is a filled area only: Plotly's default mode would dot its edges in its own colours
    assert all(b.mode == "lines" for b in bands)
    assert list(bands[0].y[:5]) == [2 / e for e in range(1, 6)]  # the highest run, then back along the lowest
    assert list(bands[0].y[5:]) == [1 / e for e in range(5, 0, -1)]
    assert twin.layout.yaxis.type == "log"


def test_the_memorization_twin_draws_each_run_on_both_sets():
    history = pd.DataFrame([{"labels": l, "seed": s, "epoch": e, "train_loss": 1 / e, "val_loss": 1 + e / 10,
                             "train_acc": 1 - 1 / (e + 1), "val_acc": 0.1}
                            for l in ("true", "random") for s in (0, 1) for e in range(1, 5)])
    made = landscape.train_vs_heldout(history, hue="labels", held_out_name="held-out (true labels)")
    twin = made.twin
    assert [t.name for t in twin.data[:4]] == ["true, training", "true, held-out (true labels)",
                                               "random, training", "random, held-out (true labels)"]
    assert {t.legendgroup for t in twin.data} == {"true", "random"} and twin.layout.legend.groupclick == "togglegroup"
    assert [t.line.dash for t in twin.data[:2]] == ["solid", "dash"]
    static = {line.get_label(): line.get_color() for line in made.axes[1].get_legend().get_lines()}
    assert twin.data[0].line.color == static["true"]  # the static figure's colour for the run
    assert twin.layout.yaxis.title.text == landscape.LOSS_AXIS and twin.layout.yaxis2.title.text == landscape.ACC_AXIS


def test_a_log_axis_band_spans_the_runs_and_a_wide_one_ticks_only_powers_of_ten():
    """A ± sd band of losses spread over decades reaches below zero, which a log axis cannot draw
    (it showed as tall stripes): there the band runs from the lowest to the highest run, in both
    figures; over more than two decades the ticks are the powers of ten alone."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame([{"label": name, "seed": s, "epoch": e, "train_loss": np.exp(-rate * e) * rng.uniform(0.1, 10)}
                          for name, rate in (("fast", 0.8), ("slow", 0.2)) for s in range(3) for e in range(1, 21)])
    grid = curves.metric_curves(frame, metrics=["train_loss"], logy=True)
    ax = grid.axes[0, 0]
    lows = [path.vertices[:, 1].min() for band in ax.collections for path in band.get_paths()]
    per_epoch = frame.groupby(["label", "epoch"])["train_loss"]
    assert lows and min(lows) > 0 and np.isclose(min(lows), per_epoch.min().min())
    low, high = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if low <= t <= high]
    assert len(ticks) >= 2 and all(np.isclose(np.log10(t), round(np.log10(t))) for t in ticks)
    twin = plots.interactive.metric_curves(frame, metrics=["train_loss"], logy=True)
    bands = [t for t in twin.data if t.fill == "toself"]
    assert bands and min(min(t.y) for t in bands) > 0
    # the twin ticks where the static figure does, labelled as plain numbers or powers of ten
    values = list(twin.layout.yaxis.tickvals)
    assert values and all(np.isclose(np.log10(v), round(np.log10(v))) for v in values)
    assert list(twin.layout.yaxis.ticktext) == [curves.log_label(v) for v in values]
    assert curves.log_ticks(0.09, 2.3) == [0.1, 0.2, 0.5, 1.0, 2.0]  # two decades: 1-2-5
    assert [curves.log_label(v) for v in (1e-6, 0.001, 0.2, 2e-5)] == ["10<sup>-6</sup>", "0.001", "0.2",
                                                                       "2×10<sup>-5</sup>"]
    plt.close("all")
