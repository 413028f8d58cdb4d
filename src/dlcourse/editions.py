"""The labs as a student or an instructor takes them home: clean notebooks, not executed copies.

The book publishes executed notebooks (outputs, papermill's injected cell, the run's stamp);
a student wants the lab to run and change: the lab's own parameters, no outputs, and the
exercises without their solutions. So an edition is written from the source notebook:

- **student**: cells tagged `solution` removed (nbconvert's TagRemovePreprocessor), so every
  exercise stays and no answer is given away; the lab must still run (solution cells define
  nothing later cells use: a test executes the student edition);
- **instructor**: the solutions kept.

Both drop outputs, execution counts, any cell tagged `injected-parameters` and the metadata of
runs (papermill's, the book's stamp). `params` (a profile's values, say smoke for a quick run
in class) are written into the lab's own `parameters` cell in place of its values, never as an
injected cell; a value equal to the lab's own keeps its line as written (comments included).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from .labs import Lab, check_names

EDITIONS = ("student", "instructor")
#: Cells each edition leaves out, by tag.
REMOVED_TAGS = {"student": ("solution", "injected-parameters"), "instructor": ("injected-parameters",)}
_RUN_METADATA = ("papermill", "dlcourse", "widgets")
_CELL_METADATA = ("execution", "papermill", "collapsed", "scrolled")


def set_parameters(source: str, params: dict) -> str:
    """The `parameters` cell's source with the values of `params` in place of its own.

    Only names the cell assigns are replaced (callers check names first with
    `labs.check_names`); a value that equals the cell's own keeps its text as written.
    """
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        value = getattr(node, "value", None)
        names = [t.id for t in targets if isinstance(t, ast.Name) and t.id in params]
        if not names or value is None:
            continue
        wanted = params[names[-1]]
        try:
            if ast.literal_eval(value) == wanted and type(ast.literal_eval(value)) is type(wanted):
                continue
        except ValueError:
            pass
        edits.append((value.lineno, value.col_offset, value.end_lineno, value.end_col_offset, _literal(wanted)))
    for start, col, end, end_col, text in sorted(edits, reverse=True):
        # offsets are in UTF-8 bytes; rebuild the lines from start to end
        first, last = lines[start - 1].encode(), lines[end - 1].encode()
        merged = first[:col].decode() + text + last[end_col:].decode()
        lines[start - 1:end] = [merged]
    return "".join(lines)


def _literal(value) -> str:
    """A value as Python source, strings in double quotes as the labs write them."""
    text = repr(value)
    return f'"{value}"' if isinstance(value, str) and text == f"'{value}'" and '"' not in value else text


def edition(lab: Lab, kind: str, params: dict | None = None):
    """The notebook (an nbformat node) of `lab` as the `kind` edition, with `params` written in."""
    import nbformat

    if kind not in EDITIONS:
        raise ValueError(f"kind={kind!r} is not valid; choose one of: {', '.join(EDITIONS)}")
    nb = nbformat.read(lab.path, as_version=4)
    # What nbconvert's TagRemovePreprocessor and ClearOutputPreprocessor do (a test compares
    # them), without importing nbconvert: seconds on every `dlcourse book`.
    removed = set(REMOVED_TAGS[kind])
    nb.cells = [c for c in nb.cells if not removed & set(c.metadata.get("tags", []))]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    for key in _RUN_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in _CELL_METADATA:
            cell.metadata.pop(key, None)
    if params:
        check_names(lab, params)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cell.source = set_parameters(cell.source, params)
    return nb


def write(labs: list[Lab], kind: str, out_dir: str | os.PathLike,
          params: dict[str, dict] | None = None) -> list[Path]:
    """Write the `kind` edition of each lab into `out_dir/<lab file>`; return the paths.

    `params`: {lab stem: parameters}. A file whose content would not change is not rewritten,
    so the book (which links the student edition) stays incremental.
    """
    import nbformat

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for lab in labs:
        text = nbformat.writes(edition(lab, kind, (params or {}).get(lab.stem)))
        target = lab.output(out)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


__all__ = ["EDITIONS", "REMOVED_TAGS", "edition", "set_parameters", "write"]
