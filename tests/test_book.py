"""The whole book at the smoke profile: execute the labs, check them with nbval, build, browse.

Everything happens in a temporary copy of the course (its own results cache too), so the
checkout's book/labs/, _build/ and _toc.yml are left alone. With no lab notebooks in the
repository yet, the fixture labs of test_labs.py stand in, so the machinery is still tested.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from dlcourse import labs

from conftest import real_data_root
from test_labs import make_course

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Sphinx warnings look like "path:line: WARNING: ..." (the kernel's "[IPKernelApp] WARNING |" is not one),
# often coloured.
SPHINX_WARNING = re.compile(r"(^|: )WARNING: ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def copy_course(root: Path) -> Path:
    """The parts of the checkout the book is made from: config, pages, lab notebooks, profiles."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "_config.yml", root)
    (root / "book").mkdir()
    for page in (REPO / "book").glob("*.md"):
        shutil.copy(page, root / "book")
    shutil.copytree(REPO / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "*.tmp.ipynb"))
    return root


def dlcourse(*argv: str, env: dict, timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dlcourse.cli", *argv], env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc, time.perf_counter() - start


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A built copy of the book: (root, first build's process, its seconds, environment)."""
    tmp = tmp_path_factory.mktemp("book")
    env = {**os.environ, "DLCOURSE_CACHE": str(tmp / "cache")}
    if labs.discover(REPO):
        data = real_data_root()
        if data is None:
            if os.environ.get("DLCOURSE_REQUIRE_DATA"):
                pytest.fail("DLCOURSE_REQUIRE_DATA is set but DLCOURSE_DATA holds no FashionMNIST/raw")
            pytest.skip("the labs need the real data sets: set DLCOURSE_DATA")
        env["DLCOURSE_DATA"] = str(data.resolve())
        root = copy_course(tmp / "course")
    else:
        root = make_course(tmp / "course")
    proc, seconds = dlcourse("book", "--profile", "smoke", "--root", str(root), "--timeout", "300", env=env)
    print(f"\nsmoke book ({len(labs.discover(root))} labs + build): {seconds:.0f} s")
    return root, proc, seconds, env


def test_book_builds_cleanly(course):
    root, proc, seconds, _ = course
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert "build succeeded" in log and "build succeeded, " not in log, "the build had warnings"
    warnings = [line for line in ANSI.sub("", log).splitlines() if SPHINX_WARNING.search(line)]
    assert not warnings, "\n".join(warnings)
    html = root / "_build" / "html"
    assert (html / "index.html").exists()
    for lab in labs.discover(root):
        assert (root / "book" / "labs" / lab.path.name).exists()
        assert (html / "book" / "labs" / f"{lab.stem}.html").exists()
    assert not list((root / "book" / "labs").glob(".*")), "temporary notebooks were left behind"
    # The budget is 3 minutes on 2 idle cores; the bound leaves room for a busy CI machine and
    # catches what matters: a lab whose smoke section is missing runs at laptop scale (many minutes).
    assert seconds < 300, f"the smoke book took {seconds:.0f} s (budget: 3 min)"


def test_rebuild_with_nothing_changed_executes_nothing(course):
    root, first, _, env = course
    assert first.returncode == 0
    proc, seconds = dlcourse("book", "--profile", "smoke", "--root", str(root), env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert re.search(r"labs: \d+ current, 0 to execute", log), log[:2000]
    assert "0 added, 0 changed, 0 removed" in log
    assert seconds < 30, f"an unchanged rebuild took {seconds:.0f} s (budget: 30 s)"


def test_executed_labs_pass_nbval(course):
    """nbval-lax re-executes each executed lab and compares the cells marked # NBVAL_CHECK_OUTPUT."""
    root, first, _, env = course
    assert first.returncode == 0
    notebooks = sorted(str(p) for p in (root / "book" / "labs").glob("*.ipynb"))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(root),
         "--nbval-lax", "--nbval-current-env", *notebooks],
        cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]


def test_prose_states_only_numbers_the_build_produced(course):
    """tests/test_prose.py's check on the smoke labs just executed (no second execution)."""
    from test_prose import unbound_numbers_in

    root, first, _, _ = course
    assert first.returncode == 0
    assert unbound_numbers_in(root / "book" / "labs") == {}


# ----------------------------------------------------------------------------- the browser

@pytest.fixture(scope="module")
def site(course):
    """The built HTML served on 127.0.0.1 (a free port), for as long as the module's tests run."""
    root, first, _, _ = course
    assert first.returncode == 0
    handler = functools.partial(_QuietHandler, directory=str(root / "_build" / "html"))
    server = _QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A browser that drops a connection (navigating on) is not an error of the site."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("DLCOURSE_REQUIRE_BROWSER"):
            pytest.fail(f"DLCOURSE_REQUIRE_BROWSER is set but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium to run the browser test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


TYPESET = """() => [...document.querySelectorAll('span.math, div.math')]
    .every(e => e.querySelector('.MathJax, .MathJax_Display, .MathJax_CHTML, mjx-container'))"""


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_every_lab_page_in_a_browser(course, site, browser):
    root = course[0]
    pages = ["book/intro.html", "book/setup.html"] + [f"book/labs/{lab.stem}.html" for lab in labs.discover(root)]
    origin = urllib.parse.urlsplit(site).netloc
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # every file a page loads from the site (scripts, fonts, figures) must be there
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    # Offline: anything outside the site (a CDN, say) is refused at once; MathJax must come from the book.
    page.route("**/*", lambda route: route.continue_() if urllib.parse.urlsplit(route.request.url).netloc == origin
               else route.abort())
    links: dict[str, str] = {}
    math_pages: list[str] = []
    for path in pages:
        response = page.goto(site + path)
        assert response is not None and response.status == 200, path
        match = re.fullmatch(r"lab(\d+)_\w+", Path(path).stem)
        if match:
            number = int(match.group(1))
            assert re.match(rf"Lab {number}: \S.* — dlcourse: deep learning, lab by lab$", page.title()), \
                f"{path}: title {page.title()!r} (the notebook must open with '# Lab {number}: Title')"
            widths = page.eval_on_selector_all(
                "article img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert sum(w > 0 for w in widths) >= 2, f"{path}: loaded figures {widths} (need at least 2)"
        formulas = page.eval_on_selector_all("span.math, div.math", "m => m.length")
        if formulas:  # every formula typeset by the book's own MathJax, none left as raw TeX
            page.wait_for_function(TYPESET, timeout=30_000)
            math_pages.append(path)
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            url = urllib.parse.urldefrag(href).url
            if urllib.parse.urlsplit(url).netloc == origin:
                links.setdefault(url, path)
    page.close()
    assert not errors, errors
    assert "book/labs/lab05_function.html" in math_pages, math_pages  # the lab that writes formulas
    broken = [f"{url} (linked from {source})" for url, source in links.items() if _status(url) != 200]
    assert not broken, "broken links:\n" + "\n".join(broken)
