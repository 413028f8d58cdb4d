"""Find, parameterize and execute the lab notebooks with papermill.

A lab is `notebooks/labNN_<name>.ipynb`. Its parameters come, later ones winning, from a
profile's top-level values, the profile's section named after the lab, `-f` YAML files and
`-p key=value` pairs. The executed copy goes to `book/labs/` through a temporary file and a
rename, so a failed or killed run never leaves a notebook that the book would publish, and
it carries a stamp (source cells + parameters + package code) that tells `dlcourse book`
whether it is still current. Notebooks run with the project root as working directory
(so `./data` and `.cache/` mean the same as everywhere else), in a kernel of this Python.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

STAMP_KEY = "dlcourse"  # notebook metadata key holding the stamp
# Cells shown collapsed in the book, with the label of their toggle.
HIDDEN_TAGS = {"parameters": "Show the lab's default parameters",
               "injected-parameters": "Show the parameters of this run"}
DEFAULT_TIMEOUT = 3600  # seconds per cell; the full profile may need --timeout 0 (none)
_LAB_RE = re.compile(r"^lab(\d+)_([A-Za-z0-9_]+)\.ipynb$")


class LabError(RuntimeError):
    """A lab failed: names the lab, the cell (index and first source line) and the notebook's exception."""

    def __init__(self, message: str, *, lab: str = "", cell_index: int | None = None, source: str = "",
                 ename: str = "", evalue: str = ""):
        super().__init__(message)
        self.lab, self.cell_index, self.source, self.ename, self.evalue = lab, cell_index, source, ename, evalue


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


