"""dlcourse.data: real loading code on IDX files the tests write, errors for missing and corrupt data."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import make_idx_dataset, serve, write_idx, write_sha256sums
from dlcourse import data, download, settings


def test_loads_toy_idx_through_torchvision(toy_root):
    ds = data.load("mnist", toy_root, device="cpu", download=False)
    assert len(ds.train) == 600 and len(ds.test) == 200  # sizes read from the files
    assert ds.train.x.shape == (600, 1, 28, 28) and ds.train.x.dtype == torch.float32
    assert ds.train.y.dtype == torch.int64 and set(ds.train.y.tolist()) <= set(range(10))
    assert ds.num_classes == 10 and ds.val is None


def test_fashion_class_names(toy_root):
    ds = data.load("fashion-mnist", toy_root, device="cpu", download=False)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"


def test_validation_split_is_fixed_and_disjoint(toy_root):
    a = data.load("mnist", toy_root, device="cpu", val_size=100, train_size=200, download=False)
    b = data.load("mnist", toy_root, device="cpu", val_size=100, download=False)
    assert len(a.val) == 100 and len(a.train) == 200 and len(b.train) == 500
    assert torch.equal(a.val.x, b.val.x)  # same images whatever train_size asks
    train_rows = {tuple(r) for r in b.train.x.flatten(1)[:, ::7].tolist()}
    val_rows = {tuple(r) for r in b.val.x.flatten(1)[:, ::7].tolist()}
    assert not train_rows & val_rows


def test_sizes_beyond_data_are_rejected(toy_root):
    with pytest.raises(ValueError, match="train_size=5000.*600"):
        data.load("mnist", toy_root, device="cpu", train_size=5000, download=False)
    with pytest.raises(ValueError, match="val_size=600"):
        data.load("mnist", toy_root, device="cpu", val_size=600, download=False)


def test_random_labels_are_a_seeded_permutation(toy_root):
    clean = data.load("mnist", toy_root, device="cpu", download=False)
    noisy = data.load("mnist", toy_root, device="cpu", random_labels=True, seed=3, download=False)
    again = data.load("mnist", toy_root, device="cpu", random_labels=True, seed=3, download=False)
    assert torch.equal(torch.bincount(clean.train.y), torch.bincount(noisy.train.y))
    assert (clean.train.y != noisy.train.y).float().mean() > 0.5
    assert torch.equal(noisy.train.y, again.train.y)
    assert torch.equal(clean.test.y, noisy.test.y)  # test labels stay true


def test_environment_variable_and_argument_order(toy_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(toy_root))
    assert data.find_root("mnist") == toy_root
    other = make_idx_dataset(tmp_path / "other", "mnist", n_train=50, n_test=20)
    assert len(data.load("mnist", other, device="cpu", download=False).train) == 50


def test_missing_data_names_dataset_places_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path / "env"))
    with pytest.raises(data.DataError) as err:
        data.load("fashion-mnist", device="cpu", download=False)
    msg = str(err.value)
    assert "fashion-mnist" in msg and "DLCOURSE_DATA" in msg and "DLCOURSE_MIRROR" in msg
    for place in (tmp_path / "env", settings.project_root() / "data"):
        assert str((place / "FashionMNIST" / "raw").resolve()) in msg


def test_explicit_root_is_authoritative(toy_root, tmp_path, monkeypatch):
    """A root= that holds no data is an error listing that root alone, even when DLCOURSE_DATA has the data."""
    monkeypatch.setenv("DLCOURSE_DATA", str(toy_root))
    empty = tmp_path / "arg"
    assert data.find_root("mnist", empty) is None
    with pytest.raises(data.DataError) as err:
        data.load("mnist", empty, device="cpu", download=False)
    msg = str(err.value)
    assert str((empty / "MNIST" / "raw").resolve()) in msg and "explicit root is the only place" in msg
    assert str(toy_root / "MNIST") not in msg


def test_relative_roots_resolve_against_the_project(tmp_path, monkeypatch):
    """JupyterLab runs kernels in notebooks/: ./data must still mean the checkout's data/."""
    monkeypatch.chdir(tmp_path)
    project = settings.project_root()
    monkeypatch.setenv("DLCOURSE_DATA", "shared")
    assert settings.data_roots() == [project / "shared", project / "data"]
    assert settings.data_roots("mine") == [project / "mine"]
    assert settings.data_roots(tmp_path / "abs") == [tmp_path / "abs"]


def test_offline_download_failure_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_MIRROR", "http://127.0.0.1:9/")  # the discard port: refused at once
    with pytest.raises(data.DataError) as err:
        data.load("mnist", tmp_path / "root", device="cpu")
    msg = str(err.value)
    assert "download failed" in msg and "http://127.0.0.1:9/MNIST/raw/train-images-idx3-ubyte.gz" in msg
    assert not (tmp_path / "root" / "MNIST").exists()


