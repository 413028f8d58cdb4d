"""Build the book: execute the labs whose executed copy is stale, then `jupyter-book build .`.

A lab is re-executed only when its stamp (source cells, parameters, package code) differs
from the one in `book/labs/`, and Sphinx re-reads only changed pages, so rebuilding an
unchanged book executes nothing and takes seconds. `_toc.yml` is written from the labs found
in `notebooks/`, so a lab added or removed needs no hand edit of the table of contents.

Each lab page offers the lab's student edition (`dlcourse.editions`, written to `book/student/`)
and says how to run it: the build inserts one folded "How to run this lab" box into each
executed copy (`add_how_to_run`), so no lab writes it and every page says the same thing.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import editions, execution
from . import labs as labs_mod

_log = functools.partial(print, flush=True)
TOC_HEADER = "# Written by `dlcourse book` from the labs found in notebooks/ (see src/dlcourse/book.py).\n"


INTRO = "book/intro"
GETTING_STARTED = ("book/setup", "book/reports")
STUDENT_DIR = "book/student"  # the student edition the lab pages offer for download
HOW_TO_RUN = "how-to-run"  # the id of the box's cell in an executed copy
OBJECTIVES = "## You will learn"  # the heading of a lab's objectives (the box follows them)


def lab_page(lab: labs_mod.Lab) -> str:
    """The page (Sphinx docname) of a lab: its executed notebook in book/labs/."""
    return f"book/labs/{lab.stem}"


def pages(labs: list[labs_mod.Lab]) -> list[str]:
    """Every page of the book in reading order (the order of `_toc.yml` and of the book's PDF)."""
    return [INTRO, *GETTING_STARTED, *(lab_page(lab) for lab in labs)]


def toc_text(labs: list[labs_mod.Lab]) -> str:
    """The jb-book table of contents: intro, setup and the reports, then one chapter per lab in lab order."""
    lines = [TOC_HEADER, "format: jb-book", f"root: {INTRO}", "parts:",
             "- caption: Getting started", "  chapters:", *(f"  - file: {page}" for page in GETTING_STARTED)]
    if labs:
        lines += ["- caption: Labs", "  chapters:"] + [f"  - file: {lab_page(lab)}" for lab in labs]
    return "\n".join(lines) + "\n"


def write_toc(root: str | os.PathLike, labs: list[labs_mod.Lab]) -> bool:
    """Write `_toc.yml` when its content changes (an unchanged file keeps the build incremental)."""
    path = Path(root) / "_toc.yml"
    text = toc_text(labs)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def remove_orphans(out_dir: Path, labs: list[labs_mod.Lab]) -> list[Path]:
    """Executed notebooks whose source lab no longer exists (the book would publish them as orphans)."""
    keep = {lab.path.name for lab in labs}
    gone = [p for p in out_dir.glob("*.ipynb") if p.name not in keep and not p.name.startswith(".")]
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def how_to_run(lab: labs_mod.Lab) -> str:
    """The folded box on a lab page: download the student notebook, or run the lab from a checkout."""
    rel = f"notebooks/{lab.path.name}"
    return "\n".join([
        ":::{admonition} How to run this lab",
        ":class: dropdown tip",
        f"Download the {{download}}`student notebook <../student/{lab.path.name}>` (no outputs, no "
        "solutions) and open it in Jupyter, or, in a checkout of the course with its environment "
        "active:",
        "",
        "```bash",
        f"dlcourse labs run {lab.name} --profile laptop             # execute it into book/labs/",
        f"dlcourse labs params {lab.name} --profile laptop > p.yml  # or with plain papermill:",
        f"papermill {rel} out.ipynb -f p.yml",
        f"jupyter lab {rel}                 # open it, change it, run it cell by cell",
        "dlcourse notebooks --student my-labs/              # every lab without its solutions",
        "```",
        "",
        "`--profile smoke` runs it in seconds on tiny data; `-p name=value` changes one parameter.",
        ":::",
    ])


def add_how_to_run(path: Path, lab: labs_mod.Lab) -> bool:
    """Put the box into the executed copy at `path`, after the objectives (else after the title cell).

    Rewritten (atomically, stamp kept) only when the box is missing or differs, so an
    unchanged book stays unchanged for Sphinx. Returns whether the file changed.
    """
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    cells = [c for c in nb["cells"] if c.get("id") != HOW_TO_RUN]
    text = how_to_run(lab)
    after = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                  and "".join(c["source"]).lstrip().startswith(OBJECTIVES)), 0)
    cells.insert(after + 1, {"cell_type": "markdown", "id": HOW_TO_RUN, "metadata": {},
                             "source": text.splitlines(keepends=True)})
    if cells == nb["cells"]:
        return False
    nb["cells"] = cells
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.box.tmp.ipynb")
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return True


