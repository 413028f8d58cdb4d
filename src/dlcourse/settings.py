"""Where things live and what runs them: device, data root, cache root.

Each setting is an argument first, then an environment variable, then a default, so that
notebooks, CI and a student's laptop can all point the same code at different places.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from . import validate

DEVICES = ("auto", "cpu", "cuda", "mps")
#: Where a sweep trains: in this process ("local") or as tasks on a Ray cluster ("ray").
BACKENDS = ("local", "ray")
#: A file every run a lab asks for appends its key to, when set: `execution` sets it for a lab's
#: kernel and keeps the keys in the executed notebook (`dlcourse runs export --lab` reads them).
RUN_LOG = "DLCOURSE_RUN_LOG"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`auto` picks CUDA when present, else the CPU."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str) or not (device in DEVICES or device.startswith("cuda:")):
        raise ValueError(f"device={device!r} is not valid; choose one of: {', '.join(DEVICES)} (or cuda:N)")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available here; use device='auto' or 'cpu'")
    return torch.device(device)


def data_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """Places to look for data, in order: an explicit `root` alone, else $DLCOURSE_DATA, then data/.

    An explicit root is authoritative: a root that holds no data is not silently replaced by
    another. Relative paths resolve against the project root, so that `make`, papermill and
    JupyterLab (whose kernels run in notebooks/) all mean the checkout's data/.
    """
    def place(path) -> Path:
        path = Path(path).expanduser()
        return path if path.is_absolute() else project_root() / path

    if root is not None:
        return [place(root)]
    places = [place(os.environ["DLCOURSE_DATA"])] if os.environ.get("DLCOURSE_DATA") else []
    places.append(project_root() / "data")
    seen, unique = set(), []
    for p in places:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def project_root() -> Path:
    """The checkout holding pyproject.toml (for defaults such as .cache/), else the cwd."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "src" / "dlcourse").exists():
            return parent
    return Path.cwd()


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """Results cache: the argument, $DLCOURSE_CACHE, else .cache/dlcourse in the project."""
    if cache is not None:
        return Path(cache)
    if os.environ.get("DLCOURSE_CACHE"):
        return Path(os.environ["DLCOURSE_CACHE"])
    return project_root() / ".cache" / "dlcourse"


def backend(value: str | None = None) -> str:
    """Where sweeps train: the argument, $DLCOURSE_BACKEND, else "local" (labs read it this way,
    so `dlcourse book --backend ray` reaches their kernels through the environment)."""
    value = value or os.environ.get("DLCOURSE_BACKEND") or "local"
    return validate.choice("backend", value, BACKENDS)


def threads(value: int | None = None) -> int | None:
    """CPU threads per training: the argument, $DLCOURSE_THREADS, else None (torch's default).

    A Ray task asks for this many CPUs (1 when None) and uses as many threads, so that parallel
    runs never oversubscribe the cores; small models run fastest with 1 thread under load.
    """
    if value is None and os.environ.get("DLCOURSE_THREADS"):
        text = os.environ["DLCOURSE_THREADS"]
        value = int(text) if text.strip().isdigit() else text
    return validate.positive_int("threads", value, allow_none=True)


__all__ = ["resolve_device", "data_roots", "cache_root", "project_root", "backend", "threads", "BACKENDS",
           "RUN_LOG", "validate"]
