"""The course's figure: sized for the book's text column, shown at twice its resolution, and
carrying its interactive twin where it has one.

The book's text column is `COLUMN_PX` CSS pixels wide; at `CSS_DPI` (matplotlib's dpi here, set
by `plots.style`) a figure `COLUMN_INCHES` wide fills it at scale 1, so its type shows at the
size it was set in. A wider figure is shrunk to the column, and its type with it
(`display_scale`); `min_font_pt` is the smallest type as a reader sees it.

`CourseFigure` is a matplotlib Figure that a notebook cell shows by ending with it (no
`plt.show()`): the plot function closes it, so the inline backend does not draw it a second
time. Its output is a PNG at twice the displayed resolution (a click opens it at full size, see
`dlcourse.sphinx_plotly`) and, when a Plotly twin is attached, HTML holding the twin for the
screen and the static figure for print: the book (myst-nb prefers HTML) shows the interactive
figure, while print, the PDF and nbval keep the static one.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from ..vocabulary import PLOTLY_MIME

COLUMN_PX = 784  # the text column of the book's pages (sphinx-book-theme), in CSS pixels
CSS_DPI = 96  # CSS pixels per inch
COLUMN_INCHES = COLUMN_PX / CSS_DPI
MAX_PER_ROW = 3  # panels side by side; more wrap into further rows
MIN_FONT_PT = 9.0  # the smallest type a reader should see, at display size
SMALL_FONT_PT = 9.5  # the type of numbers written inside a figure (matrix cells, axis values)
PNG_DPI = 2 * CSS_DPI  # the notebook's and the book's PNG: sharp on a high-density screen, and on click
PRINT_DPI = 110  # the copy inside the HTML, for print only: small, since every byte is in the page
PAD_INCHES = 0.05  # white margin around the cut PNG
FIGURE_INCHES = COLUMN_INCHES - 2 * PAD_INCHES  # a full-width figure: with its margin, the column

#: On screen the twin once plotly.js is there (the book loads it before the page's body), else
#: (JupyterLab's HTML, an untrusted notebook, a page without the script) the static figure; on
#: paper always the static figure.
STYLE = ("<style>.dlc-figure.dlc-live .dlc-print,.dlc-figure:not(.dlc-live) .dlc-screen{display:none}"
         ".dlc-figure .dlc-print{max-width:100%;height:auto}"
         "@media print{.dlc-figure .dlc-print{display:block!important}"
         ".dlc-figure .dlc-screen{display:none!important}}</style>")
LIVE = ("<script>(function (f) { if (window.Plotly) f.classList.add('dlc-live'); })"
        "(document.currentScript.parentNode);</script>")


def grid_shape(n: int, per_row: int = MAX_PER_ROW) -> tuple[int, int]:
    """(rows, columns) of `n` panels, at most `per_row` side by side."""
    if n < 1:
        raise ValueError(f"n={n} is not valid; a figure needs at least one panel")
    cols = min(n, per_row)
    return -(-n // cols), cols


class CourseFigure(Figure):
    """A matplotlib Figure that shows itself as the book wants it (see the module docstring)."""

    _twin_factory: Callable | None = None
    _twin = None

    def attach_twin(self, factory: Callable) -> None:
        """Give the figure its interactive twin: `factory()` builds the Plotly figure when first asked."""
        self._twin_factory, self._twin = factory, None

    @property
    def twin(self):
        """The Plotly twin, or None for a static-only figure."""
        if self._twin is None and self._twin_factory is not None:
            self._twin = self._twin_factory()
        return self._twin

    def png(self, dpi: float = PNG_DPI) -> bytes:
        """The figure as a PNG of 256 colours (a fifth of the bytes of matplotlib's, for a figure
        of lines and text on white)."""
        return _small_png(self._image(dpi))

    def _image(self, dpi: float):
        from PIL import Image

        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=PAD_INCHES, facecolor="white")
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")

    def _repr_mimebundle_(self, include=None, exclude=None):
        image = self._image(PNG_DPI)  # drawn once: the print copy is this image, scaled down
        width = round(image.width * CSS_DPI / PNG_DPI)
        data = {"image/png": base64.b64encode(_small_png(image)).decode("ascii"),
                "text/plain": f"<figure: {alt_text(self)}>"}
        twin = self.twin
        if twin is not None:
            from PIL import Image

            from .interactive import Interactive

            scale = PRINT_DPI / PNG_DPI
            printed = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
            printed = base64.b64encode(_small_png(printed)).decode("ascii")
            alt = html.escape(alt_text(self))
            data["text/html"] = (f'<div class="dlc-figure">{STYLE}{LIVE}<div class="dlc-screen">'
                                 f"{Interactive(twin).html()}</div>"
                                 f'<img class="dlc-print" alt="{alt}" width="{min(width, COLUMN_PX)}" '
                                 f'src="data:image/png;base64,{printed}"></div>')
            data[PLOTLY_MIME] = json.loads(twin.to_json())
        # "alt": the book's image text (`sphinx_plotly.FigureAltRenderer`), not the file's path
        return data, {"image/png": {"width": width, "alt": alt_text(self)}}


def _small_png(image) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    image.quantize(256, method=Image.Quantize.FASTOCTREE).save(out, "PNG", optimize=True)
    return out.getvalue()


def alt_text(fig: Figure) -> str:
    """What the figure shows, in words, for a reader who cannot see it: its title; without one,
    what its panels plot against what, and the titles of its panels that say more."""
    def words(text: str) -> str:
        return " ".join(text.split())

    def unique(texts) -> list[str]:
        return list(dict.fromkeys(words(t) for t in texts if t))

    if fig._suptitle is not None and fig._suptitle.get_text():
        return words(fig._suptitle.get_text())
    ys, xs = unique(ax.get_ylabel() for ax in fig.axes), unique(ax.get_xlabel() for ax in fig.axes)
    titles = [t for t in unique(ax.get_title() for ax in fig.axes) if t not in ys]
    plotted = f"{', '.join(ys)} against {', '.join(xs)}" if ys and xs else ""
    if len(titles) == 1 and plotted:
        return f"{titles[0]}: {plotted}"
    if titles and plotted:
        return f"{plotted}; panels: {'; '.join(titles)}"
    return plotted or "; ".join(titles) or "figure"


def subplots(nrows: int = 1, ncols: int = 1, row_height: float = 2.6, width: float | None = None,
             **kwargs) -> tuple[CourseFigure, np.ndarray]:
    """A `CourseFigure` with a 2-D array of axes, as wide as the text column (a single panel:
    two thirds of it), laid out by matplotlib's constrained layout so nothing overlaps."""
    if width is None:
        width = FIGURE_INCHES if ncols > 1 else 0.7 * COLUMN_INCHES
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, row_height * nrows), squeeze=False,
                             FigureClass=CourseFigure, layout="constrained", **kwargs)
    return fig, axes


