"""Runs: a frozen spec per training, a code-aware results cache, and resumable sweeps.

`run(spec)` trains once and then answers from the cache; `sweep(specs)` runs many, one by one
or stacked. The cache key hashes the canonical spec *and* a fingerprint of the dlcourse source
that training depends on, so editing `train.py` re-runs what it affects while editing plots,
the CLI or a docstring re-runs nothing. A cache hit loads no data and builds no model.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import io
import json
import math
import os
import platform
import sys
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from . import data as data_mod
from . import models, stacked, train, validate
from . import optim as optim_mod
from .cache import HISTORY, METRICS, SNAPSHOTS, SPEC, STEPS, WEIGHTS, CacheWarning, CorruptEntry, Store
from .settings import resolve_device

IMAGE_DATASETS = tuple(data_mod.DATASETS)
DATASETS = IMAGE_DATASETS + tuple(data_mod.FUNCTIONS)
MODELS = ("mlp", "cnn")
#: Sample points of the 1-D targets when `train_size` is not given, and of their evaluation grid.
FUNCTION_TRAIN_SIZE = 1000
FUNCTION_TEST_SIZE = 4000
#: Modules whose source decides what a run produces; editing any of them invalidates the cache.
FINGERPRINT_MODULES = ("data", "models", "optim", "train", "stacked", "runs", "validate", "settings")
BACKENDS = ("local", "stacked")


# -- the spec ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """One training, fully described and validated on construction.

    Field groups: data (dataset .. test_size), model (model .. init; `hidden` for MLPs,
    `channels`/`dense`/`pool` for CNNs), optimization (optimizer .. seed), what to record, and
    the device. `loss=None` means "ce" for the image sets and "mse" for "sinc"/"sign".
    """

    dataset: str = "fashion-mnist"
    train_size: int | None = None
    val_size: int = 0
    test_size: int | None = None
    random_labels: bool = False
    model: str = "mlp"
    hidden: tuple[int, ...] = (100,)
    channels: tuple[int, ...] = (32, 64)
    dense: tuple[int, ...] = (128,)
    pool: bool = True
    activation: str = "relu"
    batchnorm: bool = False
    dropout: float = 0.0
    init: str = "default"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    loss: str | None = None
    batch_size: int = 64
    epochs: int = 1
    seed: int = 0
    eval_test: bool = True
    record_grad_norm: bool = False
    record_steps: bool = False
    snapshot_every: int | None = None
    device: str = "auto"

    def __post_init__(self):
        put = functools.partial(object.__setattr__, self)
        put("dataset", validate.choice("dataset", self.dataset, DATASETS))
        put("model", validate.choice("model", self.model, MODELS))
        for name in ("hidden", "channels", "dense"):
            put(name, validate.int_list(name, getattr(self, name)))
        for name in ("random_labels", "pool", "batchnorm", "eval_test", "record_grad_norm", "record_steps"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} is not valid; it must be true or false")
        validate.positive_int("train_size", self.train_size, allow_none=True)
        validate.positive_int("test_size", self.test_size, allow_none=True)
        validate.non_negative_int("val_size", self.val_size)
        validate.non_negative_int("seed", self.seed)
        is_function = self.dataset in data_mod.FUNCTIONS
        if self.loss is None:
            put("loss", "mse" if is_function else "ce")
        if is_function:
            if self.model != "mlp":
                raise ValueError(f"model={self.model!r} is not valid for dataset={self.dataset!r}; choose one of: mlp")
            if self.random_labels:
                raise ValueError(f"random_labels=True is not valid for dataset={self.dataset!r}; it has no labels")
            if self.val_size:
                raise ValueError(f"val_size={self.val_size!r} is not valid for dataset={self.dataset!r}; choose 0 "
                                 f"(it is evaluated on a dense grid, test_size points)")
            if validate.choice("loss", self.loss, train.LOSSES) != "mse":
                raise ValueError(f"loss={self.loss!r} is not valid for dataset={self.dataset!r} (real-valued "
                                 f"targets); choose one of: mse")
        for name in ("optimizer", "activation", "init", "loss"):
            if isinstance(getattr(self, name), str):
                put(name, getattr(self, name).lower())
        train.check_fit_args(self.epochs, self.batch_size, self.optimizer, self.lr, self.momentum,
                             self.weight_decay, self.loss, self.snapshot_every)
        resolve_device(self.device)
        # The builders own the model and optimizer checks: build both on the meta device, which
        # costs no memory and draws no random numbers.
        with torch.device("meta"):
            model = build_model(self)
            optim_mod.make(self.optimizer, model.parameters(), lr=self.lr, momentum=self.momentum,
                           weight_decay=self.weight_decay)
        for name in ("lr", "momentum", "weight_decay", "dropout"):  # 1 and 1.0 give one key
            put(name, float(getattr(self, name)))

    @classmethod
    def from_dict(cls, d: Mapping) -> "RunSpec":
        """A spec from what YAML or papermill give: lists for tuples, "1e-3" strings for numbers."""
        if not isinstance(d, Mapping):
            raise ValueError(f"spec={d!r} is not valid; it must be a mapping of field names to values")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = [k for k in d if k not in names]
        if unknown:
            raise ValueError(f"{unknown[0]}={d[unknown[0]]!r} is not valid: there is no such RunSpec field; "
                             f"choose among: {', '.join(names)}")
        return cls(**{k: _coerce(k, v, names[k].type) for k, v in d.items()})

    def replace(self, **changes) -> "RunSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Every field as plain JSON types (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def canonical(self) -> dict:
        """What decides the result: the fields without those the model or optimizer ignores,
        and the resolved device type (cpu vs cuda) instead of "auto"."""
        d = self.to_dict()
        for name in (("channels", "dense", "pool") if self.model == "mlp" else ("hidden",)):
            d.pop(name)
        if self.optimizer not in ("momentum", "nesterov"):
            d.pop("momentum")
        if self.is_function:
            d["train_size"] = self.train_size or FUNCTION_TRAIN_SIZE
            d["test_size"] = self.test_size or FUNCTION_TEST_SIZE
        d["device"] = resolve_device(self.device).type
        return d

    @property
    def key(self) -> str:
        """Stable hash of the canonical spec and the training code's fingerprint."""
        return spec_key(self)

    @property
    def is_function(self) -> bool:
        return self.dataset in data_mod.FUNCTIONS

    @property
    def in_features(self) -> int:
        return 1 if self.is_function else 784

    @property
    def out_features(self) -> int:
        return 1 if self.is_function else len(data_mod.DATASETS[self.dataset].classes)


