"""The stacking engine and `train.fit` on a stack: each member computes and trains as it would
alone (forward, optimizers, losses, data order, random labels, records, divergence), any model of
the builders stacks (MLPs with batch norm and dropout, CNNs), and stacked sweeps store each
member under its own key."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from dlcourse import data, models, optim, runs, stacked, train

BUILDS = {
    "mlp": lambda: models.mlp([16, 8], activation="tanh"),
    "mlp_bn_dropout": lambda: models.mlp([16], batchnorm=True, dropout=0.3),
    "cnn": lambda: models.cnn([4, 8], [16]),
    "cnn_bn_nopool": lambda: models.cnn([4], [16], batchnorm=True, pool=False, activation="gelu"),
}


def _members(seeds, build=None, hidden=(16,), **kw):
    """One model per seed, each built under its own seed (as a run builds it)."""
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(build() if build else models.mlp(hidden, **kw))
    return out


@pytest.mark.parametrize("name", BUILDS)
def test_stack_computes_what_each_member_computes(name):
    members = _members([0, 1, 2], BUILDS[name])
    stack = stacked.Stack(members)
    x = torch.randn(3, 6, 1, 28, 28)
    torch.manual_seed(9)
    out = stack.eval()(x)
    ref = torch.stack([m.eval()(x[i]) for i, m in enumerate(members)])
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    shared = torch.randn(5, 1, 28, 28)  # one batch for every member: an evaluation set
    torch.testing.assert_close(stack(shared, shared=True), torch.stack([m(shared) for m in members]),
                               rtol=1e-5, atol=1e-5)
    if "dropout" not in name:  # training mode: batch norm uses each member's own batch statistics
        stack.train(), [m.train() for m in members]
        torch.testing.assert_close(stack(x), torch.stack([m(x[i]) for i, m in enumerate(members)]),
                                   rtol=1e-5, atol=1e-5)
    for i, m in enumerate(members):  # each member's state, running statistics included, comes back out
        state = stack.member_state_dict(i)
        assert state.keys() == m.state_dict().keys()
        assert all(torch.equal(state[k], m.state_dict()[k]) for k in state)


def _small() -> nn.Sequential:
    # no batch norm right after a Linear: that bias's gradient is zero up to rounding, which
    # RMSprop and Adam would blow up to full steps and compare noise
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.BatchNorm1d(4), nn.Linear(4, 3))


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
@pytest.mark.parametrize("shared", [True, False])
def test_torch_optim_on_the_stack_steps_each_member_as_alone(name, shared):
    """One torch.optim optimizer over the stacked tensors (param groups where settings differ)."""
    k = 4
    lrs = [1e-2] * k if shared else [1e-2, 1e-2, 3e-3, 2e-2]
    wds = [0.0] * k if shared else [0.0, 0.0, 1e-2, 5e-2]
    moms = [0.9] * k if shared else [0.9, 0.9, 0.5, 0.7]
    members = _members(range(k), _small)
    alone = _members(range(k), _small)
    stack = stacked.Stack(members)
    settings = [{"lr": a, "momentum": b, "weight_decay": c} for a, b, c in zip(lrs, moms, wds)]
    groups = stack.param_groups(settings)
    assert len(groups) == (1 if shared else 3)
    opt = optim.make(name, groups)
    refs = [optim.make(name, m.parameters(), lr=a, momentum=b, weight_decay=c)
            for m, a, b, c in zip(alone, lrs, moms, wds)]
    for step in range(6):
        x = torch.randn(k, 8, 5, generator=torch.Generator().manual_seed(step))
        stack.zero_grad(set_to_none=True)
        stack(x).pow(2).mean(dim=(1, 2)).sum().backward()
        opt.step()
        for i, (m, ref) in enumerate(zip(alone, refs)):
            ref.zero_grad()
            m(x[i]).pow(2).mean().backward()
            ref.step()
    for i, m in enumerate(alone):
        for key, t in stack.member_state_dict(i).items():
            torch.testing.assert_close(t, m.state_dict()[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss, real", [("ce", False), ("mse", False), ("mse", True)])
def test_member_losses_match_train_loss_fn(loss, real):
    torch.manual_seed(1)
    out = torch.randn(3, 7, 1 if real else 5)
    target = torch.randn(3, 7, 1) if real else torch.randint(0, 5, (3, 7))
    got = train.loss_fn(loss, members=True)(out, target)
    fn = train.loss_fn(loss)
    want = torch.stack([fn(out[i], target[i]) for i in range(3)])
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("optimizer, lrs", [("adam", [1e-3, 3e-3, 1e-2]), ("sgd", [0.05, 0.1, 0.02]),
                                            ("nesterov", [0.01, 0.02, 0.03])])
def test_fit_on_a_stack_matches_sequential_fit(toy_root, optimizer, lrs):
    ds = data.load("mnist", toy_root, device="cpu", val_size=100)
    seeds = [0, 1, 2]
    build = BUILDS["mlp"]
    kw = dict(epochs=2, batch_size=32, optimizer=optimizer, loss="ce", device="cpu", record_grad_norm=True,
              snapshot_every=5, progress=False)
    seq = []
    for model, s, lr in zip(_members(seeds, build), seeds, lrs):
        seq.append((train.fit(model, ds, lr=lr, seed=s, **kw), model))
    stack_models = _members(seeds, build)
    stack = stacked.Stack(stack_models)
    hists = train.fit(stack, ds, lr=lrs, seed=seeds, **kw)
    stack.write_back(stack_models)
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


def test_fit_on_a_stack_random_labels_and_real_targets(toy_root):
    base = data.load("mnist", toy_root, device="cpu", train_size=300)
    seeds = [4, 5]
    trains = [data.load("mnist", toy_root, device="cpu", train_size=300, random_labels=True, seed=s).train
              for s in seeds]
    trains = [data.Split(base.train.x, t.y) for t in trains]  # one image tensor, per-member labels
    hists = train.fit(stacked.Stack(_members(seeds)), trains, epochs=1, batch_size=50, lr=[1e-3, 1e-3], seed=seeds,
                      device="cpu", progress=False)
    for s, t, h in zip(seeds, trains, hists):
        (model,) = _members([s])
        ref = train.fit(model, t, epochs=1, batch_size=50, lr=1e-3, seed=s, device="cpu", progress=False)
        assert h.epochs["train_loss"][0] == pytest.approx(ref.epochs["train_loss"][0], rel=1e-4)
        assert h.epochs["train_acc"][0] == pytest.approx(ref.epochs["train_acc"][0], abs=1e-9)

    x = data.function_data("sinc", 64)
    grid = data.function_data("sinc", 200)
    hists = train.fit(stacked.Stack(_members([0, 1], hidden=(8,), in_features=1, out_features=1)), x, epochs=2,
                      batch_size=16, lr=[1e-2, 2e-2], seed=[0, 1], loss="mse", device="cpu",
                      eval_sets={"test": grid}, progress=False)
    (model,) = _members([1], hidden=(8,), in_features=1, out_features=1)
    ref = train.fit(model, x, epochs=2, batch_size=16, lr=2e-2, seed=1, loss="mse", device="cpu", progress=False,
                    eval_sets={"test": grid})
    assert hists[1].epochs["test_loss"].tolist() == pytest.approx(ref.epochs["test_loss"].tolist(), rel=1e-4)
    assert hists[1].epochs["train_acc"].isna().all()


def test_a_diverging_member_stops_alone(toy_root):
    ds = data.load("mnist", toy_root, device="cpu", train_size=200)
    members = _members([0, 1])
    stack = stacked.Stack(members)
    hists = train.fit(stack, ds.train, epochs=3, batch_size=50, optimizer="sgd", lr=[1e-2, 1e12], seed=[0, 1],
                      device="cpu", eval_sets={"test": ds.test}, progress=False)
    assert not hists[0].diverged and len(hists[0].epochs) == 3
    assert hists[1].diverged and len(hists[1].epochs) == 1 and not math.isfinite(hists[1].epochs["train_loss"][0])
    assert "test_acc" not in hists[1].epochs or hists[1].epochs["test_acc"].isna().all()
    stack.write_back(members)
    assert all(torch.isfinite(p).all() for p in members[0].parameters())


@pytest.mark.parametrize("name", ["cnn", "cnn_bn_nopool", "mlp_bn_dropout"])
def test_cnn_and_batchnorm_stacks_learn(toy_root, name):
    ds = data.load("mnist", toy_root, device="cpu", val_size=100)
    members = _members([0, 1, 2], BUILDS[name])
    hists = train.fit(stacked.Stack(members), ds, epochs=3, batch_size=32, lr=[3e-3, 2e-3, 3e-3], seed=[0, 1, 2],
                      device="cpu", progress=False)
    for h in hists:
        assert not h.diverged and h.epochs["train_loss"].iloc[-1] < h.epochs["train_loss"].iloc[0]
        assert h.final["test_acc"] >= 0.9, h.epochs


@pytest.mark.data
def test_stacked_dropout_and_batchnorm_match_sequential_in_distribution(real_root):
    """8 members with batch norm and dropout: their mean test accuracy is within 0.5 point of the
    same 8 models trained one by one (same inits and data orders; only dropout draws differ)."""
    ds = data.load("fashion-mnist", real_root, device="cpu", train_size=10_000, download=False)
    test = data.Split(ds.test.x[:5000], ds.test.y[:5000])
    seeds = list(range(8))
    lrs = [1e-3, 2e-3] * 4
    build = lambda: models.mlp([64], batchnorm=True, dropout=0.3)  # noqa: E731
    kw = dict(epochs=1, batch_size=64, device="cpu", eval_sets={"test": test}, progress=False)
    alone = [train.fit(m, ds.train, lr=lr, seed=s, **kw).final["test_acc"]
             for m, s, lr in zip(_members(seeds, build), seeds, lrs)]
    stacked_accs = [h.final["test_acc"] for h in train.fit(stacked.Stack(_members(seeds, build)), ds.train, lr=lrs,
                                                            seed=seeds, **kw)]
    assert min(alone) > 0.75 and min(stacked_accs) > 0.75
    assert abs(sum(alone) / 8 - sum(stacked_accs) / 8) < 0.005, (alone, stacked_accs)


def test_supports_and_bad_arguments():
    assert stacked.supports(models.mlp([8], batchnorm=True, dropout=0.5)) is None
    assert stacked.supports(models.cnn([4], [], batchnorm=True)) is None
    assert "LayerNorm" in stacked.supports(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)))
    assert "groups" in stacked.supports(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)))
    x = data.Split(torch.randn(10, 784), torch.randint(0, 10, (10,)))
    with pytest.raises(ValueError, match="architecture"):
        stacked.Stack([models.mlp([8]), models.mlp([9])])
    with pytest.raises(ValueError, match="architecture"):
        stacked.Stack([models.mlp([8], dropout=0.1), models.mlp([8], dropout=0.2)])
    with pytest.raises(ValueError, match="stacked training"):
        stacked.Stack([nn.Sequential(nn.Linear(784, 10), nn.LayerNorm(10))] * 2)
    stack = stacked.Stack(_members([0, 1]))
    with pytest.raises(ValueError, match="lr has 1 entries"):
        train.fit(stack, x, seed=[0, 1], lr=[1e-3], device="cpu", progress=False)
    with pytest.raises(ValueError, match="lr=-1"):
        train.fit(stack, x, seed=[0, 1], lr=[1e-3, -1], device="cpu", progress=False)
    with pytest.raises(ValueError, match="hooks"):
        train.fit(stack, x, hooks=[print], device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"lr=\[0.1, 0.2\] is not valid; lists of values are for a stacked.Stack"):
        train.fit(models.mlp([8]), x, lr=[0.1, 0.2], device="cpu", progress=False)
    with pytest.raises(ValueError, match="share the training inputs"):
        train.fit(stack, [x, data.Split(torch.randn(10, 784), x.y)], device="cpu", progress=False)


def test_stacked_sweep_stores_each_member_and_groups(toy_root, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(toy_root))
    runs.recipe._DATA.clear()
    calls = {"fit": 0, "stack": []}
    real_fit = train.fit

    def fit(model, *a, **k):
        if isinstance(model, stacked.Stack):
            calls["stack"].append(model.k)
        else:
            calls["fit"] += 1
        return real_fit(model, *a, **k)

    monkeypatch.setattr(train, "fit", fit)
    base = dict(dataset="mnist", train_size=300, test_size=100, hidden=[16], batch_size=32, epochs=2, device="cpu")
    specs = [runs.RunSpec.from_dict({**base, "seed": s, "lr": lr}) for s in range(3) for lr in (1e-3, 3e-3)]
    specs += [runs.RunSpec.from_dict({**base, "batchnorm": True, "seed": s}) for s in (0, 1)]  # a stack of 2
    specs.append(runs.RunSpec.from_dict({**base, "hidden": [12], "seed": 7}))  # a group of one: alone
    df = runs.sweep(specs, progress=False, max_stack=4)
    assert sorted(calls["stack"]) == [2, 2, 4] and calls["fit"] == 1
    assert df["stack_size"].gt(1).tolist() == [True] * 8 + [False] and set(df["backend"]) == {"local"}
    assert df["result"][0].env["stack_size"] in (2, 4)
    assert sorted(len(s) for s in df.attrs["stacks"]) == [2, 2, 4] and df["stack"].tolist()[-1] == -1
    assert set(df["stack"][6:8]) == {df["stack"][6]} and df["stack"][6] >= 0

    # each member is stored under its own key: a later run() is a hit
    for spec in specs:
        assert runs.run(spec).cached
    assert calls["fit"] == 1 and len(calls["stack"]) == 3

    # stacked and sequential agree member by member (no batch norm or dropout here: to float rounding)
    seq = runs.sweep(specs[:6], stack=False, force=True, progress=False)
    assert abs(seq["test_acc"].mean() - df["test_acc"][:6].mean()) < 0.01
    for a, b in zip(seq["result"], df["result"][:6]):
        assert list(a.history.columns) == list(b.history.columns)
        assert a.history["train_loss"].tolist() == pytest.approx(b.history["train_loss"].tolist(), rel=1e-3)
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.allclose(sa[k], sb[k], rtol=1e-3, atol=1e-5) for k in sa)


def test_stacked_sweep_recomputes_a_corrupt_member_once(toy_root, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(toy_root))
    base = dict(dataset="mnist", train_size=100, test_size=50, hidden=[8], batch_size=50, device="cpu")
    specs = [runs.RunSpec.from_dict({**base, "seed": s}) for s in range(3)]
    first = runs.sweep(specs, progress=False)
    (first["result"][1].path / "history.csv").write_text("epoch\n")
    with pytest.warns(runs.CacheWarning) as caught:
        again = runs.sweep(specs, progress=False)
    assert len(caught) == 1 and specs[1].key in str(caught[0].message)
    assert again["cached"].tolist() == [True, False, True]
    assert runs.sweep(specs, progress=False)["cached"].all()
