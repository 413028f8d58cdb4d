"""dlcourse.train: fit, evaluate and the chunked forward on real tensors, determinism, divergence, bad input."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from dlcourse import data, models, train


@pytest.fixture
def toy(toy_root):
    return data.load("mnist", toy_root, device="cpu", val_size=100, download=False)


def test_fit_learns_and_reports_every_epoch(toy):
    torch.manual_seed(0)
    h = train.fit(models.mlp([32]), toy, epochs=3, batch_size=32, lr=3e-3, progress=False)
    e = h.epochs
    assert list(e.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
                               "seconds"]
    assert e["epoch"].tolist() == [1, 2, 3] and not h.diverged
    assert e["train_loss"].iloc[-1] < e["train_loss"].iloc[0]
    assert e["test_acc"].iloc[-1] >= 0.9 and (e["seconds"] > 0).all()


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_both_losses_train(toy, loss):
    model = models.mlp([32])
    before = train.evaluate(model, toy.test, loss)[1]
    h = train.fit(model, toy, epochs=4, batch_size=32, lr=3e-3, loss=loss, progress=False)
    assert h.final["test_acc"] >= 0.85 > before


@pytest.mark.parametrize("batch_size", [1, 3, 7, 10, 100])
def test_forward_in_chunks_is_one_eval_forward_and_restores_the_mode(batch_size):
    torch.manual_seed(0)
    model = models.mlp([16], batchnorm=True, dropout=0.5, in_features=4, out_features=3)
    x = torch.randn(10, 4)
    model.eval()
    with torch.no_grad():
        expected = model(x)
    model.train()
    out = train.forward_in_chunks(model, x, batch_size)
    assert out.shape == (10, 3) and not out.requires_grad
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)  # eval mode: no dropout, running BN stats
    assert model.training
    assert all(m.training for m in model.modules())
    model.eval()
    train.forward_in_chunks(model, x, batch_size)
    assert not model.training  # an eval-mode model stays in eval mode


def test_forward_in_chunks_of_nothing_and_on_error():
    calls = []
    model = torch.nn.Linear(4, 3)
    model.register_forward_hook(lambda *a: calls.append(1))
    assert train.forward_in_chunks(model, torch.empty(0, 4), 5).numel() == 0 and not calls

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    broken = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        train.forward_in_chunks(broken, torch.zeros(2, 4), 1)
    assert broken.training


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_evaluate_is_the_mean_over_chunks(toy, loss):
    torch.manual_seed(1)
    model = models.mlp([32], dropout=0.5).train()
    split = toy.test
    fn = train.loss_fn(loss)
    model.eval()
    with torch.no_grad():
        out = model(split.x)
    model.train()
    whole = train.evaluate(model, split, loss)
    assert whole[0] == pytest.approx(float(fn(out, split.y)), rel=1e-6)
    assert whole[1] == pytest.approx(float((out.argmax(1) == split.y).float().mean()))
    chunked = train.evaluate(model, split, loss, batch_size=64)
    assert chunked[0] == pytest.approx(whole[0], rel=1e-5) and chunked[1] == whole[1]
    assert model.training
    assert train.evaluate(model, (split.x[:0], split.y[:0]), loss) == (0.0, 0.0)


def test_mse_on_classes_is_softmax_against_one_hot():
    out = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    y = torch.tensor([0, 1])
    p = out.softmax(1)
    expected = ((p[0] - torch.tensor([1.0, 0])) ** 2).sum() + ((p[1] - torch.tensor([0, 1.0])) ** 2).sum()
    assert torch.isclose(train.loss_fn("mse")(out, y), expected / 2)


def test_same_inputs_give_bit_identical_history(toy):
    runs = []
    for _ in range(2):
        torch.manual_seed(5)
        model = models.mlp([16])
        h = train.fit(model, toy, epochs=2, batch_size=16, seed=7, record_grad_norm=True, progress=False)
        runs.append((h, model))
    (a, ma), (b, mb) = runs
    cols = [c for c in a.epochs.columns if c != "seconds"]
    pd.testing.assert_frame_equal(a.epochs[cols], b.epochs[cols], check_exact=True)
    pd.testing.assert_frame_equal(a.steps, b.steps, check_exact=True)
    assert all(torch.equal(p, q) for p, q in zip(ma.parameters(), mb.parameters()))


def test_divergence_is_recorded_not_raised(toy):
    h = train.fit(models.mlp([32]), toy, epochs=5, batch_size=32, optimizer="sgd", lr=1e30, progress=False)
    assert h.diverged and len(h.epochs) < 5
    assert not math.isfinite(h.epochs["train_loss"].iloc[-1])


def test_steps_grad_norms_and_snapshots(toy):
    model = models.mlp([8])
    h = train.fit(model, toy, epochs=2, batch_size=100, record_grad_norm=True, snapshot_every=2, progress=False)
    assert len(h.steps) == 10 and h.steps["epoch"].tolist() == [1] * 5 + [2] * 5
    assert (h.steps["grad_norm"] > 0).all()
    assert [s for s, _ in h.snapshots] == [0, 2, 4, 6, 8, 10]
    first, last = h.snapshots[0][1], h.snapshots[-1][1]
    assert set(first) == {n for n, _ in model.named_parameters()}
    assert not torch.equal(first["1.weight"], last["1.weight"])
    assert all(t.device.type == "cpu" for t in last.values())  # CPU copies, wherever the model trained
    assert torch.equal(last["1.weight"], model[1].weight.detach().cpu())


def test_grad_norm_matches_torch(toy):
    model = models.mlp([8])
    out = train.loss_fn("ce")(model(toy.train.x[:10]), toy.train.y[:10])
    out.backward()
    params = list(model.parameters())
    expected = torch.nn.utils.clip_grad_norm_(params, float("inf"))
    assert torch.isclose(train._grad_norm(params), expected)


def test_regression_targets_fit_a_function():
    s = data.function_data("sinc", n=200, device="cpu")
    torch.manual_seed(0)
    model = models.mlp([32, 32], in_features=1, out_features=1)
    h = train.fit(model, s, epochs=300, batch_size=200, loss="mse", lr=1e-2, progress=False,
                  eval_sets={"grid": s})
    assert math.isnan(h.final["train_acc"]) and h.final["grid_loss"] < 0.1 * h.epochs["grid_loss"].iloc[0]


def test_hooks_see_every_epoch(toy):
    seen = []
    train.fit(models.mlp([8]), toy, epochs=3, batch_size=100, hooks=[lambda e, m, row: seen.append(e)],
              progress=False)
    assert seen == [1, 2, 3]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"optimizer": "adagrad"}, "optimizer='adagrad'"),
        ({"lr": -1e-3}, "lr=-0.001"),
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"batch_size": 32.5}, "batch_size=32.5"),
        ({"loss": "hinge"}, "loss='hinge'.*ce, mse"),
    ],
)
def test_bad_arguments_fail_before_training(toy, kwargs, match):
    model = models.mlp([8])
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=match):
        train.fit(model, toy, progress=False, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.data
def test_one_epoch_on_fashion_mnist_reaches_084(real_root):
    ds = data.load("fashion-mnist", real_root, device="cpu", download=False)
    torch.manual_seed(0)
    h = train.fit(models.mlp([256]), ds, epochs=1, batch_size=32, lr=1e-3, progress=False)
    assert h.final["test_acc"] >= 0.84, h.epochs


@pytest.mark.parametrize("bad", ["images", 3, (torch.zeros(2, 4),)])
def test_evaluate_and_fit_reject_data_that_is_no_split_or_pair(bad):
    model = models.mlp([8], in_features=4, out_features=3)
    with pytest.raises(ValueError, match=r"data=\w+ is not valid; pass a Split or an \(x, y\) pair"):
        train.evaluate(model, bad)
    with pytest.raises(ValueError, match=r"data=\w+ is not valid"):
        train.fit(model, bad, progress=False)


def test_step_threads_one_thread_for_small_dense_steps_only_and_restored():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        small = list(models.mlp([10]).parameters())
        conv = list(models.cnn((2,), (4,)).parameters())
        cpu = torch.device("cpu")
        with train.step_threads(cpu, small, 10):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with train.step_threads(cpu, small, 100_000):  # batch x parameters above SMALL_STEP
            assert torch.get_num_threads() == 2
        with train.step_threads(cpu, conv, 1):  # a convolution is never a small step
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), train.step_threads(cpu, small, 10):
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


_LONG_FIT = """
import resource, sys, tempfile
from dlcourse import experiments
from dlcourse.runs import RunSpec, sweep

def peak_after(epochs):
    specs = [RunSpec.from_dict(d) for d in experiments.function_fits(["sinc"], [2], range(5), epochs=epochs,
                                                                     device="cpu")]
    with tempfile.TemporaryDirectory() as tmp:
        sweep(specs, cache=tmp, progress=False)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

print(peak_after(150), peak_after(750))
"""


def test_long_fits_of_one_step_epochs_keep_memory_flat():
    """Lab 5's full profile (20,000 one-step epochs, gradient norms recorded) once grew ~1 MB per
    epoch: per-step records kept as tiny tensors fragmented the C heap. A fresh process with
    glibc's default settings, so only the trainer's own allocations count."""
    import os
    import subprocess
    import sys

    from dlcourse.fast import SETTINGS

    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    out = subprocess.run([sys.executable, "-c", _LONG_FIT], env=env, check=True, capture_output=True, text=True)
    short, long = map(float, out.stdout.split())
    assert long - short < 150, f"peak memory grew from {short:.0f} MB to {long:.0f} MB over 600 more epochs"
