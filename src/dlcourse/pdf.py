"""Print the built book to PDF: `_build/pdf/<lab>.pdf` per lab and `_build/pdf/book.pdf`.

The lab reports were handed in as PDFs. Jupyter Book's own `pdfhtml` builder downloads a
browser, which an offline machine cannot; so each page of the built HTML is printed by Debian's
Chromium through Playwright (`dlcourse.browser`), served on 127.0.0.1 with every outside request
refused, once MathJax has typeset it. The book's print stylesheet (`book/_static/print.css`)
wraps wide tables and code to the page instead of cutting them off; any table, code block or
image still wider than the page is reported by name.

The whole book is each page printed in reading order and joined with pypdf (one outline entry
per page), not one combined HTML page, so that every page is printed exactly as it is read.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import book
from . import browser as headless
from . import labs as labs_mod

_log = functools.partial(print, flush=True)
BOOK_PDF = "book.pdf"
MARGIN_MM = {"top": 14, "bottom": 16, "left": 12, "right": 12}
#: CSS pixels across an A4 page inside the margins: the width the page is laid out at for printing.
CONTENT_WIDTH_PX = round((210 - MARGIN_MM["left"] - MARGIN_MM["right"]) / 25.4 * 96)
FOOTER = ('<div style="font-size:8px; width:100%; text-align:center; color:#555;"><span class="title"></span>'
          ' &middot; <span class="pageNumber"></span> / <span class="totalPages"></span></div>')
#: What in the article, laid out for print, is still wider than the page (and so would be cut off).
OVERFLOWING = """() => {
  const article = document.querySelector('article') || document.body;
  const right = article.getBoundingClientRect().right + 1;
  const out = [];
  for (const el of article.querySelectorAll('table, pre, img, .plotly-graph-div')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0) continue;  // not printed
    if (box.right > right || el.scrollWidth > el.clientWidth + 1) {
      const head = el.querySelector('th, code') || el;
      const what = (head.textContent || el.getAttribute('alt') || '').trim().slice(0, 40);
      out.push(`${el.tagName.toLowerCase()} "${what}" (${Math.round(Math.max(box.width, el.scrollWidth))} px, `
               + `the page has ${Math.round(right - box.left)})`);
    }
  }
  return out;
}"""


@dataclass(frozen=True)
class Printed:
    """One page printed: where its PDF went, its title, and whatever did not fit the page."""

    page: str
    path: Path
    title: str
    overflowing: tuple[str, ...]


def print_page(chromium, site: str, docname: str, target: Path) -> Printed:
    """Print page `docname` of the site served at `site` to `target` (A4), once MathJax has typeset it."""
    url = f"{site}{docname}.html"
    page = chromium.new_page(viewport={"width": CONTENT_WIDTH_PX, "height": 1100})
    try:
        headless.offline(page, site)
        response = page.goto(url)
        if response is None or response.status != 200:
            raise RuntimeError(f"{url} answered {None if response is None else response.status}")
        headless.wait_until_typeset(page)
        page.evaluate("document.fonts.ready.then(() => true)")
        page.emulate_media(media="print")
        overflowing = tuple(page.evaluate(OVERFLOWING))
        title = page.title().split(" — ")[0]
        target.parent.mkdir(parents=True, exist_ok=True)
        page.pdf(path=str(target), format="A4", print_background=True, display_header_footer=True,
                 header_template="<span></span>", footer_template=FOOTER,
                 margin={side: f"{mm}mm" for side, mm in MARGIN_MM.items()})
    finally:
        page.close()
    return Printed(docname, target, title, overflowing)


def join(printed: list[Printed], target: Path) -> Path:
    """One PDF of the given ones in order, with an outline entry (bookmark) per page."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for item in printed:
        writer.append(str(item.path), outline_item=item.title)
    with open(target, "wb") as f:
        writer.write(f)
    return target


def write_pdfs(root, labs: list[labs_mod.Lab] | None = None, *, chromium=None, log=_log) -> list[Printed]:
    """Print the book built under `root/_build/html`: a PDF per lab and the whole book.

    Returns what was printed, lab pages first-to-last then the book; pages that are not labs
    (intro, setup) go only into the book's PDF. `chromium`: a browser already launched
    (`dlcourse.browser.launch`), else one is launched for the job.
    """
    root = Path(root).resolve()
    html, out = root / "_build" / "html", root / "_build" / "pdf"
    labs = labs_mod.discover(root) if labs is None else labs
    lab_pages = {book.lab_page(lab): lab.stem for lab in labs}
    if not (html / "index.html").is_file():
        raise RuntimeError(f"no built book in {html}: run `dlcourse book` first")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.pdf"):  # a lab since removed leaves no PDF behind
        if old.stem not in lab_pages.values() and old.name != BOOK_PDF:
            old.unlink()
    printed = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        site = stack.enter_context(headless.serve(html))
        chromium = chromium or stack.enter_context(headless.launch())
        for page in book.pages(labs):
            stem = lab_pages.get(page)
            target = out / f"{stem}.pdf" if stem else Path(tmp) / f"{Path(page).name}.pdf"
            item = print_page(chromium, site, page, target)
            printed.append(item)
            for what in item.overflowing:
                log(f"  {page}: WARNING: wider than the page, cut off in print: {what}")
        whole = join(printed, out / BOOK_PDF)
    log(f"pdf: {len(lab_pages)} labs and the book ({len(printed)} pages joined) in {out}")
    return [p for p in printed if p.page in lab_pages] + [Printed("", whole, "book", ())]
