"""The Ray backend of `sweep`: each batch (a stack, or one spec alone) is a Ray task.

Why this shape: workers need no shared filesystem and no copy of the course. The driver ships
the package's code with the task (`runtime_env` py_modules); the worker trains with it, checks
that its code fingerprint and every key equal the driver's (a mismatch is an error, never a
silent reuse of another code's result) and returns the cache entry's bytes; the driver writes
each entry into its own cache, atomically, as soon as its task finishes, so a killed driver
resumes from the cache. A task whose worker dies is retried (`max_retries`). Workers read data
from their own data root ($DLCOURSE_DATA, data/) or download it through $DLCOURSE_MIRROR, which
the driver forwards when it is set.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ..cache import Store
from ..settings import resolve_device
from . import fingerprint
from .results import Result, _lookup, _store_files
from .spec import RunSpec

#: Retries of a task whose worker process died (Ray's `max_retries`).
MAX_RETRIES = 3
#: The share of one GPU a task asks for when its specs train on CUDA.
GPU_SHARE = 0.25
PACKAGE = Path(__file__).resolve().parents[1]


class FingerprintMismatch(RuntimeError):
    """A worker's training code is not the driver's: its results would be filed under wrong keys."""


def runtime_env() -> dict:
    """The package's code (py_modules) and the download mirror, for every task."""
    env = {"py_modules": [str(PACKAGE)], "excludes": ["__pycache__", "*.pyc"]}
    if os.environ.get("DLCOURSE_MIRROR"):
        env["env_vars"] = {"DLCOURSE_MIRROR": os.environ["DLCOURSE_MIRROR"]}
    return env


def connect(address: str | None = None):
    """The `ray` module, connected to `address`, else $RAY_ADDRESS, else a new local Ray.

    The package's code travels as the job's runtime_env (Ray uploads local folders only at
    `ray.init`); a Ray this process had already started keeps its own, and the fingerprint check
    in each task says whether its workers run our code."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("backend='ray' needs Ray: pip install -e \".[ray]\"") from None
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        local = {} if address else {"include_dashboard": False, "num_cpus": os.cpu_count()}
        ray.init(address=address, runtime_env=runtime_env(), log_to_driver=False, configure_logging=False,
                 **local)
    return ray


def _shipped(spec: RunSpec) -> dict:
    """The spec as the worker gets it: "auto" resolved here, so the worker trains on the device
    the key was made for (a GPU worker would otherwise pick CUDA for a CPU key)."""
    d = spec.to_dict()
    if d["device"] == "auto":
        d["device"] = resolve_device("auto").type
    return d


def train_batch(spec_dicts: list[dict], keys: list[str], expected: str, threads: int,
                root: str | None) -> list[tuple[str, dict[str, bytes]]]:
    """The task: train `spec_dicts` (alone or as one stack) and return each (key, entry bytes)."""
    import torch

    from . import recipe
    from .results import _entry_files, _env

    torch.set_num_threads(threads)
    here = fingerprint.code_fingerprint()
    host = socket.gethostname()
    if here != expected:
        raise FingerprintMismatch(f"code_fingerprint={here!r} (worker on {host}) is not valid; the driver's is "
                                  f"{expected!r}: the worker runs other training code than the driver")
    specs = [RunSpec.from_dict(d) for d in spec_dicts]
    for spec, key in zip(specs, keys):
        if fingerprint.spec_key(spec, here) != key:
            raise FingerprintMismatch(f"key={fingerprint.spec_key(spec, here)!r} (worker on {host}) is not valid; "
                                      f"the driver's is {key!r} for the same spec")
    if len(specs) == 1:
        history, model, seconds = recipe.train_one(specs[0], root)
        histories, members = [history], [model]
    else:
        histories, members, seconds = recipe.train_stack(specs, root)
    env = {**_env(resolve_device(specs[0].device), "ray", here), "host": host}
    if len(specs) > 1:
        env["stack_size"] = len(specs)
    return [(k, _entry_files(s, k, h, m, seconds, env)) for s, k, h, m in zip(specs, keys, histories, members)]


def train_batches(cut: list[list[str]], unique: dict[str, RunSpec], store: Store, bar, *, root=None,
                  threads: int | None = None, address: str | None = None,
                  retries: int = MAX_RETRIES, force: bool = False) -> dict[str, Result]:
    """Submit every batch as a task, then write each finished one into `store` as it arrives."""
    if not cut:
        return {}
    ray = connect(address)
    threads = threads or 1
    expected = fingerprint.code_fingerprint()
    task = ray.remote(train_batch)
    pending = {}
    for batch in cut:
        specs = [unique[k] for k in batch]
        gpus = GPU_SHARE if resolve_device(specs[0].device).type == "cuda" else 0
        ref = task.options(num_cpus=threads, num_gpus=gpus, max_retries=retries,
                           name="dlcourse.train_batch").remote([_shipped(s) for s in specs], batch, expected, threads,
                                                               None if root is None else str(root))
        pending[ref] = batch
    slots = max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
    out: dict[str, Result] = {}
    try:
        while pending:
            bar.advance(0, running=sum(len(b) for b in list(pending.values())[:slots]))
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            batch = pending.pop(ref)
            try:
                entries = ray.get(ref)
            except FingerprintMismatch:
                raise
            except ray.exceptions.RayError as exc:
                raise RuntimeError(f"a Ray task of {len(batch)} run(s) failed after {retries} retries: "
                                   f"{type(exc).__name__}: {exc}") from exc
            for key, files in entries:
                out[key] = _keep_or_store(store, unique[key], key, files, force)
            bar.advance(len(batch))
    finally:
        for ref in pending:  # an error or Ctrl-C: what is written stays, the rest is cancelled
            ray.cancel(ref, force=True)
    bar.advance(0, running=0)
    return out


def _keep_or_store(store: Store, spec: RunSpec, key: str, files: dict[str, bytes], force: bool) -> Result:
    """Write a worker's entry under the key's lock, as the local backend writes its own: a
    process that trained the same key meanwhile (a second sweep on this cache) is not raced, and
    the good entry it wrote is kept rather than replaced (unless `force`: retrain and overwrite)."""
    with store.lock(key):
        kept, _ = (None, None) if force else _lookup(store, spec, key)
        if kept is not None:
            kept.cached = False  # trained in this sweep, by a worker
            return kept
        return _store_files(store, spec, key, files)


__all__ = ["train_batches", "train_batch", "connect", "runtime_env", "FingerprintMismatch", "MAX_RETRIES",
           "GPU_SHARE"]
