"""Sphinx extension: the book serves its own MathJax, so formulas render without internet.

Sphinx loads MathJax from a CDN by default; a reader offline (or the course's CI, or a
classroom behind a firewall) then sees raw ``\\( ... \\)``. The pip package
``jupyter-server-mathjax`` ships MathJax 2.7 with its fonts; this extension copies it into the
built site's ``_static/mathjax`` and points ``mathjax_path`` there. Without that package the
CDN default stays and a warning says why.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)
TARGET = "mathjax"
ENTRY = f"{TARGET}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"


def mathjax_source() -> Path | None:
    """The MathJax folder of the installed jupyter-server-mathjax, or None."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        return None
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    return static if (static / "MathJax.js").is_file() else None


def _use_local(app: Sphinx, config) -> None:
    if mathjax_source() is None:
        logger.warning("jupyter-server-mathjax is not installed: formulas load MathJax from its CDN "
                       "and stay raw offline (pip install jupyter-server-mathjax)")
        return
    config.mathjax_path = ENTRY
    # Sphinx marks the page body tex2jax_ignore and each formula class="math"; MyST tells
    # MathJax 3 which classes to process, MathJax 2 needs the same through its tex2jax settings.
    classes = getattr(config, "myst_mathjax_classes", None) or "tex2jax_process|mathjax_process|math|output_area"
    config.mathjax2_config = {"tex2jax": {"processClass": classes,
                                          "inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                                          "processEscapes": True, "processEnvironments": True},
                              # the package ships only the STIX-Web fonts (as Jupyter configures it)
                              "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web",
                                           "imageFont": None},
                              "SVG": {"font": "STIX-Web"}}


def _copy(app: Sphinx, exception) -> None:
    source = mathjax_source()
    if exception is not None or source is None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / TARGET
    if not (target / "MathJax.js").is_file():  # 600 files; copied once per output folder
        shutil.copytree(source, target, dirs_exist_ok=True)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _use_local)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
