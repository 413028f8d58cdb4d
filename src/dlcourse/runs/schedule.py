"""`run(spec)` trains once and then answers from the cache; `sweep(specs)` runs many, alone or stacked.

This module schedules: cache lookups, per-key locks (two processes asking for one spec train it
once), corrupt entries reported and recomputed, which specs train together, progress. None of
it decides a result, so it is outside the code fingerprint. A cache hit loads no data and
builds no model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping

import pandas as pd
import torch

from .. import settings, stacked, validate
from ..cache import Store
from .. import plan_mode
from ..settings import BACKENDS, RUN_LOG, resolve_device
from ..train import torch_threads
from . import fingerprint, recipe
from .recipe import build_model
from .results import Result, _env, _lookup, _store, _warn_corrupt
from .spec import RunSpec, as_spec

_TRAINED = {"alone": 0, "stacked": 0}  # training calls made by this process (tests read it)


def _train_local(spec: RunSpec, key: str, store: Store, root, progress: bool) -> Result:
    history, model, seconds = recipe.train_one(spec, root, progress=progress, desc=f"run {key[:8]}")
    _TRAINED["alone"] += 1
    env = _env(resolve_device(spec.device), "local", fingerprint.code_fingerprint())
    return _store(store, spec, key, history, model, seconds, env)




def _planned(specs: list[RunSpec], **options) -> tuple[dict[str, Result], list[list[str]]]:
    """Plan mode's answer to `run` and `sweep`: cached Results and stand-ins, nothing trained or stored."""
    from . import plan  # lazy: it imports this module

    return plan.sweep(specs, **options)


def record_use(keys: Iterable[str]) -> None:
    path = os.environ.get(RUN_LOG)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write("".join(f"{k}\n" for k in keys))


def run(spec: RunSpec | Mapping, force: bool = False, *, cache=None, root=None, progress: bool = False) -> Result:
    """Train `spec` (a RunSpec or a dict of its fields) or return its cached Result.

    `cache`: the cache folder (else $DLCOURSE_CACHE, else .cache/dlcourse); `root`: the data
    root; `force`: retrain and overwrite. A partial or corrupt entry is reported with a
    CacheWarning and recomputed. Concurrent processes asking for one spec train it once.
    """
    spec = as_spec(spec)
    if plan_mode.active():
        return _planned([spec], stack=False, cache=cache, root=root)[0][spec.key]
    store = Store(cache)
    key = spec.key
    record_use([key])
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
    (data, architecture, optimizer, batch size, epochs, what is recorded) must agree. MLPs and
    CNNs, with or without batch norm and dropout, stack (see `dlcourse.stacked`).
    """
    with torch.device("meta"):  # every model the builders make stacks today; this keeps it checked
        if stacked.supports(build_model(spec)) is not None:
            return None
    d = spec.canonical()
    for name in ("seed", "lr", "momentum", "weight_decay", "init"):
        d.pop(name, None)
    return tuple(sorted((k, json.dumps(v)) for k, v in d.items()))


def _train_stack(specs: list[RunSpec], keys: list[str], store: Store, root, progress: bool) -> list[Result]:
    histories, members, seconds = recipe.train_stack(specs, root, progress=progress)
    _TRAINED["stacked"] += 1
    env = {**_env(resolve_device(specs[0].device), "local", fingerprint.code_fingerprint()),
           "stack_size": len(specs)}
    return [_store(store, s, k, h, m, seconds, env) for s, k, h, m in zip(specs, keys, histories, members)]


def _row(result: Result, stack: int) -> dict:
    where = result.env.get("backend")
    where = "local" if where == "stacked" else where  # entries written before "stacked" meant stack_size > 1
    return {"key": result.key, **dataclasses.asdict(result.spec), **result.metrics, "seconds": result.seconds,
            "cached": result.cached, "backend": where, "stack_size": int(result.env.get("stack_size", 1)),
            "stack": stack, "result": result}


def batches(todo: Mapping[str, RunSpec], stack: bool = True, max_stack: int = stacked.MAX_STACK) -> list[list[str]]:
    """The keys of `todo` cut into what trains together: stacks of up to `max_stack` specs of one
    `stack_group`, and the rest alone (everything alone when `stack` is false)."""
    out: list[list[str]] = []
    groups: dict[tuple, list[str]] = {}
    for key, spec in todo.items():
        group = stack_group(spec) if stack else None
        if group is None:
            out.append([key])
        else:
            groups.setdefault(group, []).append(key)
    for members in groups.values():
        out += [members[i:i + max_stack] for i in range(0, len(members), max_stack)]
    return out


class Progress:
    """The sweep's bar: runs done (trained now), cached, running and left."""

    def __init__(self, total: int, cached: int, enabled: bool):
        from tqdm.auto import tqdm

        self.total, self.counts = total, {"done": 0, "cached": cached, "running": 0}
        self.bar = tqdm(total=total, initial=cached, desc="sweep", unit="run", disable=not enabled)
        self.advance(0)

    def advance(self, n: int, cached: int = 0, running: int | None = None) -> None:
        self.counts["done"] += n - cached
        self.counts["cached"] += cached
        if running is not None:
            self.counts["running"] = running
        self.bar.update(n)
        left = self.total - self.counts["done"] - self.counts["cached"]
        self.bar.set_postfix(**self.counts, left=left)

    def write(self, line: str) -> None:
        self.bar.write(line)

    def close(self) -> None:
        self.bar.close()


