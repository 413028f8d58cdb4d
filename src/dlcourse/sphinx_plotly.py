"""Sphinx extension: the book serves plotly.js itself, once for the whole site, opens any
figure at full resolution on click, and gives every figure its alt text (`FigureAltRenderer`).

The interactive figures (`dlcourse.plots.interactive`) are written without plotly.js
(`include_plotlyjs=False`), since inlining it would add 4.8 MB to every figure. This extension
copies `plotly.min.js` from the installed plotly package into the built site's `_static` (once:
an up-to-date copy is left alone) and adds a `<script>` for it to each page that holds a
Plotly figure, so a page without one does not load it and the browser fetches it once for the
site. It loads before any require.js a page may carry (lower priority number), so that
plotly.js defines the global `Plotly` the figures call rather than an AMD module.

Figures are drawn at twice their displayed resolution (`dlcourse.plots.figure`) and shrunk to
the text column; `ZOOM_SCRIPT` (written as `_static/figure-zoom.js`, loaded on every page) shows
a clicked figure at its full size in an overlay that a click or Escape closes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx

from .vocabulary import PLOTLY_MIME

SCRIPT = "plotly.min.js"
FIGURE_CLASS = 'class="plotly-graph-div"'
PRIORITY = 200  # before Sphinx's default 500 and myst-nb's require.js
ZOOM = "figure-zoom.js"
ZOOM_SCRIPT = """// Click a figure to see it at full resolution; a click or Escape closes it (dlcourse.sphinx_plotly).
(() => {
  const css = ".dlc-zoomable{cursor:zoom-in}"
    + ".dlc-zoom{position:fixed;inset:0;z-index:2000;overflow:auto;background:rgba(255,255,255,.97);cursor:zoom-out}"
    + ".dlc-zoom img{display:block;margin:1rem auto;max-width:none!important;height:auto}"
    + "@media print{.dlc-zoom{display:none!important}}";
  function close() { document.querySelectorAll(".dlc-zoom").forEach(z => z.remove()); }
  function open(img) {
    close();
    const overlay = document.createElement("div");
    overlay.className = "dlc-zoom";
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-label", "figure at full resolution (click or Escape to close)");
    const big = document.createElement("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    big.style.width = img.naturalWidth + "px";
    overlay.appendChild(big);
    overlay.addEventListener("click", close);
    document.body.appendChild(overlay);
  }
  function setup() {
    const style = document.createElement("style");
    style.textContent = css;
    document.head.appendChild(style);
    document.querySelectorAll("article .cell_output img:not(.dlc-print), article figure img").forEach(img => {
      img.classList.add("dlc-zoomable");
      // Sphinx links a sized image to its file: open it here instead of leaving the page
      img.addEventListener("click", e => { e.preventDefault(); open(img); });
    });
    document.addEventListener("keydown", e => { if (e.key === "Escape") close(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup); else setup();
})();
"""


def plotly_source() -> Path:
    """plotly.min.js of the installed plotly package (the version its `to_html` writes for)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / SCRIPT


def copy_script(static: Path) -> bool:
    """Copy plotly.min.js into `static` unless an identical copy is there; True if it copied."""
    source, target = plotly_source(), Path(static) / SCRIPT
    if target.is_file():
        have, want = target.stat(), source.stat()
        if have.st_size == want.st_size and have.st_mtime_ns == want.st_mtime_ns:
            return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)  # keeps the source's mtime: the next build sees an up-to-date copy
    return True


def _add_to_figure_pages(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if FIGURE_CLASS in (context.get("body") or ""):
        app.add_js_file(SCRIPT, priority=PRIORITY)  # for this page only (Sphinx resets per page)


def write_zoom(static: Path) -> None:
    """Write the zoom script into `static` unless it is there already, unchanged."""
    target = Path(static) / ZOOM
    if not target.is_file() or target.read_text() != ZOOM_SCRIPT:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(ZOOM_SCRIPT)


def _copy(app: Sphinx, exception) -> None:
    if exception is None and app.builder.format == "html":
        copy_script(Path(app.outdir) / "_static")
        write_zoom(Path(app.outdir) / "_static")


class PlotlyJsonRenderer:
    """myst-nb mime renderer (entry point `myst_nb.mime_renderers` in pyproject.toml): a twin's
    notebook output also carries the Plotly JSON, which JupyterLab draws; the book shows the
    output's HTML. myst-nb renders every type of a bundle before choosing one and has no renderer
    for this one, so without this it warns once per figure; other unknown types still warn."""

    mime_priority_overrides = [("*", PLOTLY_MIME, None)]  # never the type chosen

    @staticmethod
    def handle_mime(renderer, data, inline: bool):
        return [] if data.mime_type == PLOTLY_MIME else None


class FigureAltRenderer:
    """myst-nb mime renderer (entry point `myst_nb.mime_renderers` in pyproject.toml): a course
    figure's PNG carries its alt text in the output's metadata (`plots.figure.alt_text`), but
    myst-nb keeps only the width and height from it, so the image's alt text would be its file
    path. This renders the PNG as myst-nb does and gives it the figure's alt text."""

    mime_priority_overrides = ()

    @staticmethod
    def handle_mime(renderer, data, inline: bool):
        alt = data.output_metadata.get(data.mime_type, {}).get("alt")
        if inline or data.mime_type != "image/png" or not alt:
            return None
        nodes = renderer.render_image(data)
        for node in nodes:
            node["alt"] = str(alt)
        return nodes


def setup(app: Sphinx) -> dict:
    app.add_js_file(ZOOM)  # every page: any page may show a figure
    app.connect("html-page-context", _add_to_figure_pages)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
