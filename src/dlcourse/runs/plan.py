"""Plan mode of `sweep` and `run`: what a lab would train and how long it would take, training nothing real.

When $DLCOURSE_PLAN names a file (`dlcourse book --plan` sets it for each lab's kernel), `sweep`
and `run` come here. They write nothing to the cache and append one JSON line per spec to that
file: its key, spec, whether the real cache holds it, the batch (a stack, or one run alone) it
would train in (cut by `schedule.batches`, the real sweep's one way to group), and that batch's
estimated seconds. A cached spec returns its real Result. Any other returns a *stand-in*: the
real spec and key with the history, steps, snapshots and weights of a shrunk copy (same model,
optimizer, batch size and epochs; two batches of training data; at most STANDIN_EVAL validation
and test samples), trained the way the real sweep would group it. So the lab's own code runs on
(it reads histories, rebuilds models, builds later specs from earlier results as lab 8's local
search does), and the plan comes from the notebooks, not from a second copy of their logic.

One estimator, measured on this machine for each batch: warm-up + epochs x (steps per epoch x
seconds per step + one evaluation pass over the real validation and test sets). Seconds per
step come from a short fit of the same shapes (same model, stack size, batch size and records;
CALIBRATION_STEPS steps, its second epoch, so warm-up is apart); the stand-in itself has too few
steps per epoch for that, since a fixed cost per epoch would dominate them. Calibrations are
kept per cost class for the life of the kernel.
"""

from __future__ import annotations

import json
import math
import os
import time

import torch

from .. import settings, stacked, train
from ..cache import Store
from ..settings import resolve_device
from . import fingerprint, recipe
from .results import Result, _entry_files, _env, _lookup, _parse_entry
from .schedule import PLAN, batches
from .spec import RunSpec

STANDIN_BATCHES = 2  # training batches per epoch of a stand-in
STANDIN_EVAL = 200  # validation and test samples of a stand-in, at most
CALIBRATION_STEPS = 32  # steps per epoch of the fit that times a step
_VARIES = ("seed", "lr", "momentum", "weight_decay", "init", "epochs", "train_size", "val_size", "test_size",
           "snapshot_every", "eval_test")

_standins: dict[str, tuple[Result, dict]] = {}  # key -> (stand-in, its record): a repeated ask trains once
_step_seconds: dict[tuple, tuple[float, float]] = {}  # cost class -> (seconds per stack step, warm-up)
_count = {"calls": 0, "batches": 0}


def active() -> bool:
    return bool(os.environ.get(PLAN))