def _coerce(name: str, value, type_str):
    """Loosen what YAML/papermill hand over: lists -> tuples, numeric strings -> numbers."""
    t = str(type_str)
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, str):
        text = value.strip()
        if "float" in t or ("int" in t and "tuple" not in t):
            if text.lower() in ("none", "null") and "None" in t:
                return None
            try:
                number = float(text)
            except ValueError:
                return value  # the spec's own check names the field and what is allowed
            if "int" in t and "float" not in t:
                return int(number) if number.is_integer() else value
            return number
        if t == "bool" and text.lower() in ("true", "false"):
            return text.lower() == "true"
    if isinstance(value, float) and "int" in t and "float" not in t and "tuple" not in t and value.is_integer():
        return int(value)
    return value


def as_spec(spec) -> RunSpec:
    return spec if isinstance(spec, RunSpec) else RunSpec.from_dict(spec)


def build_model(spec: RunSpec) -> nn.Sequential:
    """The untrained model of `spec` (random draws from torch's global generator)."""
    common = dict(activation=spec.activation, batchnorm=spec.batchnorm, dropout=spec.dropout, init=spec.init)
    if spec.model == "mlp":
        return models.mlp(spec.hidden, in_features=spec.in_features, out_features=spec.out_features, **common)
    return models.cnn(spec.channels, spec.dense, pool=spec.pool, out_features=spec.out_features, **common)


