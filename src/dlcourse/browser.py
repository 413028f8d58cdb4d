"""A headless browser on the built book, offline: what the PDF printer and the browser tests share.

Debian's Chromium (`/usr/bin/chromium`, or $DLCOURSE_CHROMIUM) driven by Playwright with
`executable_path`, so nothing is downloaded; the site served on 127.0.0.1 from a thread; every
request outside that origin refused, so a page that needs the internet shows it; and a wait
until MathJax has typeset every formula.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: True once every formula (Sphinx marks them span.math / div.math) holds MathJax's output.
TYPESET = """() => [...document.querySelectorAll('span.math, div.math')]
    .every(e => e.querySelector('.MathJax, .MathJax_Display, .MathJax_CHTML, mjx-container'))"""


def chromium_path() -> str:
    """The browser to drive; RuntimeError saying how to install it when it is missing."""
    path = os.environ.get("DLCOURSE_CHROMIUM", CHROMIUM)
    if not os.path.exists(path):
        raise RuntimeError(f"no browser at {path}: install Debian's chromium (apt-get install chromium) "
                           f"or set DLCOURSE_CHROMIUM to a Chromium executable")
    return path


@contextlib.contextmanager
def launch(executable: str | None = None):
    """A headless Chromium (Playwright's Browser) for the duration of the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable or chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A browser that drops a connection (navigating on) is not an error of the site."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(folder: str | os.PathLike) -> Iterator[str]:
    """`folder` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL ("http://.../")."""
    handler = functools.partial(_QuietHandler, directory=str(Path(folder)))
    server = _QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def offline(page, site: str) -> None:
    """Let `page` load only from `site`'s origin; anything else (a CDN, say) is refused at once."""
    origin = urllib.parse.urlsplit(site).netloc
    page.route("**/*", lambda route: route.continue_() if urllib.parse.urlsplit(route.request.url).netloc == origin
               else route.abort())


def wait_until_typeset(page, timeout_ms: float = 30_000) -> bool:
    """Wait until MathJax has typeset every formula of the page; False if it has none."""
    if not page.eval_on_selector_all("span.math, div.math", "m => m.length"):
        return False
    page.wait_for_function(TYPESET, timeout=timeout_ms)
    return True
