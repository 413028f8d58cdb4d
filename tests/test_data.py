"""dlcourse.data: real loading code on IDX files the tests write, errors for missing and corrupt data."""

from __future__ import annotations

import urllib.error

import pytest
import torch

from conftest import make_idx_dataset, write_idx
from dlcourse import data


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
    monkeypatch.chdir(tmp_path)
    with pytest.raises(data.DataError) as err:
        data.load("fashion-mnist", tmp_path / "arg", device="cpu", download=False)
    msg = str(err.value)
    assert "fashion-mnist" in msg and "DLCOURSE_DATA" in msg
    for place in ("arg", "env", "data"):
        assert str((tmp_path / place / "FashionMNIST" / "raw").resolve()) in msg


def test_offline_download_failure_is_explained(tmp_path, monkeypatch):
    def offline(self, *a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(data.DATASETS["mnist"].cls, "download", offline)
    monkeypatch.delenv("DLCOURSE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(data.DataError, match="download failed.*no network"):
        data.load("mnist", tmp_path / "root", device="cpu")


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
