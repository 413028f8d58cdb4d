"""Execute one lab with papermill, so that a failure never costs a result.

Why this shape:
- The executed copy goes to `book/labs/` (or `--out`) through a temporary file and a rename,
  so the book never publishes a half-run notebook, and it carries a stamp (source cells +
  parameters + package code) that tells `dlcourse book` whether it is still current.
- A `full` lab can take hours, and an instructor's typo must not destroy it: before a run
  starts, the previous executed copy is marked stale in its metadata (an atomic rewrite), and
  it is replaced only when the new run succeeds. A run that fails, times out, is terminated or
  killed (even with SIGKILL, which runs no handler) leaves the old copy where it was, marked
  stale, so `dlcourse labs list` says so and the next `dlcourse book` re-executes it.
- Temporary notebooks carry their process id (`.<lab>.<pid>.<random>.tmp.ipynb`); the next run
  removes those whose process is gone.
- A failure names the cell and the line of it that raised (from the kernel's traceback).
Notebooks run with the project root as working directory, in a kernel of this Python.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path

from .cache import _pid_alive
from .labs import Lab, check_names, default_root
from .settings import RUN_LOG

STAMP_KEY = "dlcourse"  # notebook metadata key holding the stamp
# Cells shown collapsed in the book, with the label of their toggle.
HIDDEN_TAGS = {"parameters": "Show the lab's default parameters",
               "injected-parameters": "Show the parameters of this run"}
DEFAULT_TIMEOUT = 3600  # seconds per cell; the full profile may need --timeout 0 (none)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CELL_LINE = re.compile(r"Cell In\[\d+\], line (\d+)")


class LabError(RuntimeError):
    """A lab failed: names the lab, the cell (index, and the line that raised) and the exception."""

    def __init__(self, message: str, *, lab: str = "", cell_index: int | None = None, source: str = "",
                 ename: str = "", evalue: str = "", line_number: int | None = None, line: str = ""):
        super().__init__(message)
        self.lab, self.cell_index, self.source, self.ename, self.evalue = lab, cell_index, source, ename, evalue
        self.line_number, self.line = line_number, line


# ----------------------------------------------------------------------------- stamps

def _code_digest(path: Path) -> bytes:
    """A module's code without docstrings and comments, so that prose edits re-run nothing."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).digest()


def code_fingerprint() -> str:
    """A hash of every module of the dlcourse package.

    Wider on purpose than `runs.code_fingerprint`, which covers only the training code: a
    change to `plots` or `report` changes a page without changing any trained model, so the
    lab is re-executed (its runs then come from the cache) while nothing is re-trained.
    """
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + _code_digest(path))
    return digest.hexdigest()[:16]


def notebook_digest(path: str | os.PathLike) -> str:
    """A hash of what a notebook does (cell types, tags and sources), not of stray outputs or UI state."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = [(c.cell_type, c.metadata.get("tags", []), c.source) for c in nb.cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def stamp(lab: Lab, params: dict, fingerprint: str | None = None) -> str:
    """What the executed notebook was made from; equal stamps mean an identical re-run."""
    what = {"notebook": notebook_digest(lab.path), "parameters": params,
            "code": fingerprint if fingerprint is not None else code_fingerprint()}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def made(path: str | os.PathLike) -> dict:
    """The record an executed notebook carries (stamp, profile, parameters, stale), or {}."""
    try:
        with open(path) as f:
            record = json.load(f)["metadata"][STAMP_KEY]
        return record if isinstance(record, dict) else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def read_stamp(path: str | os.PathLike) -> str | None:
    """The stamp of an executed notebook; None when it is missing, unreadable or marked stale."""
    record = made(path)
    return None if record.get("stale") else record.get("stamp")


def is_stale(lab: Lab, params: dict, out_dir: str | os.PathLike, fingerprint: str | None = None) -> bool:
    """True when the executed copy is missing, marked stale, or made from other cells, parameters or code."""
    return read_stamp(lab.output(out_dir)) != stamp(lab, params, fingerprint)


def _temporary(target: Path) -> Path:
    return target.parent / f".{target.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.ipynb"


def _publish(tmp: Path, target: Path) -> None:
    """Rename `tmp` over `target` with the permissions of an ordinary file (the book is not private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, target)


def mark_stale(path: Path, reason: str) -> None:
    """Keep the executed notebook at `path` but record why it is no longer current (atomically).

    An unreadable notebook is left as it is: it has no stamp, so it is not current anyway.
    """
    try:
        with open(path) as f:
            nb = json.load(f)
        record = nb["metadata"].setdefault(STAMP_KEY, {})
        record["stale"] = reason
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return
    tmp = _temporary(path)
    try:
        tmp.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
        _publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_dead_temporaries(out_dir: Path) -> list[Path]:
    """Temporary notebooks of runs whose process is gone (killed, even with SIGKILL)."""
    gone = []
    for path in out_dir.glob(".*.tmp.ipynb"):
        parts = path.name.split(".")
        pid = int(parts[-4]) if len(parts) >= 6 and parts[-4].isdigit() else None
        if pid is None or not _pid_alive(pid):  # no pid: written before names carried one
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone


# ----------------------------------------------------------------------------- execution

