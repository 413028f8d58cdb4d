"""Runs: spec validation, keys, the cache (hits, code fingerprint, corruption, locks, kills), sweeps.

Training is counted by wrapping `dlcourse.train.fit`, never by timing. Everything runs on the
toy IDX data of conftest with tiny MLPs, so the file stays fast on 2 cores.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

from dlcourse import cache, data, runs, train

REPO = Path(__file__).resolve().parents[1]


def tiny(**kw) -> runs.RunSpec:
    base = dict(dataset="mnist", train_size=200, test_size=100, hidden=[16], batch_size=32, epochs=1, seed=0,
                device="cpu")
    return runs.RunSpec.from_dict({**base, **kw})


@pytest.fixture
def fit_calls(monkeypatch):
    """Count calls of train.fit (the one place a local run trains)."""
    calls = []
    real = train.fit

    def counting(*args, **kwargs):
        calls.append(kwargs.get("seed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "fit", counting)
    return calls


@pytest.fixture
def toy_env(toy_root, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(toy_root))
    runs.recipe._DATA.clear()
    return toy_root


# -- specs --------------------------------------------------------------------------------------
def test_spec_defaults_and_canonical_lists():
    s = runs.RunSpec.from_dict({"hidden": [50, 20], "lr": "1e-3", "epochs": 2.0, "eval_test": "false"})
    assert s.hidden == (50, 20) and s.lr == 1e-3 and s.epochs == 2 and s.eval_test is False
    assert s.loss == "ce" and runs.RunSpec(dataset="sinc").loss == "mse"
    assert s == runs.RunSpec(hidden=(50, 20), lr=0.001, epochs=2, eval_test=False)
    assert json.loads(json.dumps(s.to_dict()))["hidden"] == [50, 20]


def test_key_is_stable_and_ignores_what_training_ignores():
    a = runs.RunSpec(hidden=[100], lr=1e-3)
    assert a.key == runs.RunSpec(hidden=(100,), lr=0.001).key == runs.RunSpec.from_dict({"hidden": [100]}).key
    assert len(a.key) == 16
    assert a.key != a.replace(lr=2e-3).key != a.replace(seed=1).key
    # an MLP ignores the CNN fields, Adam ignores momentum, "auto" is the resolved device here
    assert a.key == a.replace(channels=(8,), dense=(), pool=False).key == a.replace(momentum=0.5).key
    if not torch.cuda.is_available():
        assert a.key == a.replace(device="cpu").key
    assert runs.RunSpec(optimizer="momentum").key != runs.RunSpec(optimizer="momentum", momentum=0.5).key
    assert runs.RunSpec(dataset="sinc").key == runs.RunSpec(dataset="sinc", train_size=runs.FUNCTION_TRAIN_SIZE).key


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("dataset", "cifar10", "fashion-mnist"),
        ("model", "resnet", "mlp"),
        ("optimizer", "adamax", "nadam"),
        ("activation", "swish", "relu"),
        ("init", "orthogonal", "xavier_normal"),
        ("loss", "hinge", "ce"),
        ("hidden", "100", "list of positive integers"),
        ("hidden", [100, 0], "positive integer"),
        ("channels", [8, -1], "positive integer"),
        ("lr", 0, "finite number > 0"),
        ("lr", -1e-3, "finite number > 0"),
        ("lr", "fast", "finite number > 0"),
        ("batch_size", 0, "positive integer"),
        ("epochs", -1, "positive integer"),
        ("train_size", 0, "positive integer"),
        ("val_size", -5, "integer >= 0"),
        ("momentum", 1.5, "[0, 1)"),
        ("dropout", 1.0, "[0, 1)"),
        ("weight_decay", -0.1, ">= 0"),
        ("snapshot_every", 0, "positive integer"),
        ("seed", -1, "integer >= 0"),
        ("batchnorm", "yes", "true or false"),
        ("device", "tpu", "cpu"),
        ("colour", "red", "dataset"),
    ],
)
def test_invalid_specs_name_field_value_and_choices(field, value, allowed):
    with pytest.raises(ValueError) as err:
        runs.RunSpec.from_dict({field: value})
    message = str(err.value)
    assert f"{field}=" in message and (repr(value) in message or str(value) in message), message
    assert allowed in message, message


def test_invalid_combinations():
    with pytest.raises(ValueError, match="model='cnn'.*mlp"):
        runs.RunSpec(dataset="sinc", model="cnn")
    with pytest.raises(ValueError, match="loss='ce'.*mse"):
        runs.RunSpec(dataset="sign", loss="ce")
    with pytest.raises(ValueError, match="random_labels"):
        runs.RunSpec(dataset="sinc", random_labels=True)
    with pytest.raises(ValueError, match="momentum=0.*nesterov"):
        runs.RunSpec(optimizer="nesterov", momentum=0.0)
    with pytest.raises(ValueError, match="channels"):
        runs.RunSpec(model="cnn", channels=[])
    with pytest.raises(ValueError, match="backend='spark'.*local, ray"):
        runs.sweep([runs.RunSpec()], backend="spark")
    with pytest.raises(ValueError, match="not valid"):
        runs.sweep(runs.RunSpec().to_dict())


def test_bad_specs_fail_before_any_data_is_loaded(monkeypatch):
    def no_loading(*a, **k):
        raise AssertionError("data was loaded")

    monkeypatch.setattr(data, "load", no_loading)
    monkeypatch.setattr(runs.recipe, "load_data", no_loading)
    with pytest.raises(ValueError, match="optimizer='adamm'"):
        runs.run({"optimizer": "adamm"})
    with pytest.raises(ValueError, match="hidden"):  # the bad spec is last: nothing trains first
        runs.sweep([{"seed": 1}, {"seed": 2}, {"hidden": "100"}])


# -- run and the cache -----------------------------------------------------------------------------
def test_cache_hit_returns_identical_history_without_training(toy_env, fit_calls, monkeypatch):
    spec = tiny(epochs=2, val_size=50, record_grad_norm=True, snapshot_every=4)
    first = runs.run(spec)
    assert len(fit_calls) == 1 and not first.cached
    assert list(first.history.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss",
                                           "test_acc", "seconds"]
    assert {"train_loss", "test_acc", "n_params", "diverged"} <= set(first.metrics)
    assert first.env["device"] == "cpu" and first.env["torch"] == torch.__version__

    real_load = runs.load_data
    monkeypatch.setattr(runs.recipe, "load_data", lambda *a, **k: pytest.fail("a cache hit loaded data"))
    start = time.perf_counter()
    again = runs.run(spec)
    hit_seconds = time.perf_counter() - start
    assert len(fit_calls) == 1 and again.cached
    pd.testing.assert_frame_equal(first.history, again.history)
    pd.testing.assert_frame_equal(first.steps, again.steps)
    assert again.metrics == first.metrics and again.seconds == first.seconds
    assert [s for s, _ in again.snapshots] == [s for s, _ in first.snapshots] == [0, 4, 8, 12]
    for (_, a), (_, b) in zip(first.snapshots, again.snapshots):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert hit_seconds < 0.5, hit_seconds

    # the stored weights rebuild the trained model
    model = again.model()
    runs.recipe._DATA.clear()
    ds = real_load(spec)
    loss, acc = train.evaluate(model, ds.test)
    assert acc == pytest.approx(again.metrics["test_acc"]) and loss == pytest.approx(again.metrics["test_loss"])


def test_run_accepts_a_dict_and_force_retrains(toy_env, fit_calls):
    spec = tiny()
    runs.run(spec.to_dict())
    runs.run(spec)
    assert len(fit_calls) == 1
    runs.run(spec, force=True)
    assert len(fit_calls) == 2


def test_cache_folder_argument_env_and_default(toy_env, fit_calls, tmp_path):
    spec = tiny()
    runs.run(spec, cache=tmp_path / "a")
    assert (tmp_path / "a" / spec.key / cache.WEIGHTS).exists()
    runs.run(spec)
    assert (Path(os.environ["DLCOURSE_CACHE"]) / spec.key).is_dir()
    assert len(fit_calls) == 2


def test_fingerprint_change_invalidates(toy_env, fit_calls, monkeypatch):
    spec = tiny()
    runs.run(spec)
    key = spec.key
    real = runs.code_fingerprint
    monkeypatch.setattr(runs.fingerprint, "code_fingerprint", lambda: "edited-train-py")
    assert spec.key != key
    runs.run(spec)
    assert len(fit_calls) == 2
    runs.run(spec)
    assert len(fit_calls) == 2
    monkeypatch.setattr(runs.fingerprint, "code_fingerprint", real)
    assert spec.key == key
    runs.run(spec)  # the old code's entry is still there
    assert len(fit_calls) == 2


def test_fingerprint_follows_code_not_prose(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('"""Doc."""\n\ndef f(x):\n    """Say why."""\n    return x + 1  # one\n')
    digest = lambda: runs.fingerprint._source_digest(str(f), f.stat().st_mtime_ns, f.stat().st_size)  # noqa: E731
    a = digest()
    f.write_text('"""Another doc, longer."""\n\ndef f(x):\n    """Say why, better."""\n    return x + 1  # two\n')
    assert digest() == a
    f.write_text('"""Doc."""\n\ndef f(x):\n    """Say why."""\n    return x + 2\n')
    assert digest() != a
    fp = runs.code_fingerprint()
    assert fp == runs.code_fingerprint() and len(fp) == 16
    assert set(runs.FINGERPRINT_MODULES) >= {"data", "models", "optim", "train", "stacked", "runs/recipe"}
    for name in ("plots", "cli", "runs/schedule", "runs/results", "cache", "settings"):
        assert name not in runs.FINGERPRINT_MODULES


@pytest.mark.parametrize("damage", ["truncate_history", "flip_weights", "drop_manifest", "drop_metrics",
                                    "garbage_manifest"])
def test_corrupt_entry_is_reported_and_recomputed(toy_env, fit_calls, damage):
    spec = tiny()
    first = runs.run(spec)
    folder = first.path
    if damage == "truncate_history":
        (folder / cache.HISTORY).write_bytes((folder / cache.HISTORY).read_bytes()[:20])
    elif damage == "flip_weights":
        raw = bytearray((folder / cache.WEIGHTS).read_bytes())
        raw[-1] ^= 0xFF
        (folder / cache.WEIGHTS).write_bytes(bytes(raw))
    elif damage == "drop_manifest":
        (folder / cache.MANIFEST).unlink()
    elif damage == "drop_metrics":
        (folder / cache.METRICS).unlink()
    else:
        (folder / cache.MANIFEST).write_text("{not json")
    with pytest.warns(cache.CacheWarning, match=f"{spec.key}.*corrupt"):
        again = runs.run(spec)
    assert len(fit_calls) == 2 and not again.cached
    pd.testing.assert_frame_equal(first.history.drop(columns="seconds"), again.history.drop(columns="seconds"))
    assert cache.Store().validate(spec.key) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert runs.run(spec).cached


def test_function_data_runs(toy_env, fit_calls):
    spec = runs.RunSpec(dataset="sinc", hidden=[8, 8], train_size=64, test_size=200, batch_size=16, epochs=2,
                        lr=1e-2, device="cpu")
    result = runs.run(spec)
    assert list(result.history.columns) == ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"]
    assert result.history["train_acc"].isna().all() and result.metrics["test_loss"] > 0
    net = result.model()
    assert net(torch.zeros(3, 1)).shape == (3, 1)
    assert runs.run(spec).cached and len(fit_calls) == 1


def test_eval_test_false_and_random_labels(toy_env, fit_calls):
    r = runs.run(tiny(eval_test=False, random_labels=True, seed=3))
    assert "test_acc" not in r.history.columns
    expected = data.load("mnist", device="cpu", train_size=200, random_labels=True, seed=3).train.y
    assert torch.equal(runs.load_data(tiny(random_labels=True, seed=3)).train.y, expected)


# -- sweeps -----------------------------------------------------------------------------------------
def test_sweep_frame_histories_and_resume(toy_env, fit_calls):
    specs = [tiny(seed=s, lr=lr) for s in (0, 1) for lr in (1e-3, 3e-3)]
    runs.run(specs[1])
    df = runs.sweep(specs + [specs[0]], stack=False, progress=False)
    assert len(df) == 5 and len(fit_calls) == 4  # one was cached, the duplicate trains once
    assert df["cached"].tolist() == [False, True, False, False, False]
    assert df["key"].tolist() == [s.key for s in specs + [specs[0]]]
    assert {"seed", "lr", "hidden", "test_acc", "train_loss", "n_params", "diverged", "seconds", "result"} <= set(df)
    pd.testing.assert_frame_equal(df["result"][0].history, df["result"][4].history)
    long = runs.histories(df)
    assert len(long) == 5 and {"epoch", "test_acc", "lr", "seed", "key"} <= set(long)
    df2 = runs.sweep(specs, progress=False)
    assert df2["cached"].all() and len(fit_calls) == 4


def test_sweep_progress_bar_counts(toy_env, capsys):
    runs.run(tiny(seed=9))
    runs.sweep([tiny(seed=9), tiny(seed=10)], progress=True)
    err = capsys.readouterr().err
    assert "done=1" in err and "cached=1" in err and "left=0" in err


_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dlcourse import runs, train
    log, how, delay = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    real_fit = train.fit
    def logged_fit(*a, **k):  # one model, or a stack (a list of seeds)
        seeds = k["seed"] if isinstance(k["seed"], list) else [k["seed"]]
        with log.open("a") as f:
            f.write("".join(f"{s}\\n" for s in seeds))
        time.sleep(delay)
        return real_fit(*a, **k)
    train.fit = logged_fit
    specs = [runs.RunSpec.from_dict(spec) for spec in SPECS]
    print("ready", flush=True)
    sys.stdin.readline()  # wait for "go": workers start (import torch) ahead of their turn
    runs.sweep(specs, backend="local", stack=how == "stacked", progress=False, max_stack=3)
    print("finished", flush=True)
""")


