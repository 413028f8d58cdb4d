"""Interactive (Plotly) twins of the learning curves, and the Sphinx extension that serves plotly.js."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from dlcourse import sphinx_plotly
from dlcourse.plots import curves, interactive


def _frame() -> pd.DataFrame:
    """Two optimizers × three seeds × five epochs at two widths, as `runs.histories` gives them."""
    rng = np.random.default_rng(0)
    rows = []
    for width in (64, 128):
        for label in ("sgd lr=0.1", "adam lr=0.001"):
            for seed in range(3):
                for epoch in range(1, 6):
                    rows.append({"label": label, "width": width, "seed": seed, "epoch": epoch,
                                 "train_loss": 2 / epoch + rng.random() / 10,
                                 "val_loss": 2.2 / epoch + rng.random() / 10,
                                 "val_acc": 1 - 0.5 / epoch})
    return pd.DataFrame(rows)


def _lines(fig):
    return [t for t in fig.data if t.fill != "toself"]


def test_one_line_per_run_and_panel_with_the_mean_and_a_hover_that_names_it():
    frame = _frame().query("width == 64")
    fig = interactive.metric_curves(frame, metrics=("train_loss", "val_loss"), title="optimizers")
    lines = _lines(fig)
    # one panel per metric, one line per label in first-seen order (as seaborn), each listed once in the legend
    assert [(t.name, t.xaxis) for t in lines] == [("sgd lr=0.1", "x"), ("adam lr=0.001", "x"),
                                                   ("sgd lr=0.1", "x2"), ("adam lr=0.001", "x2")]
    assert [t.showlegend for t in lines] == [True, True, False, False]
    assert all(t.legendgroup == t.name for t in fig.data)  # a legend click toggles the run in every panel
    assert fig.layout.legend.groupclick == "togglegroup"
    names = {"train_loss": "training loss", "val_loss": "validation loss"}
    for trace, metric in zip(lines, ("train_loss", "train_loss", "val_loss", "val_loss")):
        expected = frame[frame["label"] == trace.name].groupby("epoch")[metric].mean()
        assert list(trace.x) == expected.index.tolist()
        assert np.allclose(trace.y, expected.to_numpy())
        assert list(trace.customdata) == [3] * 5  # three seeds behind each point
        assert trace.hovertemplate == (f"label: {trace.name}<br>epoch: %{{x}}<br>{names[metric]}: %{{y:.4g}}"
                                       "<br>mean of %{customdata} runs<extra></extra>")
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 4 and all(t.hoverinfo == "skip" and not t.showlegend for t in bands)
    assert fig.layout.title.text == "optimizers"
    assert [a.text for a in fig.layout.annotations] == ["training loss", "validation loss"]


def test_same_colours_panels_and_labels_as_the_static_figure():
    frame = _frame()
    kwargs = dict(metrics=("train_loss", "val_acc"), col="width", logy=["train_loss"],
                  xlabel="epoch (pass over the data)")
    grid = curves.metric_curves(frame, **kwargs)
    static = {t.get_text(): h.get_color() for t, h in zip(grid.legend.texts, grid.legend.legend_handles)}
    fig = interactive.metric_curves(frame, **kwargs)
    lines = _lines(fig)
    assert {t.name: t.line.color for t in lines} == {name: _hex(colour) for name, colour in static.items()}
    # rows = metrics, columns = widths (numbers sorted), every panel titled
    assert [a.text for a in fig.layout.annotations] == ["width = 64", "width = 128"] * 2
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    assert fig.layout.yaxis3.type in (None, "linear")
    assert fig.layout.yaxis.title.text == "training loss" and fig.layout.yaxis3.title.text == "validation accuracy"
    assert not fig.layout.yaxis2.title.text  # the row shares its y axis
    assert fig.layout.xaxis3.title.text == "epoch (pass over the data)" and not fig.layout.xaxis.title.text
    assert len(lines) == 2 * 2 * 2


def _hex(colour) -> str:
    from matplotlib.colors import to_hex

    return to_hex(colour)


def test_a_numeric_hue_is_ordered_by_value_and_categorical_keeps_first_seen_order():
    frame = _frame().query("label == 'sgd lr=0.1' and width == 64")
    frame = frame.assign(batch=frame["seed"].map({0: 256, 1: 16, 2: 64}))
    ramp = _lines(interactive.metric_curves(frame, metrics=("train_loss",), hue="batch"))
    assert [t.name for t in ramp] == ["16", "64", "256"]
    assert len({t.line.color for t in ramp}) == 3
    listed = _lines(interactive.metric_curves(frame, metrics=("train_loss",), hue="batch", categorical=True))
    assert [t.name for t in listed] == ["256", "16", "64"]
    assert "mean of" not in listed[0].hovertemplate  # one run per point: no mean to mention
    assert listed[0].mode == "lines+markers"


def test_no_metric_in_the_frame_is_an_error():
    with pytest.raises(ValueError, match="none of the metrics is in the frame"):
        interactive.metric_curves(_frame(), metrics=("test_acc",))


def test_the_notebook_output_carries_the_figure_but_not_plotly_js():
    fig = interactive.metric_curves(_frame().query("width == 64"))
    bundle = interactive.Interactive(fig)._repr_mimebundle_()
    html = bundle["text/html"]
    assert 'class="plotly-graph-div"' in html and "Plotly.newPlot" in html
    assert len(html) < 100_000 < sphinx_plotly.plotly_source().stat().st_size  # plotly.js is not inlined
    assert "<script src" not in html and "cdn.plot.ly" not in html
    # JupyterLab renders the Plotly JSON: the same traces
    assert [t["name"] for t in bundle[interactive.PLOTLY_MIME]["data"]] == [t.name for t in fig.data]
    assert json.dumps(bundle)  # a notebook can store it


# ---------------------------------------------------------------------- the Sphinx extension

def _sphinx_project(folder: Path, figure_html: str) -> Path:
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "conf.py").write_text('extensions = ["dlcourse.sphinx_plotly"]\nproject = "t"\n')
    (folder / "src" / "index.rst").write_text("Figures\n=======\n\n.. toctree::\n\n   plain\n\n.. raw:: html\n\n"
                                              + textwrap.indent(figure_html, "   ") + "\n")
    (folder / "src" / "plain.rst").write_text("Plain\n=====\n\nNo figure here.\n")
    return folder


def _build(folder: Path) -> Path:
    from sphinx.application import Sphinx

    out = folder / "html"
    app = Sphinx(str(folder / "src"), str(folder / "src"), str(out), str(folder / "doctrees"), "html",
                 status=None, warning=None, freshenv=False)
    app.build()
    assert app.statuscode == 0
    return out


@pytest.fixture(scope="module")
def plotly_site(tmp_path_factory):
    """A two-page Sphinx site, one page with an interactive figure, built twice."""
    folder = tmp_path_factory.mktemp("sphinx-plotly")
    fig = interactive.metric_curves(_frame().query("width == 64"), metrics=("train_loss", "val_loss"))
    _sphinx_project(folder, interactive.Interactive(fig).html())
    out = _build(folder)
    script = out / "_static" / sphinx_plotly.SCRIPT
    first = script.stat()
    (folder / "src" / "plain.rst").write_text("Plain\n=====\n\nStill no figure here.\n")  # something to rebuild
    _build(folder)
    return out, first, fig


def test_the_extension_copies_plotly_js_once_and_loads_it_where_a_figure_is(plotly_site):
    out, first, _ = plotly_site
    script = out / "_static" / sphinx_plotly.SCRIPT
    assert script.read_bytes() == sphinx_plotly.plotly_source().read_bytes()
    again = script.stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)  # not copied again
    assert sphinx_plotly.copy_script(out / "_static") is False
    index, plain = (out / "index.html").read_text(), (out / "plain.html").read_text()
    assert index.count(f'src="_static/{sphinx_plotly.SCRIPT}') == 1 and sphinx_plotly.SCRIPT not in plain
    assert index.index(sphinx_plotly.SCRIPT) < index.index("Plotly.newPlot")  # loaded before the figure runs
    assert len(index) < 100_000  # the figure's data only


def test_the_figure_draws_offline_and_hovers_in_a_browser(plotly_site):
    """Chromium, every outside request refused: the figure draws its traces from the site's own
    plotly.js, hovering a point shows its run, and a legend click hides that run."""
    from dlcourse import browser

    if not os.path.exists(browser.CHROMIUM):
        if os.environ.get("DLCOURSE_REQUIRE_BROWSER"):
            pytest.fail(f"DLCOURSE_REQUIRE_BROWSER is set but {browser.CHROMIUM} is missing")
        pytest.skip(f"{browser.CHROMIUM} not found")
    out, _, fig = plotly_site
    with browser.serve(out) as site, browser.launch() as chromium:
        page = chromium.new_page(viewport={"width": 1000, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        browser.offline(page, site)
        page.goto(site + "index.html")
        page.wait_for_selector(".plotly-graph-div .scatterlayer .trace", timeout=20_000)
        drawn = page.eval_on_selector_all(".plotly-graph-div .scatterlayer .trace", "t => t.length")
        assert drawn == len(fig.data)
        # Plotly listens on its drag layer above the points: move the mouse onto the first point
        box = page.locator(".plotly-graph-div .scatterlayer .trace .points path").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_selector(".hoverlayer .hovertext", timeout=5_000)
        hover = page.locator(".hoverlayer .hovertext").first.text_content()
        run = next(t.name for t in _lines(fig) if f"label: {t.name}epoch" in hover)  # the run nearest the mouse
        mean = _frame().query("width == 64 and epoch == 1 and label == @run")["train_loss"].mean()
        assert hover == f"label: {run}epoch: 1training loss: {mean:.4g}mean of 3 runs", hover
        page.locator(".legend .traces").first.click()  # Plotly acts after its double-click delay
        hidden = page.wait_for_function("() => { const h = document.querySelector('.plotly-graph-div').data"
                                        ".filter(t => t.visible === 'legendonly').map(t => t.name);"
                                        " return h.length ? h : null; }", timeout=5_000).json_value()
        assert set(hidden) == {"sgd lr=0.1"} and len(hidden) == 4  # its lines and bands in both panels
        assert not errors, errors


def test_every_page_loads_the_zoom_script_and_the_site_has_it(plotly_site):
    out, _, _ = plotly_site
    assert (out / "_static" / sphinx_plotly.ZOOM).read_text() == sphinx_plotly.ZOOM_SCRIPT
    for page in ("index.html", "plain.html"):
        assert (out / page).read_text().count(f'src="_static/{sphinx_plotly.ZOOM}') == 1, page