def test_only_127_mirrors_in_tests(monkeypatch):
    """Torchvision's own mirrors come after DLCOURSE_MIRROR, and not at all under DLCOURSE_MIRROR_ONLY."""
    monkeypatch.setenv("DLCOURSE_MIRROR", "http://127.0.0.1:1/ /srv/data")
    cls = data.DATASETS["mnist"].cls
    assert download.mirrors(cls) == [("http://127.0.0.1:1/", True), (Path("/srv/data").as_uri() + "/", True)]
    monkeypatch.setenv("DLCOURSE_MIRROR_ONLY", "0")
    assert download.mirrors(cls)[2:] == [(m, False) for m in cls.mirrors]


@pytest.fixture
def toy_mirror(tmp_path):
    """A mirror folder holding toy MNIST .gz files (not torchvision's) and their SHA256SUMS."""
    folder = make_idx_dataset(tmp_path / "mirror", "mnist", n_train=300, n_test=100, gz=True)
    for f in (folder / "MNIST" / "raw").glob("*-ubyte"):
        f.unlink()  # a mirror serves the .gz files only
    write_sha256sums(folder)
    return folder


def test_download_through_a_mirror_checked_by_its_sha256sums(toy_mirror, tmp_path, monkeypatch):
    root = tmp_path / "empty"
    root.mkdir()
    monkeypatch.setenv("DLCOURSE_DATA", str(root))
    lines = []
    with serve(toy_mirror) as url:
        monkeypatch.setenv("DLCOURSE_MIRROR", url)
        ds = data.load("mnist", device="cpu")
        place, fetched = data.get("mnist", log=lines.append)
    assert (len(ds.train), len(ds.test)) == (300, 100) and ds.root == root == place
    assert fetched == [] and len(lines) == 0  # the second call found the data
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == sorted(
        [f"{p}-{k}-ubyte{gz}" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1") for gz in ("", ".gz")])
    assert sorted(p.name for p in root.iterdir()) == ["MNIST"]  # no temporary folder, no lock file


@pytest.mark.parametrize("damage", ["corrupt", "unlisted"])
def test_a_file_failing_its_check_is_an_error_and_leaves_nothing(damage, toy_mirror, tmp_path, monkeypatch):
    victim = toy_mirror / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    if damage == "corrupt":  # listed in SHA256SUMS, but the bytes served are others
        victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    else:  # no SHA256SUMS: only torchvision's MD5s count, and toy files match none
        (toy_mirror / "SHA256SUMS").unlink()
    root = tmp_path / "empty"
    root.mkdir()
    with serve(toy_mirror) as url:
        monkeypatch.setenv("DLCOURSE_MIRROR", url)
        with pytest.raises(data.DataError) as err:
            data.load("mnist", root, device="cpu")
    msg = str(err.value)
    bad = "t10k-labels-idx1-ubyte.gz" if damage == "corrupt" else "train-images-idx3-ubyte.gz"
    assert f"MNIST/raw/{bad} from the mirror {url} does not match its checksum" in msg, msg
    assert list(root.iterdir()) == []


def test_the_download_waits_for_the_lock(toy_mirror, tmp_path, monkeypatch):
    """While another process holds the data root's lock, nothing is fetched; after, its data is used."""
    root = tmp_path / "shared-root"
    root.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom dlcourse import download\nfrom conftest import make_idx_dataset\n"
         f"lock = download._lock(__import__('pathlib').Path({str(root)!r}), 'MNIST')\nlock.acquire()\n"
         "print('held', flush=True)\nsys.stdin.readline()\n"
         f"make_idx_dataset(__import__('pathlib').Path({str(root)!r}), 'mnist', n_train=77, n_test=11)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])})
    try:
        assert holder.stdout.readline().strip() == "held"
        result = {}
        with serve(toy_mirror) as url:
            monkeypatch.setenv("DLCOURSE_MIRROR", url)
            waiter = threading.Thread(target=lambda: result.update(got=data.get("mnist", root)))
            waiter.start()
            time.sleep(1.5)
            assert waiter.is_alive() and list(root.iterdir()) == []  # waiting, nothing written
            holder.communicate("go\n", timeout=60)
            waiter.join(60)
        place, fetched = result["got"]
        assert place == root and fetched == []  # the other process's data, not a second download
        assert len(data.load("mnist", root, device="cpu", download=False).train) == 77
    finally:
        holder.kill()


def test_killed_download_temporaries_are_removed(toy_mirror, tmp_path, monkeypatch):
    """Under the lock of (root, MNIST) any .tmp-MNIST-* folder is a killed download's; others are not touched."""
    root = tmp_path / "root"
    leftover = root / ".tmp-MNIST-12345-deadbeef"
    (leftover / "sub").mkdir(parents=True)
    other = root / ".tmp-FashionMNIST-12345-cafecafe"  # another data set: another lock, maybe running
    other.mkdir()
    with serve(toy_mirror) as url:
        monkeypatch.setenv("DLCOURSE_MIRROR", url)
        data.get("mnist", root)
    assert not leftover.exists() and other.exists()


def test_truncated_file_is_a_clear_error(tmp_path):
    root = make_idx_dataset(tmp_path, "mnist")
    f = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:5000])
    with pytest.raises(data.DataError, match="truncated or corrupt"):
        data.load("mnist", root, device="cpu", download=False)