def _write(lines: list[dict]) -> None:
    with open(os.environ[PLAN], "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))


def shrink(spec: RunSpec, n_train: int, n_test: int, steps_per_epoch: int) -> RunSpec:
    """The stand-in's spec: STANDIN_BATCHES batches of training data, small evaluation sets, and
    snapshots as many as the real run would take."""
    small = min(n_train, STANDIN_BATCHES * spec.batch_size)
    every = spec.snapshot_every
    if every:
        every = max(1, round(every * math.ceil(small / spec.batch_size) / steps_per_epoch))
    return spec.replace(train_size=small, val_size=min(spec.val_size, STANDIN_EVAL),
                        test_size=min(n_test, STANDIN_EVAL), snapshot_every=every)


def _cost_class(spec: RunSpec, k: int) -> tuple:
    d = spec.canonical()
    for name in _VARIES:
        d.pop(name, None)
    return k, json.dumps(d, sort_keys=True)


def _train(specs: list[RunSpec], root) -> tuple[list, list, float]:
    """(histories, models, seconds) of specs trained alone (one) or as one stack, as the sweep would."""
    if len(specs) == 1:
        history, model, seconds = recipe.train_one(specs[0], root)
        return [history], [model], seconds
    return recipe.train_stack(specs, root)


def _step(specs: list[RunSpec], n_train: int, root) -> tuple[float, float]:
    """(seconds per step of the whole batch, warm-up seconds), from a two-epoch fit of the same shapes."""
    k = len(specs)
    cls = _cost_class(specs[0], k)
    if cls not in _step_seconds:
        steps = min(CALIBRATION_STEPS, math.ceil(n_train / specs[0].batch_size))
        timed = [s.replace(train_size=min(n_train, steps * s.batch_size), val_size=0, eval_test=False, epochs=2,
                           snapshot_every=None) for s in specs]
        histories, _, _ = _train(timed, root)
        first, second = (float(x) * k for x in histories[0].epochs["seconds"].iloc[:2])
        _step_seconds[cls] = (second / steps, max(first - second, 0.0))
    return _step_seconds[cls]


def _eval_seconds(specs: list[RunSpec], members: list, ds) -> float:
    """Seconds of one evaluation pass of the batch over the real validation and test sets."""
    sets = recipe._eval_sets(specs[0], ds)
    if not sets:
        return 0.0
    model = (members[0] if len(members) == 1 else stacked.Stack(members)).to(resolve_device(specs[0].device))
    best = math.inf
    for _ in range(2):  # the first pass may pay for allocations the real run pays once
        start = time.perf_counter()
        for split in sets.values():
            train.evaluate(model, split, specs[0].loss)
        best = min(best, time.perf_counter() - start)
    return best


def _batch(specs: list[RunSpec], keys: list[str], root) -> tuple[list[Result], float, float, int]:
    """(stand-ins, estimated seconds of the real batch, seconds spent loading the real data, its
    training samples)."""
    start = time.perf_counter()
    ds = recipe.load_data(specs[0], root)  # the real run loads it too: not stand-in time
    loading = time.perf_counter() - start
    n_train, first = len(ds.train), specs[0]
    steps = math.ceil(n_train / first.batch_size)
    small = [shrink(s, n_train, len(ds.test), steps) for s in specs]
    histories, members, seconds = _train(small, root)
    per_step, warm = _step(specs, n_train, root)
    estimate = warm + first.epochs * (steps * per_step + _eval_seconds(specs, members, ds))
    env = {**_env(resolve_device(first.device), "plan", fingerprint.code_fingerprint()), "stack_size": len(specs)}
    standins = []
    for spec, key, history, model in zip(specs, keys, histories, members):
        result = _parse_entry(spec, key, _entry_files(spec, key, history, model, seconds, env), None)
        result.cached = False
        standins.append(result)
    return standins, estimate, loading, n_train


def sweep(specs: list[RunSpec], *, stack: bool = True, max_stack: int = stacked.MAX_STACK, cache=None,
          root=None, threads: int | None = None) -> tuple[dict[str, Result], list[list[str]]]:
    """({key: cached Result or stand-in}, the keys of each stack trained now) for `specs`, recording
    each spec in $DLCOURSE_PLAN. Reads the real cache; writes nothing to it."""
    start = time.perf_counter()
    _count["calls"] += 1
    call = f"{os.getpid()}:{_count['calls']}"
    store = Store(cache)
    unique = {s.key: s for s in specs}
    results, lines, todo = {}, [], {}
    for key, spec in unique.items():
        if key in _standins:
            results[key], line = _standins[key]
            lines.append({**line, "call": call})
            continue
        hit, _ = _lookup(store, spec, key)  # a corrupt entry is a miss: the real sweep retrains it
        if hit is None:
            todo[key] = spec
        else:
            results[key] = hit
            lines.append(_line(spec, key, call, spec.train_size, cached=True))
    loading, stacks = 0.0, []
    with train.torch_threads(settings.threads(threads)):
        for batch in batches(todo, stack, max_stack):
            _count["batches"] += 1
            name = f"{os.getpid()}:{_count['batches']}"
            standins, estimate, loaded, n_train = _batch([todo[k] for k in batch], batch, root)
            loading += loaded
            if len(batch) > 1:
                stacks.append(batch)
            for key, result in zip(batch, standins):
                line = _line(todo[key], key, call, n_train, cached=False, batch=name, stack_size=len(batch),
                             estimate_s=estimate / len(batch))
                _standins[key] = (result, line)
                results[key] = result
                lines.append(line)
    lines.append({"call": call, "standin_s": time.perf_counter() - start - loading})
    _write(lines)
    return results, stacks


def _line(spec: RunSpec, key: str, call: str, n_train: int | None, *, cached: bool, batch: str | None = None,
          stack_size: int = 0, estimate_s: float = 0.0) -> dict:
    """One spec's record (`train_size`: the samples it trains on, where they were loaded)."""
    return {"key": key, "call": call, "spec": spec.to_dict(), "model": spec.model, "epochs": spec.epochs,
            "train_size": n_train, "batch_size": spec.batch_size, "cached": cached, "batch": batch,
            "stack_size": stack_size, "estimate_s": estimate_s}


__all__ = ["PLAN", "active", "sweep", "shrink", "STANDIN_BATCHES", "STANDIN_EVAL", "CALIBRATION_STEPS"]
