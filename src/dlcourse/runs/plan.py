"""Plan mode of `sweep` and `run`: what a lab would train and how long it would take, training nothing real.

When $DLCOURSE_PLAN names a file (`dlcourse book --plan` sets it for each lab's kernel), `sweep`
and `run` come here. They write nothing to the cache and append one JSON line per spec to that
file: its key, spec, whether the real cache holds it, the batch (a stack, or one run alone) it
would train in (cut by `schedule.batches`, the real sweep's one way to group), and that batch's
estimated seconds. A cached spec returns its real Result. Any other returns a *stand-in*: the
real spec and key with the history, steps, snapshots and weights of a shrunk copy (same model,
optimizer, batch size and epochs, fewer epochs only past STANDIN_STEPS steps; two batches of
training data, at most STANDIN_SAMPLES; at most STANDIN_EVAL validation and test samples), trained the way the real
sweep would group it. So the lab's own code runs on (it reads histories, rebuilds models, builds
later specs from earlier results as lab 8's local search does), and the plan comes from the
notebooks, not from a second copy of their logic.

One estimator, measured on this machine for each batch: warm-up + epochs x seconds of one real
epoch, and a real epoch is its steps x seconds per step + one evaluation pass. A step is timed by
a short fit of the same shapes (same model, stack size, batch size and records; up to
CALIBRATION_STEPS batches; the median of its epochs after the first, which pays for warm-up)
that evaluates nothing; the evaluation pass is timed alone on the real evaluation sets. (Timing
steps and evaluation together and subtracting the evaluation multiplied any error in that
difference by the real epoch's steps / CALIBRATION_STEPS: lab 6's full plan came out 53 % high.)
The stand-in itself has too few steps per epoch to be timed: a fixed cost per epoch would
dominate them. Calibrations are kept per cost class for the kernel's life.
"""

from __future__ import annotations

import json
import math
import os
import time

from .. import plan_mode, settings, stacked, train
from ..cache import Store
from ..settings import resolve_device
from . import fingerprint, recipe
from .results import Result, _entry_files, _env, _lookup, _parse_entry
from .schedule import batches
from .spec import RunSpec

STANDIN_BATCHES = 2  # training batches per epoch of a stand-in
STANDIN_SAMPLES = 256  # training samples of a stand-in, at most
STANDIN_EVAL = 200  # validation and test samples of a stand-in, at most
STANDIN_STEPS = 2000  # steps of a stand-in, at most
CALIBRATION_STEPS = 32  # steps per epoch of the fit that times a step
SLOW = 2.0  # seconds of 2 x CALIBRATION_STEPS steps past which the fit that times them has 3 epochs
_VARIES = ("seed", "lr", "momentum", "weight_decay", "init", "epochs", "train_size", "val_size", "test_size",
           "snapshot_every", "eval_test")

_standins: dict[str, tuple[Result, dict]] = {}  # key -> (stand-in, its record): a repeated ask trains once
_calibrated: dict[tuple, tuple[float, float, float]] = {}  # cost class -> (step, warm-up, evaluation seconds)
_count = {"calls": 0, "batches": 0}