# -- the code fingerprint and the key -----------------------------------------------------------
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

    Tests replace this function (`monkeypatch.setattr(runs, "code_fingerprint", ...)`).
    """
    pkg = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in FINGERPRINT_MODULES:
        path = pkg / f"{name}.py"
        st = path.stat()
        h.update(f"{name}:{_source_digest(str(path), st.st_mtime_ns, st.st_size)}\n".encode())
    return h.hexdigest()[:16]


def spec_key(spec: RunSpec, fingerprint: str | None = None) -> str:
    fingerprint = code_fingerprint() if fingerprint is None else fingerprint
    text = json.dumps({"spec": spec.canonical(), "code": fingerprint}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- results ----------------------------------------------------------------------------------
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
    files = _entry_files(spec, key, history, model, seconds, env)
    path = store.write(key, files)
    result = _parse_entry(spec, key, files, path)  # read back, so a later hit returns the same frames
    result.cached = False
    return result


# -- data, loaded lazily and kept in-process ----------------------------------------------------
_DATA: OrderedDict = OrderedDict()
_DATA_SLOTS = 4


def load_data(spec: RunSpec, root=None) -> data_mod.Dataset:
    """The data of `spec`, loaded once per process (random labels are applied per seed on top)."""
    device = resolve_device(spec.device)
    slot = (spec.dataset, spec.train_size, spec.val_size, spec.test_size, str(device),
            None if root is None else str(root), os.environ.get("DLCOURSE_DATA"))
    ds = _DATA.get(slot)
    if ds is None:
        if spec.is_function:
            n = spec.train_size or FUNCTION_TRAIN_SIZE
            ds = data_mod.Dataset(name=spec.dataset, classes=(), train=data_mod.function_data(spec.dataset, n, device=device),
                                  test=data_mod.function_data(spec.dataset, spec.test_size or FUNCTION_TEST_SIZE,
                                                              device=device))
        else:
            ds = data_mod.load(spec.dataset, root, device=device, train_size=spec.train_size,
                               val_size=spec.val_size)
            if spec.test_size is not None:
                if spec.test_size > len(ds.test):
                    raise ValueError(f"test_size={spec.test_size} is not valid; {spec.dataset} has "
                                     f"{len(ds.test)} test images")
                pick = torch.randperm(len(ds.test), generator=torch.Generator().manual_seed(0))[:spec.test_size]
                ds = dataclasses.replace(ds, test=data_mod.Split(ds.test.x[pick.to(device)], ds.test.y[pick.to(device)]))
        _DATA[slot] = ds
        while len(_DATA) > _DATA_SLOTS:
            _DATA.popitem(last=False)
    _DATA.move_to_end(slot)
    if spec.random_labels:  # as data.load(random_labels=True, seed=seed) does, sharing the images
        ds = dataclasses.replace(ds, train=data_mod.Split(ds.train.x, data_mod.shuffle_labels(ds.train.y, spec.seed)))
    return ds


def _eval_sets(spec: RunSpec, ds: data_mod.Dataset) -> dict:
    return {k: v for k, v in ds.eval_sets().items() if k != "test" or spec.eval_test}


# -- one run ----------------------------------------------------------------------------------
_TRAINED = {"local": 0, "stacked": 0}  # training calls made by this process (tests read it)


def _train_local(spec: RunSpec, key: str, store: Store, root, progress: bool) -> Result:
    ds = load_data(spec, root)
    device = resolve_device(spec.device)
    torch.manual_seed(spec.seed)
    model = build_model(spec)
    start = time.perf_counter()
    history = train.fit(model, ds.train, epochs=spec.epochs, batch_size=spec.batch_size, optimizer=spec.optimizer,
                        lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay, loss=spec.loss,
                        seed=spec.seed, device=device, eval_sets=_eval_sets(spec, ds),
                        record_steps=spec.record_steps, record_grad_norm=spec.record_grad_norm,
                        snapshot_every=spec.snapshot_every, progress=progress, desc=f"run {key[:8]}")
    seconds = time.perf_counter() - start
    _TRAINED["local"] += 1
    return _store(store, spec, key, history, model, seconds, _env(device, "local", code_fingerprint()))


def run(spec: RunSpec | Mapping, force: bool = False, *, cache=None, root=None, progress: bool = False) -> Result:
    """Train `spec` (a RunSpec or a dict of its fields) or return its cached Result.

    `cache`: the cache folder (else $DLCOURSE_CACHE, else .cache/dlcourse); `root`: the data
    root; `force`: retrain and overwrite. A partial or corrupt entry is reported with a
    CacheWarning and recomputed. Concurrent processes asking for one spec train it once.
    """
    spec = as_spec(spec)
    store = Store(cache)
    key = spec.key
    reported = None
    if not force:
        result, reported = _lookup(store, spec, key)
        if result is not None:
            return result
    with store.lock(key):
        if not force:
            result, reason = _lookup(store, spec, key)
            if result is not None:
                return result
            if reason is not None and reported is None:
                reported = reason
        if reported is not None:
            _warn_corrupt(store, key, reported)
        return _train_local(spec, key, store, root, progress)


# -- sweeps -----------------------------------------------------------------------------------
def stack_group(spec: RunSpec) -> tuple | None:
    """Specs with equal groups can train as one stack (None: this spec cannot be stacked).

    Members may differ in seed, lr, momentum, weight decay and init scheme; everything else
    (data, shape, optimizer, batch size, epochs, what is recorded) must agree.
    """
    if spec.model != "mlp" or spec.batchnorm or spec.dropout:
        return None
    d = spec.canonical()
    for name in ("seed", "lr", "momentum", "weight_decay", "init"):
        d.pop(name, None)
    return tuple(sorted((k, json.dumps(v)) for k, v in d.items()))


def _train_stack(specs: list[RunSpec], keys: list[str], store: Store, root, progress: bool) -> list[Result]:
    first = specs[0]
    device = resolve_device(first.device)
    datasets = [load_data(s, root) for s in specs]
    members = []
    for s in specs:
        torch.manual_seed(s.seed)
        members.append(build_model(s))
    start = time.perf_counter()
    histories = stacked.fit_stacked(
        members, [d.train for d in datasets], epochs=first.epochs, batch_size=first.batch_size,
        optimizer=first.optimizer, lrs=[s.lr for s in specs], momentums=[s.momentum for s in specs],
        weight_decays=[s.weight_decay for s in specs], loss=first.loss, seeds=[s.seed for s in specs],
        device=device, eval_sets=_eval_sets(first, datasets[0]), record_steps=first.record_steps,
        record_grad_norm=first.record_grad_norm, snapshot_every=first.snapshot_every, progress=progress)
    seconds = (time.perf_counter() - start) / len(specs)
    _TRAINED["stacked"] += 1
    env = {**_env(device, "stacked", code_fingerprint()), "stack_size": len(specs)}
    return [_store(store, s, k, h, m, seconds, env) for s, k, h, m in zip(specs, keys, histories, members)]


def _row(result: Result) -> dict:
    return {"key": result.key, **dataclasses.asdict(result.spec), **result.metrics, "seconds": result.seconds,
            "cached": result.cached, "backend": result.env.get("backend"), "result": result}


def sweep(specs: Iterable[RunSpec | Mapping], backend: str = "local", *, force: bool = False, cache=None,
          root=None, progress: bool = True, max_stack: int = stacked.MAX_STACK) -> pd.DataFrame:
    """Run every spec (cache hits first) and return one row per spec: its fields, final metrics,
    seconds, `cached`, `backend` and `result` (the Result, whose `.history` is the per-epoch table;
    `histories(df)` stacks them all).

    `backend="stacked"` trains groups of same-shape MLPs (see `stack_group`) as one stacked
    model; everything else runs locally. Finished specs are cache hits, so a killed sweep
    resumes where it stopped. Every spec is validated before anything trains.
    """
    validate.choice("backend", backend, BACKENDS)
    validate.positive_int("max_stack", max_stack)
    if isinstance(specs, (str, bytes, Mapping)):
        raise ValueError(f"specs={specs!r} is not valid; it must be a list of RunSpecs or dicts")
    specs = [as_spec(s) for s in specs]
    store = Store(cache)
    store.clean_partial()
    keys = [s.key for s in specs]
    unique = dict(zip(keys, specs))
    results: dict[str, Result] = {}
    todo: dict[str, RunSpec] = {}
    corrupt: dict[str, str] = {}
    for key, spec in unique.items():
        result, reason = (None, None) if force else _lookup(store, spec, key)
        if result is not None:
            results[key] = result
        else:
            todo[key] = spec
            if reason:
                corrupt[key] = reason

    from tqdm.auto import tqdm

    counts = {"done": 0, "cached": len(results)}
    bar = tqdm(total=len(unique), initial=len(results), desc="sweep", unit="run", disable=not progress)

    def advance(n: int, cached: int = 0) -> None:
        counts["done"] += n - cached
        counts["cached"] += cached
        bar.update(n)
        bar.set_postfix(done=counts["done"], cached=counts["cached"], left=len(unique) - counts["done"] - counts["cached"])

    advance(0)
    try:
        batches: list[list[str]] = []
        if backend == "stacked":
            groups: dict[tuple, list[str]] = {}
            for key, spec in todo.items():
                group = stack_group(spec)
                if group is None:
                    batches.append([key])
                else:
                    groups.setdefault(group, []).append(key)
            for members in groups.values():
                batches += [members[i:i + max_stack] for i in range(0, len(members), max_stack)]
        else:
            batches = [[key] for key in todo]
        for batch in batches:
            if len(batch) == 1:
                key = batch[0]  # run() reports a corrupt entry itself
                before = sum(_TRAINED.values())
                results[key] = run(unique[key], force=force, cache=store.root, root=root)
                advance(1, cached=int(sum(_TRAINED.values()) == before))
                continue
            results.update(_run_stack([unique[k] for k in batch], batch, store, root, force, corrupt, advance))
    finally:
        bar.close()
    return pd.DataFrame([_row(results[k]) for k in keys])


def _run_stack(specs, keys, store: Store, root, force: bool, corrupt: dict, advance) -> dict[str, Result]:
    """Lock every member, drop those another process finished meanwhile, train the rest as one."""
    locks = [store.lock(k) for k in sorted(keys)]  # sorted: two sweeps never deadlock
    out: dict[str, Result] = {}
    for lock in locks:
        lock.acquire()
    try:
        left_specs, left_keys = [], []
        for spec, key in zip(specs, keys):
            result, reason = (None, None) if force else _lookup(store, spec, key)
            if result is not None:
                out[key] = result
                continue
            reason = corrupt.pop(key, None) or reason
            if reason:
                _warn_corrupt(store, key, reason)
            left_specs.append(spec)
            left_keys.append(key)
        if len(left_specs) == 1:
            out[left_keys[0]] = _train_local(left_specs[0], left_keys[0], store, root, progress=False)
        elif left_specs:
            out.update(zip(left_keys, _train_stack(left_specs, left_keys, store, root, progress=False)))
    finally:
        for lock in reversed(locks):
            lock.release()
    advance(len(keys), cached=len(keys) - len(left_keys))
    return out


def histories(df: pd.DataFrame) -> pd.DataFrame:
    """Every run's per-epoch history in one long table, with the run's key and spec fields
    (what seaborn wants: one row per run and epoch)."""
    frames = []
    for result in df["result"]:
        h = result.history.copy()
        for name, value in dataclasses.asdict(result.spec).items():
            h[name] = [value] * len(h) if isinstance(value, tuple) else value
        h["key"] = result.key
        frames.append(h)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


__all__ = ["RunSpec", "Result", "run", "sweep", "histories", "code_fingerprint", "spec_key", "build_model",
           "load_data", "stack_group", "CacheWarning"]
