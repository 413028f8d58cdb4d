"""`dlcourse runs export --tensorboard`: a real cached run, read back from its event files, and
served by `tensorboard --logdir` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from dlcourse import cli, runs, settings
from dlcourse.cache import HISTORY, SPEC, STEPS, Store
from dlcourse.tensorboard_export import EVENTS_PREFIX, export

from conftest import real_data_root

SPEC_FIELDS = dict(dataset="mnist", train_size=500, val_size=100, epochs=2, hidden=[32], batch_size=64,
                   record_grad_norm=True, device="cpu")


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """One tiny real run (MNIST, 500 images, 2 epochs, per-step loss and gradient norm) in its own cache."""
    root = real_data_root()
    if root is None:
        pytest.skip("the export test trains on real MNIST: set DLCOURSE_DATA")
    cache = tmp_path_factory.mktemp("tb-cache")
    result = runs.run(SPEC_FIELDS, cache=cache, root=root)
    return cache, result.key


def _accumulator(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _cached_tables(cache: Path, key: str):
    import pandas as pd

    folder = Store(cache).path(key)
    return (pd.read_csv(folder / HISTORY), pd.read_csv(folder / STEPS),
            json.loads((folder / SPEC).read_text()))


def test_event_files_hold_the_cached_history(cached, tmp_path, capsys):
    cache, key = cached
    out = tmp_path / "tb"
    assert cli.main(["runs", "export", "--tensorboard", str(out), "--cache", str(cache), key[:6]]) == 0
    assert f"wrote 1 runs to {out}" in capsys.readouterr().out
    history, steps, spec_file = _cached_tables(cache, key)
    acc = _accumulator(out / key)

    measured = [c for c in history.columns if c != "epoch"]
    assert set(acc.Tags()["scalars"]) == {f"epoch/{c}" for c in measured} | {"step/loss", "step/grad_norm"}
    for column in measured:  # every epoch, every value (TensorBoard stores float32)
        events = acc.Scalars(f"epoch/{column}")
        assert [e.step for e in events] == history["epoch"].tolist()
        assert np.array_equal([e.value for e in events], history[column].to_numpy(np.float32)), column
    for column in ("loss", "grad_norm"):
        events = acc.Scalars(f"step/{column}")
        assert [e.step for e in events] == steps["step"].tolist() and len(events) == 16  # 2 epochs of 8 batches
        assert np.array_equal([e.value for e in events], steps[column].to_numpy(np.float32)), column
    # wall times are the run's own: epoch 2 ends its `seconds` after epoch 1, steps lie in between
    walls = [e.wall_time for e in acc.Scalars("epoch/val_loss")]
    assert walls[1] - walls[0] == pytest.approx(history["seconds"].iloc[1], abs=1e-3)
    step_walls = [e.wall_time for e in acc.Scalars("step/loss")]
    assert np.all(np.diff(step_walls) > 0) and step_walls[7] == pytest.approx(walls[0], abs=1e-3)

    # the spec as TensorBoard's HParams dashboard reads it, named by the run key
    from tensorboard.plugins.hparams import metadata

    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG]
    start = metadata.parse_session_start_info_plugin_data(content)
    assert start.group_name == key
    canonical = spec_file["canonical"]
    assert start.hparams["lr"].number_value == canonical["lr"] == 1e-3
    assert start.hparams["optimizer"].string_value == "adam"
    assert start.hparams["hidden"].string_value == "[32]"
    assert start.hparams["record_grad_norm"].bool_value is True
    assert set(start.hparams) == {k for k, v in canonical.items() if v is not None}
    assert "channels" not in start.hparams  # an MLP's ignored CNN fields are not hyperparameters


def test_export_again_replaces_and_refuses_foreign_files(cached, tmp_path):
    cache, key = cached
    out = tmp_path / "tb"
    for _ in range(2):
        written, skipped = export(out, cache=cache)
        assert [r.key for r in written] == [key] and not skipped
    assert len(list((out / key).iterdir())) == 1 and next((out / key).iterdir()).name.startswith(EVENTS_PREFIX)
    (out / key / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not TensorBoard events"):
        export(out, [key], cache=cache)
    assert (out / key / "notes.txt").read_text() == "mine"
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


def test_a_corrupt_entry_is_skipped_when_exporting_all_and_refused_by_name(cached, tmp_path, capsys):
    cache, key = cached
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    with open(copy / key / HISTORY, "a") as f:
        f.write("3,0.1\n")  # no longer matches the manifest's checksum
    written, skipped = export(tmp_path / "tb", cache=copy)
    assert written == [] and skipped[0][0] == key and HISTORY in skipped[0][1]  # names the bad file
    assert cli.main(["runs", "export", "--tensorboard", str(tmp_path / "tb"), "--cache", str(copy)]) == 1
    assert "SKIPPED: corrupt" in capsys.readouterr().out
    assert cli.main(["runs", "export", "--tensorboard", str(tmp_path / "tb"), "--cache", str(copy), key]) == 2
    assert "is corrupt" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def test_tensorboard_serves_the_export(cached, tmp_path):
    cache, key = cached
    out = tmp_path / "tb"
    export(out, cache=cache)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(out), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, runs_listed, tags = time.monotonic() + 60, None, None
        while time.monotonic() < deadline and proc.poll() is None:
            runs_listed = _get_json(f"{base}/data/runs")
            tags = _get_json(f"{base}/data/plugin/scalars/tags")
            if runs_listed and tags and key in tags:
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert runs_listed == [key], runs_listed
        assert {"epoch/val_acc", "step/loss"} <= set(tags[key]), tags
        # the HParams dashboard: the spec's fields as columns, each epoch/* tag's last value as a metric
        request = urllib.request.Request(f"{base}/data/plugin/hparams/experiment", data=b'{"experimentName": ""}',
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            experiment = json.loads(response.read())
        assert {"lr", "optimizer", "hidden", "seed"} <= {h["name"] for h in experiment["hparamInfos"]}
        assert "epoch/val_acc" in {m["name"]["tag"] for m in experiment["metricInfos"]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_lab_exports_the_runs_its_execution_used(cached, tmp_path, capsys, monkeypatch):
    """`--lab NAME`: the executed notebook lists the keys its kernel asked `runs` for, and the
    export writes exactly those runs."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from dlcourse import execution, labs

    cache, key = cached
    root = tmp_path / "course"
    (root / "notebooks").mkdir(parents=True)
    params = new_code_cell("epochs = 2")
    params.metadata["tags"] = ["parameters"]
    cell = (f"from dlcourse import runs\nspec = {SPEC_FIELDS!r}\n"
            "result = runs.sweep([dict(spec, epochs=epochs)])['result'][0]\nprint(result.key)")
    nb = new_notebook(cells=[new_markdown_cell("# Lab 1: Runs"), params, new_code_cell(cell)],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, root / "notebooks" / "lab01_runs.ipynb")
    monkeypatch.setenv("DLCOURSE_CACHE", str(cache))  # the kernel finds the run cached: nothing trains
    monkeypatch.setenv("DLCOURSE_DATA", str(real_data_root()))
    lab = labs.discover(root)[0]
    executed = execution.execute(lab, {"epochs": 2}, root / "book" / "labs", root=root, timeout=300)
    assert execution.made(executed)["runs"] == [key]
    assert settings.RUN_LOG not in os.environ  # the variable was the kernel's only
    assert not list((root / "book" / "labs").glob(".*"))  # nor is its log left behind
    out = tmp_path / "tb"
    code = cli.main(["runs", "export", "--tensorboard", str(out), "--cache", str(cache), "--root", str(root),
                     "--lab", "runs"])
    assert code == 0, capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == [key]
    capsys.readouterr()
    assert cli.main(["runs", "export", "--tensorboard", str(out), "--root", str(root), "--lab", "nope"]) == 2
    assert "matches no lab" in capsys.readouterr().err
