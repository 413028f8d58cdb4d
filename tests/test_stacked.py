"""The stacked trainer: each member trains as `train.fit` would (optimizers, losses, data order,
random labels, records, divergence), and stacked sweeps store each member under its own key."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from dlcourse import data, models, optim, runs, stacked, train


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
@pytest.mark.parametrize("shared_lr", [True, False])
def test_stacked_optimizer_matches_torch_optim(name, shared_lr):
    torch.manual_seed(0)
    k = 3
    lrs = [1e-2] * k if shared_lr else [1e-2, 3e-3, 2e-2]
    wds = [0.0, 0.0, 0.0] if shared_lr else [0.0, 1e-2, 5e-2]
    moms = [0.9] * k if shared_lr else [0.9, 0.5, 0.7]
    w = torch.randn(k, 5, 4)
    stack = w.clone().requires_grad_()
    members = [w[i].clone().requires_grad_() for i in range(k)]
    opt = stacked.StackedOptimizer(name, [stack], lrs, moms, wds)
    refs = [optim.make(name, [members[i]], lr=lrs[i], momentum=moms[i], weight_decay=wds[i]) for i in range(k)]
    for _ in range(6):
        g = torch.randn(k, 5, 4)
        stack.grad = g.clone()
        opt.step()
        for i in range(k):
            members[i].grad = g[i].clone()
            refs[i].step()
    for i in range(k):
        torch.testing.assert_close(stack.detach()[i], members[i].detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss, real", [("ce", False), ("mse", False), ("mse", True)])
def test_member_losses_match_train_loss_fn(loss, real):
    torch.manual_seed(1)
    out = torch.randn(3, 7, 1 if real else 5)
    target = torch.randn(3, 7, 1) if real else torch.randint(0, 5, (3, 7))
    got = stacked.member_losses(loss, out, target)
    fn = train.loss_fn(loss)
    want = torch.stack([fn(out[i], target[i]) for i in range(3)])
    torch.testing.assert_close(got, want)


def _members(seeds, hidden=(16,), in_features=784, out_features=10, **kw):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(models.mlp(hidden, in_features=in_features, out_features=out_features, **kw))
    return out


@pytest.mark.parametrize("optimizer, lrs", [("adam", [1e-3, 3e-3, 1e-2]), ("sgd", [0.05, 0.1, 0.02]),
                                            ("nesterov", [0.01, 0.02, 0.03])])
def test_fit_stacked_matches_sequential_fit(toy_root, optimizer, lrs):
    ds = data.load("mnist", toy_root, device="cpu", val_size=100)
    seeds = [0, 1, 2]
    kw = dict(epochs=2, batch_size=32, optimizer=optimizer, loss="ce", device="cpu",
              record_grad_norm=True, snapshot_every=5)
    seq = []
    for model, s, lr in zip(_members(seeds, activation="tanh"), seeds, lrs):
        seq.append((train.fit(model, ds, lr=lr, seed=s, progress=False, **kw), model))
    stack_models = _members(seeds, activation="tanh")
    hists = stacked.fit_stacked(stack_models, [ds.train] * 3, lrs=lrs, seeds=seeds,
                                eval_sets=ds.eval_sets(), **kw)
    for (h_seq, m_seq), h, m in zip(seq, hists, stack_models):
        assert list(h.epochs.columns) == list(h_seq.epochs.columns)
        cols = [c for c in h.epochs.columns if c != "seconds"]
        pd.testing.assert_frame_equal(h.epochs[cols], h_seq.epochs[cols], rtol=1e-4, atol=1e-5)
        pd.testing.assert_frame_equal(h.steps, h_seq.steps, rtol=1e-3, atol=1e-5)
        assert [s for s, _ in h.snapshots] == [s for s, _ in h_seq.snapshots]
        for (_, a), (_, b) in zip(h.snapshots, h_seq.snapshots):
            assert a.keys() == b.keys()
            for name in a:
                torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
        for (n1, p1), (n2, p2) in zip(m.named_parameters(), m_seq.named_parameters()):
            assert n1 == n2
            torch.testing.assert_close(p1, p2, rtol=1e-4, atol=1e-5)


def test_fit_stacked_random_labels_and_real_targets(toy_root):
    base = data.load("mnist", toy_root, device="cpu", train_size=300)
    seeds = [4, 5]
    trains = [data.load("mnist", toy_root, device="cpu", train_size=300, random_labels=True, seed=s).train
              for s in seeds]
    trains = [data.Split(base.train.x, t.y) for t in trains]  # one image tensor, per-member labels
    hists = stacked.fit_stacked(_members(seeds), trains, epochs=1, batch_size=50, lrs=[1e-3, 1e-3], seeds=seeds,
                                device="cpu")
    for s, t, h in zip(seeds, trains, hists):
        (model,) = _members([s])
        ref = train.fit(model, t, epochs=1, batch_size=50, lr=1e-3, seed=s, device="cpu", progress=False)
        assert h.epochs["train_loss"][0] == pytest.approx(ref.epochs["train_loss"][0], rel=1e-4)

    x = data.function_data("sinc", 64)
    grid = data.function_data("sinc", 200)
    hists = stacked.fit_stacked(_members([0, 1], hidden=(8,), in_features=1, out_features=1), [x, x], epochs=2,
                                batch_size=16, lrs=[1e-2, 2e-2], seeds=[0, 1], loss="mse", device="cpu",
                                eval_sets={"test": grid})
    (model,) = _members([1], hidden=(8,), in_features=1, out_features=1)
    ref = train.fit(model, x, epochs=2, batch_size=16, lr=2e-2, seed=1, loss="mse", device="cpu", progress=False,
                    eval_sets={"test": grid})
    assert hists[1].epochs["test_loss"].tolist() == pytest.approx(ref.epochs["test_loss"].tolist(), rel=1e-4)
    assert hists[1].epochs["train_acc"].isna().all()


def test_a_diverging_member_stops_alone(toy_root):
    ds = data.load("mnist", toy_root, device="cpu", train_size=200)
    hists = stacked.fit_stacked(_members([0, 1]), [ds.train] * 2, epochs=3, batch_size=50, optimizer="sgd",
                                lrs=[1e-2, 1e12], seeds=[0, 1], device="cpu", eval_sets={"test": ds.test})
    assert not hists[0].diverged and len(hists[0].epochs) == 3
    assert hists[1].diverged and len(hists[1].epochs) == 1 and not math.isfinite(hists[1].epochs["train_loss"][0])
    assert "test_acc" not in hists[1].epochs or hists[1].epochs["test_acc"].isna().all()


def test_adam_steps_with_torchs_fused_kernel_per_member():
    w = torch.randn(2, 3, 4, requires_grad=True)
    opt = stacked.make_optimizer("adam", [w], [1e-2, 1e-3], [0.9, 0.9], [0.0, 0.0])
    assert isinstance(opt, stacked.PerMemberTorch) and all(o.defaults["fused"] for o in opt.opts)
    before = w.detach().clone()
    w.grad = torch.ones_like(w)
    opt.step()
    torch.testing.assert_close(before - w.detach(), torch.tensor([1e-2, 1e-3]).view(2, 1, 1).expand(2, 3, 4))
    assert isinstance(stacked.make_optimizer("nadam", [w], [1e-2] * 2, [0.9] * 2, [0.0] * 2), stacked.StackedOptimizer)


def test_supports_and_bad_arguments():
    assert stacked.supports(models.mlp([8])) is None
    assert "BatchNorm1d" in stacked.supports(models.mlp([8], batchnorm=True))
    assert "Dropout" in stacked.supports(models.mlp([8], dropout=0.5))
    assert "Conv2d" in stacked.supports(models.cnn([4], []))
    x = data.Split(torch.randn(10, 784), torch.randint(0, 10, (10,)))
    with pytest.raises(ValueError, match="architecture"):
        stacked.fit_stacked([models.mlp([8]), models.mlp([9])], [x, x], seeds=[0, 1], device="cpu")
    with pytest.raises(ValueError, match="lrs"):
        stacked.fit_stacked(_members([0, 1]), [x, x], seeds=[0, 1], lrs=[1e-3], device="cpu")
    with pytest.raises(ValueError, match="lr=-1"):
        stacked.fit_stacked(_members([0, 1]), [x, x], seeds=[0, 1], lrs=[1e-3, -1], device="cpu")
    with pytest.raises(ValueError, match="stacked training"):
        stacked.fit_stacked([nn.Sequential(nn.Linear(784, 10), nn.BatchNorm1d(10))] * 2, [x, x], seeds=[0, 1],
                            device="cpu")


def test_stacked_sweep_stores_each_member_and_falls_back(toy_root, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(toy_root))
    runs._DATA.clear()
    calls = {"fit": 0, "stack": []}
    real_fit, real_stack = train.fit, stacked.fit_stacked

    def fit(*a, **k):
        calls["fit"] += 1
        return real_fit(*a, **k)

    def stack(models_, *a, **k):
        calls["stack"].append(len(models_))
        return real_stack(models_, *a, **k)

    monkeypatch.setattr(train, "fit", fit)
    monkeypatch.setattr(stacked, "fit_stacked", stack)
    base = dict(dataset="mnist", train_size=300, test_size=100, hidden=[16], batch_size=32, epochs=2, device="cpu")
    specs = [runs.RunSpec.from_dict({**base, "seed": s, "lr": lr}) for s in range(3) for lr in (1e-3, 3e-3)]
    specs.append(runs.RunSpec.from_dict({**base, "batchnorm": True}))      # falls back to a local run
    specs.append(runs.RunSpec.from_dict({**base, "hidden": [12], "seed": 7}))  # a group of one: local
    df = runs.sweep(specs, backend="stacked", progress=False, max_stack=4)
    assert sorted(calls["stack"]) == [2, 4] and calls["fit"] == 2
    assert df["backend"].tolist() == ["stacked"] * 6 + ["local", "local"]
    assert df["result"][0].env["stack_size"] in (2, 4)

    # each member is stored under its own key: a later run() is a hit
    for spec in specs:
        assert runs.run(spec).cached
    assert calls["fit"] == 2 and len(calls["stack"]) == 2

    # stacked and sequential agree in distribution (here: closely, member by member)
    seq = runs.sweep(specs[:6], backend="local", force=True, progress=False)
    assert abs(seq["test_acc"].mean() - df["test_acc"][:6].mean()) < 0.01
    for a, b in zip(seq["result"], df["result"][:6]):
        assert list(a.history.columns) == list(b.history.columns)
        assert a.history["train_loss"].tolist() == pytest.approx(b.history["train_loss"].tolist(), rel=1e-3)


def test_stacked_sweep_recomputes_a_corrupt_member_once(toy_root, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(toy_root))
    base = dict(dataset="mnist", train_size=100, test_size=50, hidden=[8], batch_size=50, device="cpu")
    specs = [runs.RunSpec.from_dict({**base, "seed": s}) for s in range(3)]
    first = runs.sweep(specs, backend="stacked", progress=False)
    (first["result"][1].path / "history.csv").write_text("epoch\n")
    with pytest.warns(runs.CacheWarning) as caught:
        again = runs.sweep(specs, backend="stacked", progress=False)
    assert len(caught) == 1 and specs[1].key in str(caught[0].message)
    assert again["cached"].tolist() == [True, False, True]
    assert runs.sweep(specs, backend="stacked", progress=False)["cached"].all()
