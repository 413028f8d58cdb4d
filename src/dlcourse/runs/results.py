"""What a run produced, and its entry in the results store (`dlcourse.cache.Store`).

A Result holds the spec, the per-epoch history, the final metrics, per-step records, snapshots
and the safetensors weights (`model()` rebuilds the trained network). Entries are JSON, CSV and
safetensors; an entry that does not parse or does not describe its spec is a CorruptEntry.
"""

from __future__ import annotations

import io
import json
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from .. import models, train
from ..cache import HISTORY, METRICS, SNAPSHOTS, SPEC, STEPS, WEIGHTS, CacheWarning, CorruptEntry, Store
from ..settings import resolve_device
from .recipe import build_model
from .spec import RunSpec


@dataclass
class Result:
    """What one run produced. `model()` rebuilds the trained network from the stored weights."""

    spec: RunSpec
    key: str
    history: pd.DataFrame
    metrics: dict
    seconds: float
    env: dict
    steps: pd.DataFrame | None = None
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] = field(default_factory=list)
    path: Path | None = None
    cached: bool = False
    _weights: bytes | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        acc = self.metrics.get("test_acc")
        return (f"Result(key={self.key!r}, {self.spec.dataset} {self.spec.model} {self.spec.optimizer} "
                f"lr={self.spec.lr} seed={self.spec.seed}, test_acc={acc}, cached={self.cached})")

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self._weights is None:
            raise RuntimeError(f"run {self.key}: no stored weights")
        return st_load(self._weights)

    def model(self, device="cpu") -> nn.Module:
        """The trained model, rebuilt from the spec and the safetensors weights (eval mode)."""
        with torch.random.fork_rng(devices=[]):
            net = build_model(self.spec)
        net.load_state_dict(self.state_dict())
        return net.to(resolve_device(device)).eval()


def _env(device: torch.device, backend: str, fingerprint: str) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    return {"torch": torch.__version__, "python": platform.python_version(), "device": device.type,
            "device_name": name, "threads": torch.get_num_threads(), "backend": backend,
            "fingerprint": fingerprint, "created": time.time()}


def _metrics(spec: RunSpec, history: train.History, n_params: int) -> dict:
    final = {k: v for k, v in history.final.items() if k not in ("epoch", "seconds")}
    final = {k: float(v) for k, v in final.items()}
    return {**final, "epochs_run": int(len(history.epochs)), "n_params": int(n_params),
            "diverged": bool(history.diverged)}


def _entry_files(spec: RunSpec, key: str, history: train.History, model: nn.Module, seconds: float,
                 env: dict) -> dict[str, bytes]:
    metrics = _metrics(spec, history, models.count_parameters(model))
    files = {
        SPEC: json.dumps({"key": key, "spec": spec.to_dict(), "canonical": spec.canonical(),
                          "seconds": seconds, "env": env}, indent=1).encode(),
        METRICS: json.dumps(metrics, indent=1).encode(),
        HISTORY: history.epochs.to_csv(index=False).encode(),
        WEIGHTS: st_save({k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}),
    }
    if history.steps is not None:
        files[STEPS] = history.steps.to_csv(index=False).encode()
    if history.snapshots:
        files[SNAPSHOTS] = st_save({f"{step:09d}/{name}": t.contiguous() for step, snap in history.snapshots
                                    for name, t in snap.items()})
    return files


#: pandas 3 parses floats round-trip by default (and deprecates asking); pandas 2 must be asked.
_CSV_FLOATS = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def _read_csv(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), **_CSV_FLOATS)


def _parse_entry(spec: RunSpec, key: str, files: dict[str, bytes], path: Path) -> Result:
    """A Result from an entry's bytes; CorruptEntry if any part does not parse or fit the spec."""
    try:
        meta = json.loads(files[SPEC])
        if meta.get("key") != key or meta.get("canonical") != json.loads(json.dumps(spec.canonical())):
            raise CorruptEntry(f"{SPEC} describes another run")
        snapshots: dict[int, dict] = {}
        if SNAPSHOTS in files:
            for name, t in st_load(files[SNAPSHOTS]).items():
                step, pname = name.split("/", 1)
                snapshots.setdefault(int(step), {})[pname] = t
        if WEIGHTS not in files:
            raise CorruptEntry(f"{WEIGHTS} is missing")
        return Result(spec=spec, key=key, history=_read_csv(files[HISTORY]), metrics=json.loads(files[METRICS]),
                      seconds=float(meta["seconds"]), env=meta["env"],
                      steps=_read_csv(files[STEPS]) if STEPS in files else None,
                      snapshots=sorted(snapshots.items()), path=path, cached=True, _weights=files[WEIGHTS])
    except CorruptEntry:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure means the entry is unusable
        raise CorruptEntry(f"entry does not parse ({type(exc).__name__}: {exc})") from None


def _lookup(store: Store, spec: RunSpec, key: str) -> tuple[Result | None, str | None]:
    """(Result, None) on a hit, (None, None) on a miss, (None, reason) for a corrupt entry."""
    try:
        files = store.read(key)
        return (None, None) if files is None else (_parse_entry(spec, key, files, store.path(key)), None)
    except CorruptEntry as exc:
        return None, str(exc)
    except OSError as exc:  # removed or replaced while we read it
        return None, f"unreadable ({exc})"


def _warn_corrupt(store: Store, key: str, reason: str) -> None:
    warnings.warn(f"dlcourse cache: entry {key} in {store.root} is partial or corrupt ({reason}); recomputing it",
                  CacheWarning, stacklevel=3)


def _store(store: Store, spec: RunSpec, key: str, history: train.History, model: nn.Module, seconds: float,
           env: dict) -> Result:
    return _store_files(store, spec, key, _entry_files(spec, key, history, model, seconds, env))


def _store_files(store: Store, spec: RunSpec, key: str, files: dict[str, bytes]) -> Result:
    """Write an entry's bytes (made here or by a Ray worker) atomically and return its Result."""
    path = store.write(key, files)
    result = _parse_entry(spec, key, files, path)  # read back, so a later hit returns the same frames
    result.cached = False
    return result



__all__ = ["Result"]
