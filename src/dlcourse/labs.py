"""The lab notebooks: find them, resolve the parameters one lab gets, refuse names it does not declare.

A lab is `notebooks/labNN_<name>.ipynb`. Its parameters come, later ones winning, from a
profile's top-level values, the profile's section named after the lab, `-f` YAML files and
`-p key=value` pairs; `params_yaml` writes them flat, so that plain papermill (`-f`) runs
exactly what `dlcourse labs run` runs. A parameter the lab's `parameters` cell does not
declare is an error naming the closest declared names, both here (before anything runs) and
inside the kernel (`check_parameters`, first line of every lab's validation cell), so that
plain papermill refuses a misspelled `-p epoch 3` too. Executing a lab: `dlcourse.execution`.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

_LAB_RE = re.compile(r"^lab(\d+)_([A-Za-z0-9_]+)\.ipynb$")


@dataclass(frozen=True)
class Lab:
    """One lab notebook: `number` 1 and `name` "depth" for notebooks/lab01_depth.ipynb."""

    number: int
    name: str
    path: Path

    @property
    def stem(self) -> str:
        return self.path.stem

    def output(self, out_dir: str | os.PathLike) -> Path:
        return Path(out_dir) / self.path.name


# ----------------------------------------------------------------------------- discovery

def default_root() -> Path:
    """The course checkout: the cwd when it holds notebooks/, else the package's own checkout."""
    cwd = Path.cwd()
    if (cwd / "notebooks").is_dir():
        return cwd
    from .settings import project_root

    return project_root()


def discover(root: str | os.PathLike | None = None) -> list[Lab]:
    """All `notebooks/labNN_<name>.ipynb` under `root`, in lab order."""
    folder = Path(root or default_root()) / "notebooks"
    labs = []
    for path in folder.glob("lab*.ipynb"):
        match = _LAB_RE.match(path.name)
        if match:
            labs.append(Lab(int(match.group(1)), match.group(2), path))
    return sorted(labs, key=lambda lab: (lab.number, lab.name))


def select(names: list[str] | None, labs: list[Lab]) -> list[Lab]:
    """Labs matching each name: the short name, the file stem, the number, or a unique substring."""
    if not names:
        return list(labs)
    chosen: list[Lab] = []
    for name in names:
        key = name.lower().removesuffix(".ipynb")
        exact = [lab for lab in labs if key in (lab.name, lab.stem) or (key.isdigit() and int(key) == lab.number)]
        hits = exact or [lab for lab in labs if key in lab.stem.lower()]
        if len(hits) != 1:
            known = ", ".join(lab.name for lab in labs) or "(none found)"
            why = "matches several labs" if hits else "matches no lab"
            raise ValueError(f"lab {name!r} {why}; labs: {known}")
        if hits[0] not in chosen:
            chosen.append(hits[0])
    return chosen


# ----------------------------------------------------------------------------- parameters