def _kill_specs(n: int) -> list[dict]:
    return [dict(dataset="mnist", train_size=120, test_size=50, hidden=[8], batch_size=40, epochs=1, seed=s,
                 lr=1e-3 * (1 + s % 3), device="cpu") for s in range(n)]


def _finished_seeds(store: cache.Store) -> set[int]:
    """Seeds of the entries in `store`, asserting that every entry validates."""
    out = set()
    for key in store.keys():
        assert store.validate(key) is None, (key, store.validate(key))
        out.add(json.loads(store.read(key)[cache.SPEC])["spec"]["seed"])
    return out


def test_sweep_killed_with_sigkill_resumes_without_retraining(toy_env, tmp_path, monkeypatch):
    """Five sweeps (alone and stacked) are SIGKILLed at random moments; after each, every entry
    validates and no finished run was trained again; a final sweep completes the rest."""
    # Sized so that no worker can finish inside its kill window (at most 1 s): each training call
    # sleeps 0.3 s and stacks hold 3 runs, so the five windows finish at most 27 of the 30 runs.
    n = 30
    specs = _kill_specs(n)
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.replace("SPECS", repr(specs)))
    cache_dir = tmp_path / "kcache"
    monkeypatch.setenv("DLCOURSE_CACHE", str(cache_dir))
    store = cache.Store(cache_dir)
    backends = ["alone", "alone", "stacked", "alone", "stacked"]
    workers = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"log{i}.txt"), b, "0.3"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
               for i, b in enumerate(backends)]
    rng = random.Random(1234)
    kills = 0
    try:
        for i, proc in enumerate(workers):
            assert proc.stdout.readline().strip() == "ready"
            finished_before = _finished_seeds(store)
            proc.stdin.write("go\n")
            proc.stdin.flush()
            time.sleep(rng.uniform(0.05, 1.0))
            proc.send_signal(signal.SIGKILL)
            kills += proc.wait() == -signal.SIGKILL
            log = tmp_path / f"log{i}.txt"
            trained = {int(x) for x in log.read_text().split()} if log.exists() else set()
            assert not trained & finished_before, f"worker {i} retrained finished runs"
            _finished_seeds(store)  # every entry left behind validates
    finally:
        for proc in workers:
            proc.kill()
            proc.wait()
    assert kills >= 5

    # the rerun (here, in-process) trains only what is missing, then everything is there and whole
    finished_before = _finished_seeds(store)
    trained = []
    real_fit = train.fit
    monkeypatch.setattr(train, "fit", lambda *a, **k: trained.append(k["seed"]) or real_fit(*a, **k))
    df = runs.sweep([runs.RunSpec.from_dict(s) for s in specs], stack=False, progress=False)
    assert not set(trained) & finished_before
    assert len(trained) == n - len(finished_before) == (~df["cached"]).sum()
    assert 0 < len(trained)  # the kills really interrupted the sweeps
    assert _finished_seeds(store) == set(range(n))
    assert store.partial() == []