def sweep(specs: Iterable[RunSpec | Mapping], backend: str | None = None, *, stack: bool = True,
          force: bool = False, cache=None, root=None, progress: bool = True, max_stack: int = stacked.MAX_STACK,
          threads: int | None = None, address: str | None = None) -> pd.DataFrame:
    """Run every spec (cache hits first) and return one row per spec: its fields, final metrics,
    seconds, `cached`, `backend`, `stack_size`, `stack` and `result` (the Result, whose `.history`
    is the per-epoch table; `histories(df)` stacks them all).

    `backend` says where training happens: "local" (this process) or "ray" (tasks on the Ray
    cluster at `address`, else $RAY_ADDRESS, else a local Ray; see `runs.remote`); default
    $DLCOURSE_BACKEND, else "local". Independently, `stack` trains specs that differ only in seed,
    lr, momentum, weight decay and init (see `stack_group`) as stacks of up to `max_stack` members;
    the rest, and groups of one, train alone (`stack=False`: all alone). `threads`: CPU threads per
    training (default $DLCOURSE_THREADS; see `settings.threads`). How the sweep grouped is
    reported: a line above the progress bar, the `stack` column (the index of the stack a row
    trained in during this call, -1 if it trained alone or was cached) and `df.attrs["stacks"]`.
    Each result is written to the cache as soon as it is trained, so a killed sweep resumes where
    it stopped. Every spec is validated before anything trains.
    """
    backend = settings.backend(backend)
    threads = settings.threads(threads)
    validate.positive_int("max_stack", max_stack)
    if isinstance(specs, (str, bytes, Mapping)):
        raise ValueError(f"specs={specs!r} is not valid; it must be a list of RunSpecs or dicts")
    specs = [as_spec(s) for s in specs]
    if plan_mode.active():
        results, stacks = _planned(specs, stack=stack, max_stack=max_stack, cache=cache, root=root, threads=threads)
        return _frame([s.key for s in specs], results, stacks)
    store = Store(cache)
    store.clean_partial()
    keys = [s.key for s in specs]
    record_use(keys)
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

    bar = Progress(len(unique), len(results), progress)
    stacks: list[list[str]] = []
    try:
        cut = batches(todo, stack, max_stack)
        sizes = sorted((len(b) for b in cut if len(b) > 1), reverse=True)
        if todo and progress:
            bar.write(f"sweep: {len(todo)} to train ({backend}): {len(sizes)} stack(s) of {sizes or 0} members, "
                      f"{sum(len(b) == 1 for b in cut)} alone; {len(results)} cached")
        if backend == "ray":
            from . import remote

            for key, reason in corrupt.items():
                _warn_corrupt(store, key, reason)
            results.update(remote.train_batches(cut, unique, store, bar, root=root, threads=threads,
                                                address=address, force=force))
            stacks += [b for b in cut if len(b) > 1]
        else:
            with torch_threads(threads):
                results.update(_train_here(cut, unique, store, root, force, corrupt, bar, stacks))
    finally:
        bar.close()
    return _frame(keys, results, stacks)


def _frame(keys: list[str], results: dict[str, Result], stacks: list[list[str]]) -> pd.DataFrame:
    stack_of = {k: i for i, members in enumerate(stacks) for k in members}
    df = pd.DataFrame([_row(results[k], stack_of.get(k, -1)) for k in keys])
    df.attrs["stacks"] = stacks
    return df


def _train_here(cut, unique, store: Store, root, force: bool, corrupt: dict, bar: Progress,
                stacks: list[list[str]]) -> dict[str, Result]:
    """The local backend: each batch in turn, in this process, under per-key locks."""
    out: dict[str, Result] = {}
    for batch in cut:
        bar.advance(0, running=len(batch))
        if len(batch) == 1:
            key = batch[0]  # run() reports a corrupt entry itself
            before = sum(_TRAINED.values())
            out[key] = run(unique[key], force=force, cache=store.root, root=root)
            bar.advance(1, cached=int(sum(_TRAINED.values()) == before), running=0)
            continue
        out.update(_run_stack([unique[k] for k in batch], batch, store, root, force, corrupt, bar, stacks))
    return out


def _run_stack(specs, keys, store: Store, root, force: bool, corrupt: dict, bar: Progress,
               stacks: list[list[str]]) -> dict[str, Result]:
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
            stacks.append(left_keys)
    finally:
        for lock in reversed(locks):
            lock.release()
    bar.advance(len(keys), cached=len(keys) - len(left_keys), running=0)
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


__all__ = ["run", "sweep", "histories", "stack_group", "batches", "Progress", "BACKENDS"]
