"""The whole book at the smoke profile: execute the labs, check them with nbval, build, browse.

Everything happens in a temporary copy of the course (its own results cache too), so the
checkout's book/labs/, _build/ and _toc.yml are left alone. As on a fresh machine, the data
root starts empty: the labs download their data through a mirror on 127.0.0.1 that serves
the real data folder ($DLCOURSE_DATA), and nothing else is tried. With no lab notebooks in the
repository yet, the fixture labs of test_labs.py stand in, so the machinery is still tested.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from dlcourse import book, labs
from dlcourse.browser import CHROMIUM, launch, offline, serve as serve_site, wait_until_typeset

from conftest import real_data_root, serve
from test_labs import make_course

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# Sphinx warnings look like "path:line: WARNING: ..." (the kernel's "[IPKernelApp] WARNING |" is not one),
# often coloured.
SPHINX_WARNING = re.compile(r"(^|: )WARNING: ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def copy_course(root: Path) -> Path:
    """The parts of the checkout the book is made from: config, pages, static files, lab notebooks, profiles."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "_config.yml", root)
    (root / "book").mkdir()
    for page in (REPO / "book").glob("*.md"):
        shutil.copy(page, root / "book")
    shutil.copytree(REPO / "book" / "_static", root / "book" / "_static")
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
    """A built copy of the book: (root, first build's process, its seconds, environment).

    The build starts from an empty data root and downloads through a 127.0.0.1 mirror.
    """
    tmp = tmp_path_factory.mktemp("book")
    env = {**os.environ, "DLCOURSE_CACHE": str(tmp / "cache"), "DLCOURSE_DATA": str(tmp / "data"),
           "DLCOURSE_MIRROR_ONLY": "1"}
    (tmp / "data").mkdir()
    if labs.discover(REPO):
        data = real_data_root()
        if data is None:
            if os.environ.get("DLCOURSE_REQUIRE_DATA"):
                pytest.fail("DLCOURSE_REQUIRE_DATA is set but DLCOURSE_DATA holds no FashionMNIST/raw")
            pytest.skip("the labs need the real data sets: set DLCOURSE_DATA")
        root = copy_course(tmp / "course")
    else:
        data = tmp / "no-mirror"  # the fixture labs read no data
        data.mkdir()
        root = make_course(tmp / "course", material=True)
    with serve(data.resolve()) as url:
        env["DLCOURSE_MIRROR"] = url
        proc, seconds = dlcourse("book", "--profile", "smoke", "--root", str(root), "--timeout", "300", env=env)
    print(f"\nsmoke book ({len(labs.discover(root))} labs + build, data downloaded): {seconds:.0f} s")
    return root, proc, seconds, env


def test_book_builds_cleanly(course):
    root, proc, seconds, env = course
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
    if labs.discover(REPO):  # the labs' data came through the mirror into the empty data root
        assert sorted(p.name for p in Path(env["DLCOURSE_DATA"]).iterdir()) == ["FashionMNIST", "MNIST"]
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


def test_student_edition_has_no_solutions_and_runs_under_nbval_at_smoke(course, tmp_path):
    """The notebooks a student downloads (book/student/, the lab's own parameters) hold no solution
    and no injected cell; with the smoke profile's values written in (`dlcourse notebooks
    --profile smoke`), each runs top to bottom under nbval in a plain kernel. The runs come from
    the results cache the build just filled, so this costs kernels and figures, not training."""
    import nbformat

    root, first, _, env = course
    assert first.returncode == 0
    found = labs.discover(root)
    for lab in found:
        nb = nbformat.read(root / book.STUDENT_DIR / lab.path.name, as_version=4)
        tags = [t for c in nb.cells for t in c.metadata.get("tags", [])]
        assert "solution" not in tags and "injected-parameters" not in tags, lab.stem
        assert not any(c.get("outputs") for c in nb.cells), lab.stem
        assert not any(c.source.startswith(labs.INJECTED_HEADER) for c in nb.cells), lab.stem
    out = tmp_path / "student"
    proc, _ = dlcourse("notebooks", "--root", str(root), "--student", str(out), "--profile", "smoke", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(out),
         "--nbval-lax", "--nbval-current-env", *sorted(str(p) for p in out.glob("*.ipynb"))],
        cwd=out, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert len(list(out.glob("*.ipynb"))) == len(found)


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
    with serve_site(root / "_build" / "html") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("DLCOURSE_REQUIRE_BROWSER"):
            pytest.fail(f"DLCOURSE_REQUIRE_BROWSER is set but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium to run the browser test")
    with launch(CHROMIUM) as chromium:
        yield chromium


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_every_lab_page_in_a_browser(course, site, browser):
    root = course[0]
    pages = [f"{page}.html" for page in book.pages(labs.discover(root))]
    origin = urllib.parse.urlsplit(site).netloc
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # every file a page loads from the site (scripts, fonts, figures) must be there
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    # Offline: anything outside the site (a CDN, say) is refused at once; MathJax must come from the book.
    offline(page, site)
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
        if wait_until_typeset(page):  # every formula typeset by the book's own MathJax, none left as raw TeX
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


