"""Build the book: execute the labs whose executed copy is stale, then `jupyter-book build .`.

A lab is re-executed only when its stamp (source cells, parameters, package code) differs
from the one in `book/labs/`, and Sphinx re-reads only changed pages, so rebuilding an
unchanged book executes nothing and takes seconds. `_toc.yml` is written from the labs found
in `notebooks/`, so a lab added or removed needs no hand edit of the table of contents.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path

from . import labs as labs_mod

_log = functools.partial(print, flush=True)
TOC_HEADER = "# Written by `dlcourse book` from the labs found in notebooks/ (see src/dlcourse/book.py).\n"


def toc_text(labs: list[labs_mod.Lab]) -> str:
    """The jb-book table of contents: intro, setup, then one chapter per lab in lab order."""
    lines = [TOC_HEADER, "format: jb-book", "root: book/intro", "parts:",
             "- caption: Getting started", "  chapters:", "  - file: book/setup"]
    if labs:
        lines += ["- caption: Labs", "  chapters:"] + [f"  - file: book/labs/{lab.stem}" for lab in labs]
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
    gone = [p for p in out_dir.glob("*.ipynb") if p.name not in keep]
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def stale_labs(root: str | os.PathLike, profile: str = "laptop", *, force: bool = False,
               fingerprint: str | None = None) -> list[tuple[labs_mod.Lab, dict]]:
    """(lab, parameters) of every lab that must be executed for the book at `profile`."""
    labs = labs_mod.discover(root)
    out_dir = Path(root) / "book" / "labs"
    fingerprint = fingerprint if fingerprint is not None else labs_mod.code_fingerprint()
    todo = []
    for lab in labs:
        params = labs_mod.resolve_parameters(lab, profile, root=root)
        if force or labs_mod.is_stale(lab, params, out_dir, fingerprint):
            todo.append((lab, params))
    return todo


def run_labs(root: str | os.PathLike, profile: str = "laptop", *, force: bool = False,
             timeout: float | None = labs_mod.DEFAULT_TIMEOUT, progress: bool = False, log=_log) -> list[str]:
    """Execute the stale labs; return the names executed. All are tried; failures raise one LabError."""
    root = Path(root)
    labs = labs_mod.discover(root)
    out_dir = root / "book" / "labs"
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_orphans(out_dir, labs)
    fingerprint = labs_mod.code_fingerprint()
    todo = stale_labs(root, profile, force=force, fingerprint=fingerprint)
    log(f"labs: {len(labs) - len(todo)} current, {len(todo)} to execute (profile {profile})")
    failures = []
    for lab, params in todo:
        log(f"  {lab.stem}: executing ...")
        start = time.perf_counter()
        try:
            labs_mod.execute(lab, params, out_dir, root=root, timeout=timeout, progress=progress,
                             profile=str(profile), fingerprint=fingerprint)
            log(f"  {lab.stem}: done in {time.perf_counter() - start:.0f} s")
        except labs_mod.LabError as exc:
            log(f"  {lab.stem}: FAILED after {time.perf_counter() - start:.0f} s")
            failures.append(str(exc))
    if failures:
        raise labs_mod.LabError("\n".join(failures))
    return [lab.stem for lab, _ in todo]


def jupyter_book(root: str | os.PathLike, *extra: str) -> int:
    """`jupyter-book build <root>` in this Python, into <root>/_build/html; returns its exit status."""
    cmd = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
           "build", str(root), *extra]
    return subprocess.call(cmd, cwd=root)


def build(root: str | os.PathLike, profile: str = "laptop", *, force: bool = False,
          timeout: float | None = labs_mod.DEFAULT_TIMEOUT, progress: bool = False, log=_log) -> Path:
    """Execute the stale labs, write `_toc.yml`, build the HTML book; return the folder of index.html."""
    root = Path(root).resolve()
    run_labs(root, profile, force=force, timeout=timeout, progress=progress, log=log)
    write_toc(root, labs_mod.discover(root))
    status = jupyter_book(root, *(["--all"] if force else []))
    if status:
        raise RuntimeError(f"jupyter-book build failed (exit status {status})")
    html = root / "_build" / "html"
    log(f"book: {html / 'index.html'}")
    return html


def _book(args) -> int:
    labs_mod.exit_on_sigterm()
    root = Path(args.root) if args.root else labs_mod.default_root()
    build(root, args.profile, force=args.force, timeout=args.timeout, progress=args.progress)
    return 0


def register(sub) -> None:
    """`dlcourse book`."""
    book = sub.add_parser("book", help="execute the stale labs, then build the HTML book into _build/html")
    labs_mod.add_common(book)
    book.add_argument("--force", action="store_true", help="execute every lab and rebuild every page")
    book.add_argument("--timeout", type=float, default=labs_mod.DEFAULT_TIMEOUT,
                      help=f"seconds allowed per notebook cell (default {labs_mod.DEFAULT_TIMEOUT}; 0: no limit)")
    book.add_argument("--progress", action="store_true", help="show papermill's progress bar per lab")
    book.set_defaults(func=_book)