def write_pages_extras(root: Path, labs: list[labs_mod.Lab]) -> None:
    """What the build adds to the executed labs: the student edition they link, and the box."""
    student = root / STUDENT_DIR
    editions.write(labs, "student", student)
    remove_orphans(student, labs)
    for lab in labs:
        executed = lab.output(root / "book" / "labs")
        if executed.exists():
            add_how_to_run(executed, lab)


def stale_labs(root: str | os.PathLike, profile: str = "laptop", *, force: bool = False,
               fingerprint: str | None = None) -> list[tuple[labs_mod.Lab, dict]]:
    """(lab, parameters) of every lab that must be executed for the book at `profile`."""
    labs = labs_mod.discover(root)
    out_dir = Path(root) / "book" / "labs"
    fingerprint = fingerprint if fingerprint is not None else execution.code_fingerprint()
    todo = []
    for lab in labs:
        params = labs_mod.resolve_parameters(lab, profile, root=root)
        if force or execution.is_stale(lab, params, out_dir, fingerprint):
            todo.append((lab, params))
    return todo


def run_labs(root: str | os.PathLike, profile: str = "laptop", *, force: bool = False,
             timeout: float | None = execution.DEFAULT_TIMEOUT, progress: bool = False, log=_log) -> list[str]:
    """Execute the stale labs; return the names executed. All are tried; failures raise one LabError.

    Every lab's parameter names are checked first, so a misspelled name in a profile fails at
    once rather than after the labs before it ran. A lab that fails keeps its previous copy.
    """
    root = Path(root)
    labs = labs_mod.discover(root)
    out_dir = root / "book" / "labs"
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_orphans(out_dir, labs)
    fingerprint = execution.code_fingerprint()
    todo = stale_labs(root, profile, force=force, fingerprint=fingerprint)
    for lab, params in todo:
        labs_mod.check_names(lab, params)
    log(f"labs: {len(labs) - len(todo)} current, {len(todo)} to execute (profile {profile})")
    failures = []
    for lab, params in todo:
        stale = execution.made(lab.output(out_dir)).get("stale")
        log(f"  {lab.stem}: executing ..." + (f" (the executed copy was stale: {stale})" if stale else ""))
        start = time.perf_counter()
        try:
            execution.execute(lab, params, out_dir, root=root, timeout=timeout, progress=progress,
                              profile=str(profile), fingerprint=fingerprint)
            log(f"  {lab.stem}: done in {time.perf_counter() - start:.0f} s")
        except execution.LabError as exc:
            log(f"  {lab.stem}: FAILED after {time.perf_counter() - start:.0f} s")
            failures.append(str(exc))
    if failures:
        raise execution.LabError("\n".join(failures))
    return [lab.stem for lab, _ in todo]


def jupyter_book(root: str | os.PathLike, *extra: str) -> int:
    """`jupyter-book build <root>` in this Python, into <root>/_build/html; returns its exit status."""
    cmd = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
           "build", str(root), *extra]
    return subprocess.call(cmd, cwd=root)


def build(root: str | os.PathLike, profile: str = "laptop", *, force: bool = False,
          timeout: float | None = execution.DEFAULT_TIMEOUT, progress: bool = False, pdf: bool = False,
          log=_log) -> Path:
    """Execute the stale labs, write `_toc.yml`, build the HTML book; return the folder of index.html.

    `pdf`: then print it (`dlcourse.pdf`): `_build/pdf/<lab>.pdf` per lab and `_build/pdf/book.pdf`.
    """
    root = Path(root).resolve()
    run_labs(root, profile, force=force, timeout=timeout, progress=progress, log=log)
    write_pages_extras(root, labs_mod.discover(root))
    write_toc(root, labs_mod.discover(root))
    status = jupyter_book(root, *(["--all"] if force else []))
    if status:
        raise RuntimeError(f"jupyter-book build failed (exit status {status})")
    html = root / "_build" / "html"
    log(f"book: {html / 'index.html'}")
    if pdf:
        from . import pdf as pdf_mod  # lazy: it drives a browser

        pdf_mod.write_pdfs(root, labs_mod.discover(root), log=log)
    return html