# ----------------------------------------------------------------------------- the PDFs

@pytest.fixture(scope="module")
def printed(course, browser):
    """`dlcourse book --pdf`'s printing step on the built smoke book: {PDF file name: Printed}."""
    from dlcourse import pdf

    start = time.perf_counter()
    items = pdf.write_pdfs(course[0], chromium=browser, log=lambda *args: None)
    print(f"\nPDFs of the smoke book: {time.perf_counter() - start:.0f} s")
    return {item.path.name: item for item in items}


def _pdf(path: Path) -> tuple[int, str]:
    """(page count, text) of a PDF; the text without whitespace and ligatures, so a heading that
    wraps or a header cell that breaks across lines still matches."""
    from pypdf import PdfReader

    reader = PdfReader(path)
    text = "".join(page.extract_text() for page in reader.pages)
    return len(reader.pages), re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def test_every_lab_prints_to_pdf_without_a_clipped_column(course, site, browser, printed):
    root = course[0]
    found = labs.discover(root)
    total = 0
    for lab in found:
        item = printed[f"{lab.stem}.pdf"]
        assert item.path == root / "_build" / "pdf" / f"{lab.stem}.pdf"
        pages, text = _pdf(item.path)
        assert pages > 0, lab.stem
        total += pages
        page_html = (root / "_build" / "html" / "book" / "labs" / f"{lab.stem}.html").read_text()
        article = page_html[page_html.index("<article"):page_html.index("</article>")]
        headings = [html.unescape(re.sub(r"<[^>]+>", "", h)).strip().rstrip("#").strip()
                    for _, h in re.findall(r"<h([1-4])[^>]*>(.*?)</h\1>", article, re.S)]
        assert len(headings) >= 2, (lab.stem, headings)
        missing = [h for h in headings if _squeeze(h) not in text]
        assert not missing, f"{lab.stem}.pdf lacks the headings {missing}"
        # laid out for print, no table, code block or image is wider than the page
        assert not item.overflowing, (lab.stem, item.overflowing)
    # the whole book: every page in reading order, one bookmark each
    from pypdf import PdfReader

    whole = PdfReader(printed["book.pdf"].path)
    titles = [entry.title for entry in whole.outline]
    assert len(titles) == len(book.pages(found)) and len(whole.pages) > total
    assert [int(re.match(r"Lab (\d+):", t).group(1)) for t in titles[len(book.pages([])):]] == [lab.number for lab in found]

    sweep = next((lab for lab in found if lab.number == 8), None)
    if sweep is None:
        return  # the fixture labs stand in: there is no lab 8
    # the widest table of lab 8 on screen (where a wide one scrolls sideways): its last column is on paper
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    offline(page, site)
    page.goto(site + f"book/labs/{sweep.stem}.html")
    tables = page.eval_on_selector_all(
        "article table", "ts => ts.map(t => [t.scrollWidth, (t.querySelector('thead tr, tr') || t)"
                         ".lastElementChild.textContent.trim()])")
    page.close()
    width, last_column = max(tables)  # (wider than the printed page's 703 px, or not, at smoke)
    assert last_column and width > 300, tables
    assert _squeeze(last_column) in _pdf(printed[f"{sweep.stem}.pdf"].path)[1], last_column


# ----------------------------------------------------------------------------- a lab page as a course

#: What a lab page must show, in the order of notebooks/README.md's conventions.
OBJECTIVES, TAKEAWAYS, HOW_TO_RUN = "You will learn", "Key takeaways", "How to run this lab"
#: The page's text a reader sees: prose, tables and outputs, not the code of the cells.
VISIBLE_TEXT = """() => [...document.querySelectorAll('article p, article li, article td, article th, article .cell_output')]
    .filter(e => !e.closest('.cell_input') && e.offsetParent !== null).map(e => e.innerText).join('\\n')"""