def test_mismatched_labels_are_a_clear_error(tmp_path):
    root = make_idx_dataset(tmp_path, "mnist")
    write_idx(root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", torch.zeros(150, dtype=torch.uint8).numpy())
    with pytest.raises(data.DataError, match="200 images but 150 labels"):
        data.load("mnist", root, device="cpu", download=False)


def test_bad_arguments_fail_before_reading(monkeypatch, toy_root):
    monkeypatch.setattr(data, "_read_raw", lambda *a: pytest.fail("data was read"))
    with pytest.raises(ValueError, match="dataset='cifar'.*mnist, fashion-mnist"):
        data.load("cifar", toy_root)
    with pytest.raises(ValueError, match="train_size=0"):
        data.load("mnist", toy_root, train_size=0)
    with pytest.raises(ValueError, match="val_size=-1"):
        data.load("mnist", toy_root, val_size=-1)
    with pytest.raises(ValueError, match="device='tpu'"):
        data.load("mnist", toy_root, device="tpu")


def test_function_targets():
    s = data.function_data("sinc", n=5, low=-0.2, high=0.2, device="cpu")
    assert s.x.shape == (5, 1) and torch.allclose(s.y[2], torch.tensor([1.0]))
    assert torch.allclose(s.y[4], torch.sin(torch.tensor(torch.pi)) / torch.pi, atol=1e-6)  # 5*pi*0.2 = pi
    sign = data.function_data("sign", n=400, device="cpu")
    assert set(sign.y.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert sign.y[sign.x.squeeze() == 0.05].tolist() in ([], [[1.0]])
    with pytest.raises(ValueError, match="function='cos'"):
        data.function_data("cos")
    with pytest.raises(ValueError, match="low must be below high"):
        data.function_data("sinc", low=1, high=0)


def test_batches_cover_every_sample_once_per_epoch():
    g = torch.Generator().manual_seed(0)
    epoch1 = data.batch_indices(103, 10, g)
    epoch2 = data.batch_indices(103, 10, g)
    assert [len(b) for b in epoch1] == [10] * 10 + [3]  # last partial batch kept
    assert sorted(torch.cat(epoch1).tolist()) == list(range(103))
    assert sorted(torch.cat(epoch2).tolist()) == list(range(103))
    assert not torch.equal(torch.cat(epoch1), torch.cat(epoch2))  # a fresh permutation each epoch
    again = data.batch_indices(103, 10, torch.Generator().manual_seed(0))
    assert torch.equal(torch.cat(epoch1), torch.cat(again))


def test_data_report(toy_root):
    rows = {r["dataset"]: r for r in data.data_report(toy_root)}
    assert rows["mnist"]["found"] and rows["mnist"]["train"] == 600 and rows["mnist"]["test"] == 200


def test_data_get_command_says_what_it_did(real_root, tmp_path, monkeypatch, capsys):
    """The course's MNIST: the official test files pass torchvision's MD5, the 10,000-image training
    subset passes only the mirror's SHA256SUMS; `dlcourse data get` says which check each passed."""
    from dlcourse import cli

    root = tmp_path / "root"
    with serve(real_root) as url:
        monkeypatch.setenv("DLCOURSE_MIRROR", url)
        assert cli.main(["data", "get", "mnist", "--root", str(root)]) == 0
        out = capsys.readouterr().out
        assert f"MNIST/raw/t10k-images-idx3-ubyte.gz: downloaded from {url} (md5 of torchvision)" in out, out
        assert f"MNIST/raw/train-images-idx3-ubyte.gz: downloaded from {url} (sha256 in the mirror's SHA256SUMS)" in out
        assert f"mnist: downloaded 4 files into {(root / 'MNIST' / 'raw').resolve()}" in out
        assert cli.main(["data", "get", "mnist", "--root", str(root)]) == 0
        assert f"mnist: already in {(root / 'MNIST' / 'raw').resolve()}" in capsys.readouterr().out
        assert cli.main(["data", "get", "cifar", "--root", str(root)]) == 2
        assert "dataset='cifar' is not valid; choose one of: mnist, fashion-mnist" in capsys.readouterr().err
    assert len(data.load("mnist", root, device="cpu", download=False).train) == len(
        data.load("mnist", real_root, device="cpu", download=False).train)