_TWO = textwrap.dedent("""
    import sys, time
    from dlcourse import runs, train
    real_fit = train.fit
    def slow_fit(*a, **k):
        print("training", flush=True)
        time.sleep(1.0)
        return real_fit(*a, **k)
    train.fit = slow_fit
    spec = runs.RunSpec.from_dict(SPEC)
    print(spec.key, flush=True)
    r = runs.run(spec)
    print(r.cached, r.metrics["test_acc"], flush=True)
""")


def test_two_processes_on_one_spec_train_once(toy_env, tmp_path, fit_calls):
    """Another process trains the spec; asked meanwhile, this one waits on the lock and reads
    the result instead of training too. (The other process also computes the same key.)"""
    spec = tiny(seed=5)
    script = tmp_path / "two.py"
    script.write_text(_TWO.replace("SPEC", repr(spec.to_dict())))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == spec.key  # keys are stable across processes
        assert proc.stdout.readline().strip() == "training"  # it holds the lock now
        result = runs.run(spec)
        assert result.cached and fit_calls == []
        other_cached, other_acc = proc.stdout.readline().split()
        assert proc.wait(timeout=120) == 0
    finally:
        proc.kill()
    assert other_cached == "False" and float(other_acc) == result.metrics["test_acc"]


def test_the_ray_driver_keeps_an_entry_another_process_wrote_and_writes_under_the_lock(toy_env, tmp_path):
    """What a Ray worker sends back is written like a local result: under the key's lock, and a
    good entry that another process wrote meanwhile is kept (replaced only with force)."""
    from dlcourse.runs import remote

    spec = tiny(seed=6)
    first = runs.run(spec, cache=tmp_path / "a")
    theirs = cache.Store(tmp_path / "a").read(spec.key)
    ours = {**theirs, "history.csv": theirs["history.csv"] + b"\n"}  # another worker's bytes
    store = cache.Store(tmp_path / "b")
    store.write(spec.key, theirs)  # written by a second sweep on this cache meanwhile
    held = []
    real_lock = store.lock
    store.lock = lambda key: held.append(key) or real_lock(key)
    kept = remote._keep_or_store(store, spec, spec.key, ours, force=False)
    assert held == [spec.key] and store.read(spec.key) == theirs  # the good entry stays
    assert not kept.cached and kept.metrics == first.metrics
    remote._keep_or_store(store, spec, spec.key, ours, force=True)
    assert store.read(spec.key) == ours  # force: retrained, so overwritten