#: Each table whose laid-out width is more than its article's content width (+1 px for rounding).
WIDE_TABLES = """() => { const article = document.querySelector('article');
    const width = article.clientWidth - parseFloat(getComputedStyle(article).paddingLeft)
                  - parseFloat(getComputedStyle(article).paddingRight);
    return [...article.querySelectorAll('table')].filter(t => t.offsetParent !== null)
        .map(t => [Math.round(t.getBoundingClientRect().width), Math.round(width),
                   (t.querySelector('tr') || t).innerText.slice(0, 80)])
        .filter(([w, room]) => w > room + 1); }"""

#: Each printed line (a cell's stream output) that runs past its box: it would scroll sideways.
WIDE_PRINTS = """() => [...document.querySelectorAll('article .cell_output .output.stream pre')]
    .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
    .map(e => e.innerText.slice(0, 80))"""

#: Each table whose first column is an index of row numbers (0, 1, 2 ...) under an empty header.
ROW_NUMBERS = """() => [...document.querySelectorAll('article table')].map(t => {
    const first = [...t.querySelectorAll('tbody tr')].map(r => r.children[0])
        .map(c => c && c.tagName === 'TH' ? c.innerText.trim() : null);
    const head = [...t.querySelectorAll('thead tr')].map(r => r.children[0] ? r.children[0].innerText.trim() : '');
    return [head.join(''), first, (t.querySelector('thead tr') || t).innerText.slice(0, 80)]; })
    .filter(([head, first]) => head === '' && first.length > 1 && first.every(v => v !== null && /^\\d+$/.test(v)))
    .map(([head, first, header]) => header)"""


