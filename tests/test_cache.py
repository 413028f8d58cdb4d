"""The on-disk store: atomic entries, checksums, leftovers of killed writers, and `dlcourse runs`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dlcourse import cache, cli, runs


def files(tag: str = "a") -> dict[str, bytes]:
    return {cache.SPEC: json.dumps({"spec": {"dataset": "mnist", "seed": 1}}).encode(),
            cache.METRICS: json.dumps({"test_acc": 0.5}).encode(), cache.HISTORY: f"epoch,x\n1,{tag}\n".encode()}


def test_write_read_roundtrip_and_manifest(tmp_path):
    store = cache.Store(tmp_path)
    assert store.read("k1") is None and store.keys() == []
    path = store.write("k1", files())
    assert path == tmp_path / "k1" and store.read("k1") == files()
    manifest = json.loads((path / cache.MANIFEST).read_text())
    assert manifest["key"] == "k1" and set(manifest["files"]) == set(files())
    store.write("k1", files("b"))  # overwrite in place
    assert store.read("k1") == files("b") and store.keys() == ["k1"] and store.partial() == []
    with pytest.raises(ValueError, match=cache.MANIFEST):
        store.write("k2", {cache.MANIFEST: b"{}"})


def test_default_root_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "env"))
    assert cache.Store().root == tmp_path / "env"
    monkeypatch.delenv("DLCOURSE_CACHE")
    assert cache.Store().root.parts[-2:] == (".cache", "dlcourse")


@pytest.mark.parametrize("damage, reason", [
    (lambda p: (p / cache.HISTORY).write_bytes(b"epo"), "bytes"),
    (lambda p: (p / cache.HISTORY).write_bytes(b"epoch,x\n1,c\n"), "checksum"),
    (lambda p: (p / cache.METRICS).unlink(), "missing"),
    (lambda p: (p / cache.MANIFEST).unlink(), "missing"),
    (lambda p: (p / cache.MANIFEST).write_text("[1, 2"), "unreadable"),
    (lambda p: (p / cache.MANIFEST).write_text('{"format": 1, "key": "other", "files": {}}'), "describe"),
])
def test_damage_is_detected(tmp_path, damage, reason):
    store = cache.Store(tmp_path)
    store.write("k1", files())
    damage(tmp_path / "k1")
    with pytest.raises(cache.CorruptEntry, match=reason):
        store.read("k1")
    assert reason in store.validate("k1")
    info = store.info("k1")
    assert not info.valid and reason in info.reason
    store.write("k1", files())  # a bad entry is replaced
    assert store.validate("k1") is None


def test_leftovers_of_killed_writers_are_ignored_and_swept(tmp_path):
    store = cache.Store(tmp_path)
    store.write("k1", files())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".tmp-k2-{dead}-abcd").mkdir()
    (tmp_path / f".tmp-k2-{dead}-abcd" / cache.HISTORY).write_text("half")
    (tmp_path / f".tmp-k3-{os.getpid()}-abcd").mkdir()  # a live writer: left alone
    assert store.keys() == ["k1"] and len(store.partial()) == 2
    assert store.read("k2") is None
    assert store.clean_partial() == 1
    assert [p.name for p in store.partial()] == [f".tmp-k3-{os.getpid()}-abcd"]


def test_remove_clear_resolve(tmp_path):
    store = cache.Store(tmp_path)
    for k in ("abc1", "abd2", "xyz3"):
        store.write(k, files())
    assert store.resolve("x") == "xyz3"
    with pytest.raises(ValueError, match="2 entries"):
        store.resolve("ab")
    with pytest.raises(ValueError, match="no entry"):
        store.resolve("q")
    assert store.remove("xyz3") > 0 and store.remove("xyz3") == 0
    n, freed = store.clear()
    assert n == 2 and freed > 0 and store.keys() == []


def test_lock_is_exclusive_across_processes(tmp_path):
    store = cache.Store(tmp_path)
    code = ("import sys; from dlcourse.cache import Store; from filelock import Timeout\n"
            "try:\n    Store(sys.argv[1]).lock('k').acquire(timeout=0.2); print('got')\n"
            "except Timeout:\n    print('busy')")
    with store.lock("k"):
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
        assert out.stdout.strip() == "busy"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert out.stdout.strip() == "got"


def test_cli_ls_show_clear(toy_root, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DLCOURSE_DATA", str(toy_root))
    spec = runs.RunSpec(dataset="mnist", train_size=100, test_size=50, hidden=[8], batch_size=50, device="cpu")
    where = tmp_path / "c"
    result = runs.run(spec, cache=where)
    store = cache.Store(where)
    store.write("0bad", files())
    (where / "0bad" / cache.HISTORY).write_text("x")

    assert cli.main(["runs", "ls", "--cache", str(where)]) == 0
    out = capsys.readouterr().out
    assert "2 entries" in out and result.key in out and "CORRUPT" in out and "mnist" in out and "test_acc=" in out

    assert cli.main(["runs", "show", result.key[:6], "--cache", str(where)]) == 0
    out = capsys.readouterr().out
    assert result.key in out and '"hidden": [8]' in out and "test_acc" in out and "epoch,train_loss" in out
    assert cli.main(["runs", "show", "0bad", "--cache", str(where)]) == 1
    assert cli.main(["runs", "show", "nope", "--cache", str(where)]) == 2

    monkeypatch.setattr("sys.stdin", open(os.devnull))
    assert cli.main(["runs", "clear", "--cache", str(where)]) == 1
    assert len(store.keys()) == 2
    assert cli.main(["runs", "clear", "0bad", "--yes", "--cache", str(where)]) == 0
    assert store.keys() == [result.key]
    assert cli.main(["runs", "clear", "--yes", "--cache", str(where)]) == 0
    assert store.keys() == [] and "deleted 1 entries" in capsys.readouterr().out