def profile_path(profile: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """`smoke` -> notebooks/profiles/smoke.yml; a path to a YAML file is taken as it is."""
    as_path = Path(profile)
    if as_path.suffix in (".yml", ".yaml") and as_path.exists():
        return as_path
    path = Path(root or default_root()) / "notebooks" / "profiles" / f"{profile}.yml"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yml"))
        raise ValueError(f"profile={str(profile)!r} not found ({path}); choose one of: {', '.join(known)}")
    return path


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2 floats: PyYAML alone reads `lr: 1e-3` as the string "1e-3"."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*\.?[\d_]*(?:[eE][-+]?\d+)?|\.[\d_]+(?:[eE][-+]?\d+)?|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def _load_yaml(path: str | os.PathLike) -> dict:
    with open(path) as f:
        data = yaml.load(f, Loader=_Loader) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of parameter names to values, got {type(data).__name__}")
    return data


def _layer(data: dict, lab: Lab) -> dict:
    """A parameter file's values for `lab`: its top-level values, then its section named after the lab.

    Every top-level mapping is a section (of this lab or another), never a parameter value.
    """
    values = {k: v for k, v in data.items() if not isinstance(v, dict)}
    section = data.get(lab.name) or {}
    if not isinstance(section, dict):
        raise ValueError(f"section {lab.name!r} must be a mapping of parameters, got {section!r}")
    return {**values, **section}


def parse_override(text: str) -> tuple[str, object]:
    """`key=value` with the value read as a YAML scalar (3, 0.1, 1e-3, true, null, adam).

    As with `papermill -p`, anything that is not a scalar stays a string: lists belong in a
    `-f` YAML file, and a string where a list is expected fails in the lab's validation cell.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(f"-p {text!r}: expected key=value with a Python identifier as key")
    try:
        value = yaml.load(raw, Loader=_Loader) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if not (value is None or isinstance(value, (bool, int, float, str))):
        value = raw
    return key, value


def resolve_parameters(lab: Lab, profile: str | os.PathLike | None = "laptop",
                       files: list[str | os.PathLike] = (), overrides: list[str] | dict = (),
                       root: str | os.PathLike | None = None) -> dict:
    """The parameters `lab` runs with: profile < profile section < each -f file < -p overrides."""
    params: dict = {}
    if profile is not None:
        params.update(_layer(_load_yaml(profile_path(profile, root)), lab))
    for file in files:
        params.update(_layer(_load_yaml(file), lab))
    if isinstance(overrides, dict):
        params.update(overrides)
    else:
        params.update(parse_override(item) for item in overrides)
    return params


# ----------------------------------------------------------------------------- strict names

INJECTED_HEADER = "# Parameters"  # the first line of the cell papermill injects
_PAPERMILL_NAMES = ("PAPERMILL_",)  # papermill's own --inject-paths parameters


def assigned_names(source: str) -> dict[str, str] | None:
    """{name: value source} of a cell made only of assignments (a parameters cell), else None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            return None
        if not all(isinstance(t, ast.Name) for t in targets):
            return None
        for target in targets:
            names[target.id] = ast.get_source_segment(source, node.value) if node.value is not None else ""
    return names


def declared_parameters(lab: Lab) -> list[str]:
    """The names the lab's `parameters` cell assigns, in order."""
    with open(lab.path) as f:
        cells = json.load(f)["cells"]
    for cell in cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            names = assigned_names(source)
            if names is None:
                raise ValueError(f"{lab.path}: the parameters cell must hold assignments only")
            return list(names)
    raise ValueError(f"{lab.path}: no cell is tagged 'parameters'")


def unknown_parameters(given: dict[str, str], declared: list[str], where: str) -> str | None:
    """The error for names in `given` ({name: value text}) that `declared` lacks, or None."""
    lines = []
    for name, value in given.items():
        if name in declared or name.startswith(_PAPERMILL_NAMES):
            continue
        close = difflib.get_close_matches(name, declared, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}?" if close else f"its parameters are: {', '.join(declared)}"
        lines.append(f"{name}={value} is not a parameter of {where}; {hint}")
    return "\n".join(lines) or None


def check_names(lab: Lab, params: dict) -> None:
    """ValueError naming each parameter that `lab` does not declare (before any kernel starts)."""
    error = unknown_parameters({k: repr(v) for k, v in params.items()}, declared_parameters(lab), lab.stem)
    if error:
        raise ValueError(error)


def check_parameters() -> None:
    """Inside a lab (first line of its validation cell): refuse what papermill injected but the lab does not declare.

    Papermill runs the `parameters` cell, then its injected cell (which starts with
    "# Parameters"), so the kernel's input history holds both; this compares their names.
    Without an injected cell (JupyterLab) there is nothing to check.
    """
    from IPython import get_ipython

    shell = get_ipython()
    history = list(shell.history_manager.input_hist_raw) if shell is not None else []
    for i in range(len(history) - 1, 0, -1):
        if history[i].lstrip().startswith(INJECTED_HEADER):
            injected, declared = assigned_names(history[i]), assigned_names(history[i - 1])
            if injected is None or declared is None:  # cells run out of order: nothing to compare
                return
            error = unknown_parameters(injected, list(declared), "this lab")
            if error:
                raise ValueError(error)
            return


def params_yaml(params: dict) -> str:
    """One lab's flat parameters as YAML that `papermill -f` reads back to the same values."""
    return yaml.safe_dump(params, sort_keys=False, allow_unicode=True)