def read_stamp(path: str | os.PathLike) -> str | None:
    """The stamp of an executed notebook, or None when it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)["metadata"][STAMP_KEY]["stamp"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_stale(lab: Lab, params: dict, out_dir: str | os.PathLike, fingerprint: str | None = None) -> bool:
    """True when the executed copy is missing or was made from other cells, parameters or code."""
    return read_stamp(lab.output(out_dir)) != stamp(lab, params, fingerprint)


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


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return lines[0].strip() if lines else ""


def _finish(nb, lab: Lab, params: dict, stamp_value: str, profile: str | None):
    """Collapse the parameter cells in the book and record how the notebook was made."""
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        labels = [HIDDEN_TAGS[t] for t in tags if t in HIDDEN_TAGS]
        if cell.cell_type == "code" and labels:
            if "hide-input" not in tags:
                tags.append("hide-input")
            cell.metadata.setdefault("mystnb", {})["code_prompt_show"] = labels[-1]
    nb.metadata[STAMP_KEY] = {"stamp": stamp_value, "lab": lab.stem, "profile": profile,
                              "parameters": json.loads(json.dumps(params, default=str))}
    return nb


def execute(lab: Lab, params: dict, out_dir: str | os.PathLike, *, root: str | os.PathLike | None = None,
            timeout: float | None = DEFAULT_TIMEOUT, progress: bool = False, profile: str | None = None,
            fingerprint: str | None = None) -> Path:
    """Execute `lab` with `params` into `out_dir/<lab file>`; raise LabError naming the failing cell.

    Papermill writes its progress into a hidden temporary file beside the target, which is
    renamed over the target only after every cell ran. On failure the temporary file and any
    older executed copy are removed, so no notebook is left that the parameters did not produce.
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = lab.output(out_dir)
    stamp_value = stamp(lab, params, fingerprint)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{lab.stem}.", suffix=".tmp.ipynb", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            nb = papermill.execute_notebook(
                str(lab.path), str(tmp), parameters=params, kernel_name=kernel_name(),
                cwd=str(Path(root or default_root()).resolve()), progress_bar=progress,
                execution_timeout=timeout or None, start_timeout=120,
                # The kernel's own log (not the notebook's output): quiet its warning about
                # unencrypted TCP on localhost, printed on every start.
                extra_arguments=["--IPKernelApp.log_level=ERROR"])
        except PapermillExecutionError as exc:
            line = _first_line(exc.source)
            raise LabError(f"{lab.stem} failed in cell {exc.cell_index} ({line!r}): {exc.ename}: {exc.evalue}",
                           lab=lab.stem, cell_index=exc.cell_index, source=exc.source,
                           ename=exc.ename, evalue=exc.evalue) from None
        except Exception as exc:  # kernel died, cell timed out, notebook unreadable, ...
            raise LabError(f"{lab.stem} failed: {type(exc).__name__}: {exc}", lab=lab.stem,
                           ename=type(exc).__name__, evalue=str(exc)) from exc
        nbformat.write(_finish(nb, lab, params, stamp_value, profile), tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private; the book is not
        os.replace(tmp, target)
        return target
    except BaseException:
        tmp.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- command line

def _out_dir(args) -> Path:
    return Path(args.out) if args.out else Path(args.root) / "book" / "labs"


def _list(args) -> int:
    labs = discover(args.root)
    out_dir = _out_dir(args)
    for lab in labs:
        target = lab.output(out_dir)
        made = json.loads(target.read_text())["metadata"].get(STAMP_KEY, {}) if target.exists() else {}
        state = f"executed ({made.get('profile') or '?'} profile)" if made else "not executed"
        print(f"{lab.number:2d}  {lab.name:16s} {lab.path.relative_to(args.root)}  {state}")
    if not labs:
        print(f"no labs found under {Path(args.root) / 'notebooks'}")
    return 0


def exit_on_sigterm() -> None:
    """Turn SIGTERM (kill, CI timeouts) into SystemExit so that temporaries and kernels are cleaned up."""
    import signal

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _run(args) -> int:
    exit_on_sigterm()
    labs = discover(args.root)
    chosen = select(args.names, labs)
    if not chosen:
        raise ValueError(f"no labs found under {Path(args.root) / 'notebooks'}")
    fingerprint = code_fingerprint()
    for lab in chosen:
        params = resolve_parameters(lab, args.profile, args.file, args.param, root=args.root)
        print(f"{lab.stem}: running with profile {args.profile} ...", flush=True)
        start = time.perf_counter()
        target = execute(lab, params, _out_dir(args), root=args.root, timeout=args.timeout,
                         progress=not args.quiet, profile=str(args.profile), fingerprint=fingerprint)
        print(f"{lab.stem}: done in {time.perf_counter() - start:.0f} s -> {target}", flush=True)
    return 0


def add_common(parser) -> None:
    """Options shared by `labs run` and `book`: where the course is, which profile."""
    parser.add_argument("--root", default=None, help="course checkout (default: the cwd if it holds notebooks/)")
    parser.add_argument("--profile", default="laptop",
                        help="smoke, laptop (default), full, or a path to a YAML parameter file")


def register(sub) -> None:
    """`dlcourse labs list` and `dlcourse labs run`."""
    labs = sub.add_parser("labs", help="list and execute the lab notebooks")
    labs_sub = labs.add_subparsers(dest="labs_command", required=True)

    lst = labs_sub.add_parser("list", help="the labs found, and whether an executed copy exists")
    lst.add_argument("--root", default=None, help="course checkout (default: the cwd if it holds notebooks/)")
    lst.add_argument("--out", default=None, help="executed notebooks (default: <root>/book/labs)")
    lst.set_defaults(func=lambda a: _list(_rooted(a)))

    run = labs_sub.add_parser("run", help="execute labs with papermill into book/labs/")
    run.add_argument("names", nargs="*", metavar="NAME", help="labs to run (short name, number or substring; default: all)")
    add_common(run)
    run.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override one parameter (a YAML scalar; lists go in a -f file)")
    run.add_argument("-f", "--file", action="append", default=[], metavar="PARAMS.yml",
                     help="YAML file of parameters (top-level keys, and a section per lab)")
    run.add_argument("--out", default=None, help="where executed notebooks go (default: <root>/book/labs)")
    run.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                     help=f"seconds allowed per cell (default {DEFAULT_TIMEOUT}; 0: no limit)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=lambda a: _run(_rooted(a)))


def _rooted(args):
    args.root = Path(args.root) if args.root else default_root()
    return args