# -- where sweeps train, and with how many threads -------------------------------------------------
def test_backend_and_threads_come_from_the_argument_then_the_environment(monkeypatch):
    from dlcourse import settings

    monkeypatch.delenv("DLCOURSE_BACKEND", raising=False)
    monkeypatch.delenv("DLCOURSE_THREADS", raising=False)
    assert settings.backend() == "local" and settings.threads() is None
    monkeypatch.setenv("DLCOURSE_BACKEND", "ray")
    monkeypatch.setenv("DLCOURSE_THREADS", "3")
    assert settings.backend() == "ray" and settings.backend("local") == "local"
    assert settings.threads() == 3 and settings.threads(1) == 1
    monkeypatch.setenv("DLCOURSE_THREADS", "none")
    with pytest.raises(ValueError, match="threads='none' is not valid"):
        settings.threads()
    monkeypatch.setenv("DLCOURSE_BACKEND", "spark")
    with pytest.raises(ValueError, match="backend='spark' is not valid; choose one of: local, ray"):
        runs.sweep([tiny()], progress=False)


def test_sweep_trains_with_the_threads_asked_and_restores_them(toy_env, monkeypatch):
    seen = []
    real_fit = train.fit
    monkeypatch.setattr(train, "fit", lambda *a, **k: seen.append(torch.get_num_threads()) or real_fit(*a, **k))
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # not 1, so that the sweep's setting shows
    try:
        runs.sweep([tiny(seed=21), tiny(seed=22), tiny(seed=23, hidden=(6,))], threads=1, progress=False)
        assert seen == [1, 1] and torch.get_num_threads() == 2  # one stack of two, one alone; restored
    finally:
        torch.set_num_threads(before)
