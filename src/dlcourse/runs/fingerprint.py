"""The code fingerprint: a hash of the dlcourse modules that decide what a run produces.

A run's cache key hashes its canonical spec *and* this fingerprint, so editing `train.py`
re-runs what it affects, while editing plots, the command line, progress bars, sweep scheduling
or a docstring re-runs nothing (docstrings and comments are stripped before hashing).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from pathlib import Path

#: Modules (paths under dlcourse/, without .py) whose code decides what a run produces: the data,
#: the models, the optimizers (and the fast Adam step they use), the training loop, the stacking
#: engine, the names and init scale (vocabulary), and `runs.recipe` (a spec's data, model and the
#: call that trains it). Not: argument checks (validate, the spec's validation: they refuse, they
#: do not change a result), settings (paths, backend, threads; the device a run uses is in its
#: key already, as the spec's canonical form holds the resolved device type), the result store,
#: run/sweep scheduling, the command line, plots, progress bars.
FINGERPRINT_MODULES = ("data", "models", "optim", "fast/adam", "train", "stacked", "vocabulary", "runs/recipe")
PACKAGE = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=64)
def _source_digest(path: str, mtime_ns: int, size: int) -> str:
    """Hash of a module's code without docstrings and comments (so prose edits change nothing)."""
    tree = ast.parse(Path(path).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def code_fingerprint() -> str:
    """Hash of the dlcourse modules that training depends on (FINGERPRINT_MODULES).

    Tests replace this function (`monkeypatch.setattr(runs.fingerprint, "code_fingerprint", ...)`).
    """
    h = hashlib.sha256()
    for name in FINGERPRINT_MODULES:
        path = PACKAGE / f"{name}.py"
        st = path.stat()
        h.update(f"{name}:{_source_digest(str(path), st.st_mtime_ns, st.st_size)}\n".encode())
    return h.hexdigest()[:16]


def spec_key(spec, fingerprint: str | None = None) -> str:
    fingerprint = code_fingerprint() if fingerprint is None else fingerprint
    text = json.dumps({"spec": spec.canonical(), "code": fingerprint}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]



__all__ = ["FINGERPRINT_MODULES", "code_fingerprint", "spec_key"]