def shrink(spec: RunSpec, n_train: int, n_test: int, steps_per_epoch: int) -> RunSpec:
    """The stand-in's spec: STANDIN_BATCHES batches of training data (at most STANDIN_SAMPLES:
    a stand-in of batch 4,000 need not train on 8,000 images), small evaluation sets,
    about as many snapshots as the real run takes, and its epochs, unless that makes more than
    STANDIN_STEPS steps (lab 5's full-batch fits of 20,000 epochs): then fewer epochs."""
    small = min(n_train, STANDIN_BATCHES * spec.batch_size, STANDIN_SAMPLES)
    steps = math.ceil(small / spec.batch_size)
    every = spec.snapshot_every
    if every:
        every = max(1, round(every * steps / steps_per_epoch))
    return spec.replace(train_size=small, val_size=min(spec.val_size, STANDIN_EVAL),
                        test_size=min(n_test, STANDIN_EVAL), snapshot_every=every,
                        epochs=min(spec.epochs, max(STANDIN_STEPS // steps, 2)))


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


def _epoch(specs: list[RunSpec], n_train: int, members: list, ds, root, guess: float) -> tuple[float, float]:
    """(seconds of one real epoch of the batch, warm-up seconds): its steps at the seconds per step
    of a short fit of the same shapes that evaluates nothing (up to CALIBRATION_STEPS batches of
    training data; the median of its epochs after the first, which also pays for warm-up; 3 epochs
    or, where the stand-in's `guess` of a step's seconds says that takes under SLOW seconds, enough
    epochs for 2 x CALIBRATION_STEPS steps; never more than the real run's, 2 at least), plus one
    evaluation pass over the real evaluation sets, timed alone."""
    k, first = len(specs), specs[0]
    real = math.ceil(n_train / first.batch_size)
    steps = min(CALIBRATION_STEPS, real)
    cls = (*_cost_class(first, k), first.val_size, first.test_size, first.eval_test, steps)
    if cls not in _calibrated:
        many = guess * 2 * CALIBRATION_STEPS < SLOW  # cheap steps: time enough of them
        epochs = min(max(3, math.ceil(2 * CALIBRATION_STEPS / steps) if many else 3), max(first.epochs, 2))
        timed = [s.replace(train_size=min(n_train, steps * s.batch_size), epochs=epochs, snapshot_every=None,
                           val_size=0, eval_test=False) for s in specs]
        histories, _, _ = _train(timed, root)
        seconds = histories[0].epochs["seconds"] * k
        warm, epoch = float(seconds.iloc[0]), float(seconds.iloc[1:].median())
        _calibrated[cls] = (epoch / steps, max(warm - epoch, 0.0), _eval_seconds(specs, members, ds))
    per_step, warm, evaluation = _calibrated[cls]
    return real * per_step + evaluation, warm


def _eval_seconds(specs: list[RunSpec], members: list, ds) -> float:
    """Seconds of one evaluation pass of the batch over the real validation and test sets."""
    sets = recipe._eval_sets(specs[0], ds)
    if not sets:
        return 0.0
    device = resolve_device(specs[0].device)
    model = (members[0] if len(members) == 1 else stacked.Stack(members)).to(device)
    best = math.inf
    # on as many threads as `fit` evaluates with (one for a small model: see train.step_threads)
    with train.step_threads(device, list(model.parameters()), specs[0].batch_size):
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
    small = [shrink(s, n_train, len(ds.test), math.ceil(n_train / first.batch_size)) for s in specs]
    histories, members, seconds = _train(small, root)
    times = histories[0].epochs["seconds"]
    guess = float(times.iloc[1:].median() if len(times) > 1 else times.iloc[0]) * len(specs) / math.ceil(
        small[0].train_size / first.batch_size)
    epoch, warm = _epoch(specs, n_train, members, ds, root, guess)
    estimate = warm + first.epochs * epoch
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
            lines.append({**line, "call": call, "again": True})  # the real sweep finds it cached by now
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
    plan_mode.record(lines)
    return results, stacks


def _line(spec: RunSpec, key: str, call: str, n_train: int | None, *, cached: bool, batch: str | None = None,
          stack_size: int = 0, estimate_s: float = 0.0) -> dict:
    """One spec's record (`train_size`: the samples it trains on, where they were loaded)."""
    return {"key": key, "call": call, "spec": spec.to_dict(), "model": spec.model, "epochs": spec.epochs,
            "train_size": n_train, "batch_size": spec.batch_size, "cached": cached, "batch": batch,
            "stack_size": stack_size, "estimate_s": estimate_s}


__all__ = ["sweep", "shrink", "STANDIN_BATCHES", "STANDIN_EVAL", "CALIBRATION_STEPS"]