def finish(fig: CourseFigure, twin: Callable | None = None) -> CourseFigure:
    """Close `fig` for pyplot (the cell's output shows it, once) and attach its twin, if any."""
    if twin is not None:
        fig.attach_twin(twin)
    _own_output()
    plt.close(fig)
    FigureCanvasAgg(fig)  # pyplot left it a bare canvas; drawing and measuring need a renderer
    return fig


def _own_output() -> None:
    """In IPython, let `CourseFigure._repr_mimebundle_` alone decide the figure's output: the
    inline backend registers its own PNG printer for every matplotlib Figure, which would replace
    the 2x PNG with a 1x one (and draw the figure once more); for a CourseFigure it now declines."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        for mime in ("image/png", "image/jpeg", "image/svg+xml", "application/pdf"):
            shell.display_formatter.formatters[mime].for_type(CourseFigure, lambda fig: None)


def hide_unused(axes: np.ndarray, used) -> None:
    """Hide the panels left empty: all but the first `used` (a count), or all but the
    (row, column) positions in `used` (a set)."""
    for index, ax in np.ndenumerate(axes):
        if (index not in used) if isinstance(used, (set, frozenset)) else (index[0] * axes.shape[1] + index[1] >= used):
            ax.set_visible(False)


def natural_width(fig: Figure) -> float:
    """The figure's width on the page before any shrinking, in CSS pixels (its tight bounding box
    and margin, as the PNG is cut)."""
    fig.canvas.draw()
    return (fig.get_tightbbox(fig.canvas.get_renderer()).width + 2 * PAD_INCHES) * CSS_DPI


def display_scale(fig: Figure) -> float:
    """How much the page shrinks the figure to fit the text column (1: not at all)."""
    return min(1.0, COLUMN_PX / natural_width(fig))


def min_font_pt(fig: Figure) -> float:
    """The smallest visible text of the figure, in points as the reader sees it on the page."""
    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and _shown(t)]
    return min(sizes) * display_scale(fig) if sizes else float("inf")


def _shown(text: Text) -> bool:
    """A text whose axes (if any) is visible, drawn inside the figure."""
    ax = text.axes
    return ax is None or ax.get_visible()