def kernel_name() -> str:
    """A Jupyter kernel that runs this very Python (so `make` in a fresh venv needs no setup).

    The stock `python3` spec qualifies when it names `python` (jupyter_client then starts
    sys.executable) or this interpreter; otherwise a `dlcourse` spec is installed into sys.prefix.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    here = os.path.abspath(sys.executable)  # not realpath: venvs share their base interpreter
    for name in ("python3", "dlcourse"):
        try:
            argv0 = manager.get_kernel_spec(name).argv[0]
        except NoSuchKernel:
            continue
        if argv0 in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}") or \
                os.path.abspath(argv0) == here:
            return name
    from ipykernel.kernelspec import install

    install(kernel_name="dlcourse", display_name="Python (dlcourse)", prefix=sys.prefix)
    return "dlcourse"


def _finish(nb, lab: Lab, params: dict, stamp_value: str, profile: str | None, runs: list[str] | None = None):
    """Collapse the parameter cells in the book and record how the notebook was made (and the
    keys of the cached runs it used, for `dlcourse runs export --lab`)."""
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        labels = [HIDDEN_TAGS[t] for t in tags if t in HIDDEN_TAGS]
        if cell.cell_type == "code" and labels:
            if "hide-input" not in tags:
                tags.append("hide-input")
            cell.metadata.setdefault("mystnb", {})["code_prompt_show"] = labels[-1]
    nb.metadata[STAMP_KEY] = {"stamp": stamp_value, "lab": lab.stem, "profile": profile,
                              "parameters": json.loads(json.dumps(params, default=str)),
                              "runs": runs or []}
    return nb


def _cell_error(lab: Lab, exc) -> LabError:
    """A LabError naming the cell, the line of it that raised (from the traceback) and the message."""
    traceback = _ANSI.sub("", "\n".join(exc.traceback or []))
    lines = exc.source.splitlines()
    match = _CELL_LINE.search(traceback)
    number = int(match.group(1)) if match else None
    if number is not None and 1 <= number <= len(lines):
        line, where = lines[number - 1].strip(), f"cell {exc.cell_index}, line {number}"
    else:
        line = next((s.strip() for s in lines if s.strip()), "")
        where, number = f"cell {exc.cell_index}", None
    return LabError(f"{lab.stem} failed in {where} ({line!r}): {exc.ename}: {exc.evalue}", lab=lab.stem,
                    cell_index=exc.cell_index, source=exc.source, ename=exc.ename, evalue=exc.evalue,
                    line_number=number, line=line)


def run_notebook(lab: Lab, params: dict, path: Path, *, root: str | os.PathLike | None = None,
                 timeout: float | None = DEFAULT_TIMEOUT, progress: bool = False):
    """Execute `lab` with `params` into `path` with papermill, in a kernel of this Python that
    inherits this environment; return the notebook, or raise LabError naming the failing cell.
    Both `execute` and plan mode (`dlcourse.planning`) run labs through it."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from .fast import kernel_environment

    added = kernel_environment()  # the kernel inherits os.environ; set for its start, then removed
    os.environ.update(added)
    try:
        return papermill.execute_notebook(
            str(lab.path), str(path), parameters=params, kernel_name=kernel_name(),
            cwd=str(Path(root or default_root()).resolve()), progress_bar=progress,
            execution_timeout=timeout or None, start_timeout=120,
            # The kernel's own log (not the notebook's output): quiet its warning about
            # unencrypted TCP on localhost, printed on every start.
            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except PapermillExecutionError as exc:
        raise _cell_error(lab, exc) from None
    except Exception as exc:  # kernel died, cell timed out, notebook unreadable, ...
        raise LabError(f"{lab.stem} failed: {type(exc).__name__}: {exc}", lab=lab.stem,
                       ename=type(exc).__name__, evalue=str(exc)) from None
    finally:
        for name in added:
            os.environ.pop(name, None)


def execute(lab: Lab, params: dict, out_dir: str | os.PathLike, *, root: str | os.PathLike | None = None,
            timeout: float | None = DEFAULT_TIMEOUT, progress: bool = False, profile: str | None = None,
            fingerprint: str | None = None) -> Path:
    """Execute `lab` with `params` into `out_dir/<lab file>`; raise LabError naming the failing cell.

    Undeclared parameter names fail before anything starts. A failed run keeps the previous
    executed copy, marked stale, and says so.
    """
    import nbformat

    check_names(lab, params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(out_dir)
    target = lab.output(out_dir)
    stamp_value = stamp(lab, params, fingerprint)
    kept = target.exists()
    if kept:  # if this run dies, even by SIGKILL, the old copy already says it is not current
        mark_stale(target, f"a run started {time.strftime('%Y-%m-%d %H:%M:%S')} (pid {os.getpid()}) did not finish")
    tmp = _temporary(target)
    run_log = tmp.with_suffix(".runs")
    os.environ[RUN_LOG] = str(run_log)  # the kernel inherits it and lists the runs the lab asks for
    try:
        try:
            nb = run_notebook(lab, params, tmp, root=root, timeout=timeout, progress=progress)
        except LabError as exc:
            error = exc
        except BaseException as exc:  # SIGTERM (as SystemExit), Ctrl-C
            if kept:
                mark_stale(target, f"the run was interrupted ({type(exc).__name__})")
                print(f"{lab.stem}: interrupted; the previous executed notebook {target} was kept, marked stale",
                      file=sys.stderr, flush=True)
            raise
        else:
            used = list(dict.fromkeys(run_log.read_text().split())) if run_log.exists() else []
            nbformat.write(_finish(nb, lab, params, stamp_value, profile, used), tmp)
            _publish(tmp, target)
            return target
        if kept:
            mark_stale(target, f"the last run failed: {error}")
            error.args = (f"{error}\nThe previous executed notebook {target} was kept, marked stale "
                          f"(the next `dlcourse book` re-executes it).",)
        raise error
    finally:
        os.environ.pop(RUN_LOG, None)
        run_log.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def exit_on_sigterm() -> None:
    """Turn SIGTERM (kill, CI timeouts) into SystemExit so that temporaries and kernels are cleaned up."""
    import signal

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