def _visit_labs(browser, site: str, root: Path, width: int = 1400):
    """(lab, page) for every lab of the built book, each page loaded offline at `width` px."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    offline(page, site)
    try:
        for lab in labs.discover(root):
            response = page.goto(site + f"{book.lab_page(lab)}.html")
            assert response is not None and response.status == 200, lab.stem
            page.wait_for_load_state("load")
            yield lab, page
    finally:
        page.close()


#: What sticks out of the page sideways on a phone: the page's scroll width beyond the viewport,
#: and the widest elements of the article that do not sit in a box that scrolls by itself.
SPILLS = """() => { const room = document.documentElement.clientWidth;
    const scrolls = e => { for (let a = e.parentElement; a; a = a.parentElement) {
        if (['auto', 'scroll'].includes(getComputedStyle(a).overflowX)) return true; } return false; };
    const wide = [...document.querySelectorAll('article *')].filter(e => e.offsetParent !== null)
        .filter(e => e.getBoundingClientRect().right > room + 1 && !scrolls(e))
        .map(e => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}`);
    return [document.documentElement.scrollWidth - room, [...new Set(wide)].slice(0, 8)]; }"""


def test_lab_pages_fit_a_phone(course, site, browser):
    """At 390 px (a phone held upright) no lab page scrolls sideways: a table or figure wider than
    the column scrolls inside its own output box."""
    problems = []
    for lab, page in _visit_labs(browser, site, course[0], width=390):
        extra, wide = page.evaluate(SPILLS)
        if extra > 1 or wide:
            problems.append(f"{lab.stem}: the page is {extra} px wider than the phone; sticking out: {wide}")
    assert not problems, "\n".join(problems)


def test_every_lab_page_teaches(course, site, browser):
    """Objectives first, takeaways last, at least 3 exercises each with its solution, folded until
    clicked (sphinx-exercise's `solution` with `:class: dropdown`, toggled by sphinx-togglebutton)."""
    problems: list[str] = []
    for lab, page in _visit_labs(browser, site, course[0]):
        headings = page.eval_on_selector_all(
            "article h2", "hs => hs.map(h => h.textContent.replace('#', '').trim())")
        if OBJECTIVES not in headings or TAKEAWAYS not in headings:
            problems.append(f"{lab.stem}: headings {headings} lack '{OBJECTIVES}' or '{TAKEAWAYS}'")
            continue
        if not (headings.index(OBJECTIVES) == 0 and headings[-1] == TAKEAWAYS):
            problems.append(f"{lab.stem}: '{OBJECTIVES}' must come first and '{TAKEAWAYS}' last: {headings}")
        bullets = page.eval_on_selector_all(
            "article h2", f"hs => hs.filter(h => h.textContent.includes('{OBJECTIVES}'))"
                          ".map(h => h.parentElement.querySelectorAll(':scope > ul > li').length)")
        if not 3 <= bullets[0] <= 5:
            problems.append(f"{lab.stem}: {bullets[0]} objectives (3 to 5)")
        exercises = page.eval_on_selector_all("article div.exercise", "es => es.map(e => e.id)")
        if len(exercises) < 3:
            problems.append(f"{lab.stem}: {len(exercises)} exercises (at least 3)")
        solutions = page.locator("article div.solution")
        answered = set()
        for i in range(solutions.count()):
            solution = solutions.nth(i)
            answered.add(solution.locator(".admonition-title a").first.get_attribute("href").lstrip("#"))
            body = solution.locator(":scope > section, :scope > :not(.admonition-title)").first
            if body.is_visible():
                problems.append(f"{lab.stem}: solution {i + 1} is not folded")
                continue
            solution.locator(".admonition-title").first.click()
            if not body.is_visible():
                problems.append(f"{lab.stem}: solution {i + 1} does not open on click")
        unanswered = [e for e in exercises if e not in answered]
        if unanswered:
            problems.append(f"{lab.stem}: exercises without a solution: {unanswered}")
    assert not problems, "\n".join(problems)


def test_every_lab_page_reads_well(course, site, browser):
    """Every table and every printed line fits the text column, no table has an unlabelled index of row numbers, every figure
    has alt text in words, no "nan" is shown, and the folded "How to run this lab" box offers the student notebook (a download that
    exists) and the commands."""
    problems: list[str] = []
    for lab, page in _visit_labs(browser, site, course[0]):
        wide = page.evaluate(WIDE_TABLES)
        if wide:
            problems.append(f"{lab.stem}: tables wider than the text column [width, column, first row]: {wide}")
        long_lines = page.evaluate(WIDE_PRINTS)
        if long_lines:
            problems.append(f"{lab.stem}: printed lines that scroll sideways: {long_lines}")
        numbered = page.evaluate(ROW_NUMBERS)
        if numbered:
            problems.append(f"{lab.stem}: tables with an unlabelled 0..n index (header row): {numbered}")
        # a figure's alt text says what it shows (its title, or its axes), never the image's path
        alts = page.eval_on_selector_all("article img", "imgs => imgs.map(i => i.getAttribute('alt') || '')")
        pathlike = [a for a in alts if not a.strip() or a == "figure" or re.search(r"\.(png|svg|jpe?g)$|_images/", a)]
        if pathlike:
            problems.append(f"{lab.stem}: {len(pathlike)} of {len(alts)} figures without alt text: {pathlike[:3]}")
        shown = re.findall(r".{0,40}\bnan\b.{0,40}", page.evaluate(VISIBLE_TEXT), re.I)
        if shown:
            problems.append(f"{lab.stem}: 'nan' shown: {shown[:5]}")
        box = page.locator("article div.admonition", has_text=HOW_TO_RUN)
        if box.count() != 1:
            problems.append(f"{lab.stem}: {box.count()} '{HOW_TO_RUN}' boxes (one)")
            continue
        code = box.locator("pre").first
        if code.is_visible():
            problems.append(f"{lab.stem}: the '{HOW_TO_RUN}' box is not folded")
        box.locator(".admonition-title").first.click()
        text = code.inner_text()
        for command in (f"dlcourse labs run {lab.name} --profile laptop",
                        f"dlcourse labs params {lab.name} --profile laptop > p.yml",
                        f"papermill notebooks/{lab.path.name} out.ipynb -f p.yml", "jupyter lab"):
            if command not in text:
                problems.append(f"{lab.stem}: the box lacks `{command}`")
        href = box.locator("a.download").first.get_attribute("href")
        url = urllib.parse.urljoin(page.url, href)
        if not href.endswith(lab.path.name) or _status(url) != 200:
            problems.append(f"{lab.stem}: the student notebook link {href} does not serve {lab.path.name}")
        else:
            with urllib.request.urlopen(url, timeout=10) as response:
                served = response.read().decode()
            if served != (course[0] / book.STUDENT_DIR / lab.path.name).read_text():
                problems.append(f"{lab.stem}: the download is not the student edition")
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- figures (appended)

PAGE_BUDGET = 2_000_000  # bytes of a lab page's HTML, figures' data included


def _lab_pages(root: Path) -> list[str]:
    return [f"book/labs/{lab.stem}.html" for lab in labs.discover(root)]


def test_interactive_figures_render_offline_and_hover(course, site, browser):
    """Every lab page's Plotly figures draw their traces from the book's own plotly.js with all
    outside requests refused, and hovering a point of a learning curve shows its run and value."""
    root = course[0]
    if not labs.discover(REPO):
        pytest.skip("the fixture labs draw no interactive figure")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    offline(page, site)
    drawn: dict[str, list[int]] = {}
    for path in _lab_pages(root):
        page.goto(site + path)
        count = page.eval_on_selector_all(".plotly-graph-div", "d => d.length")
        if not count:
            continue
        page.wait_for_function("() => [...document.querySelectorAll('.plotly-graph-div')]"
                               ".every(d => d._fullLayout && d.data && d.data.length)", timeout=30_000)
        drawn[path] = page.eval_on_selector_all(".plotly-graph-div", "ds => ds.map(d => d.data.length)")
    assert len(drawn) >= 6, drawn  # the learning curves of labs 1, 2, 3, 6, 7 and 8 at least
    assert all(n > 0 for traces in drawn.values() for n in traces), drawn
    first = next(iter(drawn))
    page.goto(site + first)
    page.wait_for_selector(".plotly-graph-div .scatterlayer .trace .points path", timeout=30_000)
    figure = page.locator(".plotly-graph-div").first
    figure.scroll_into_view_if_needed()
    point = figure.locator(".scatterlayer .trace .points path").first
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector(".hoverlayer .hovertext", timeout=5_000)
    hover = page.locator(".hoverlayer .hovertext").first.text_content()
    assert "epoch" in hover and ":" in hover, hover  # the run (its hue value), the epoch and the value
    page.close()
    assert not errors, errors


def test_plotly_js_is_served_once_for_the_site_and_pages_stay_small(course):
    from dlcourse import sphinx_plotly

    root = course[0]
    html_root = root / "_build" / "html"
    scripts = [p.relative_to(html_root).as_posix() for p in html_root.rglob("*.js") if "plotly" in p.name.lower()]
    assert scripts == [f"_static/{sphinx_plotly.SCRIPT}"], scripts
    sizes = {path: (html_root / path).stat().st_size for path in _lab_pages(root)}
    print("\nlab page sizes (bytes):", sizes)
    assert all(size <= PAGE_BUDGET for size in sizes.values()), sizes
    for path in sizes:
        text = (html_root / path).read_text()
        assert text.count(sphinx_plotly.SCRIPT) <= 1 and "cdn.plot.ly" not in text, path
        if 'class="plotly-graph-div"' in text:  # loaded, not inlined: the page holds no copy of plotly.js
            assert text.count(sphinx_plotly.SCRIPT) == 1 and "Plotly.register" not in text, path


def test_a_figure_opens_at_full_resolution_on_click(course, site, browser):
    root = course[0]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    offline(page, site)
    page.goto(site + _lab_pages(root)[0])
    figure = page.locator("article .cell_output img.dlc-zoomable").first
    figure.scroll_into_view_if_needed()
    page.wait_for_function("() => { const i = document.querySelector('article .cell_output img.dlc-zoomable');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=10_000)
    shown = figure.evaluate("i => [i.naturalWidth, i.getBoundingClientRect().width]")
    assert shown[0] > shown[1] * 1.5, shown  # drawn at twice the size it is shown at
    figure.click()
    big = page.locator(".dlc-zoom img")
    big.wait_for(state="visible", timeout=5_000)
    natural, width = big.evaluate("i => [i.naturalWidth, i.getBoundingClientRect().width]")
    assert natural == shown[0] and abs(width - natural) <= 1, (natural, width)  # one image pixel per CSS pixel
    page.keyboard.press("Escape")
    assert page.locator(".dlc-zoom").count() == 0
    page.close()


def test_print_shows_the_static_twin_of_an_interactive_figure(course, site, browser):
    root = course[0]
    if not labs.discover(REPO):
        pytest.skip("the fixture labs draw no interactive figure")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    offline(page, site)
    page.goto(site + _lab_pages(root)[0])
    page.wait_for_selector(".dlc-figure", timeout=10_000)
    assert page.eval_on_selector(".dlc-figure .dlc-print", "i => getComputedStyle(i).display") == "none"
    page.emulate_media(media="print")
    assert page.eval_on_selector(".dlc-figure .dlc-print", "i => getComputedStyle(i).display") == "block"
    assert page.eval_on_selector(".dlc-figure .dlc-screen", "d => getComputedStyle(d).display") == "none"
    page.close()
