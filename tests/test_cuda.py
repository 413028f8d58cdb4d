"""The package on a CUDA GPU: `device="auto"` picks it, and training, stacking, the results
cache and the analyses give what they give on the CPU.

These tests skip on machines without CUDA (CI has none); run them where a GPU is present:
`python -m pytest tests/test_cuda.py`.
"""

from __future__ import annotations

import pytest
import torch

from dlcourse import data, fast, metrics, models, optim, runs, stacked, train
from dlcourse.analysis import landscape
from dlcourse.settings import resolve_device

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _toy(toy_root, device):
    return data.load("mnist", toy_root, device=device, val_size=100, download=False)


def test_auto_picks_the_gpu_and_data_lands_there(toy_root):
    assert resolve_device("auto").type == "cuda"
    ds = _toy(toy_root, "auto")
    assert ds.train.x.is_cuda and ds.train.y.is_cuda and ds.test.x.is_cuda


def test_fit_on_gpu_learns_like_on_cpu(toy_root):
    finals = {}
    for device in ("cpu", "auto"):
        torch.manual_seed(0)
        model = models.mlp([64], in_features=784, out_features=10)
        hist = train.fit(model, _toy(toy_root, device), epochs=3, batch_size=32, lr=3e-3, device=device,
                         record_grad_norm=True, progress=False)
        assert next(model.parameters()).device.type == ("cpu" if device == "cpu" else "cuda")
        assert not hist.diverged and len(hist.steps) == 3 * 16
        finals[device] = hist.final
    assert finals["auto"]["test_acc"] >= 0.9
    assert abs(finals["auto"]["test_acc"] - finals["cpu"]["test_acc"]) <= 0.05


def test_cnn_trains_on_gpu(toy_root):
    torch.manual_seed(0)
    model = models.cnn(channels=[8], dense=[32])
    hist = train.fit(model, _toy(toy_root, "cuda"), epochs=2, batch_size=32, lr=3e-3, device="cuda", progress=False)
    assert hist.final["test_acc"] >= 0.9


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_every_optimizer_steps_on_gpu_as_torch_does(name):
    torch.manual_seed(0)
    w = torch.randn(50, 40, device="cuda")
    mine, ref = w.clone().requires_grad_(), w.clone().requires_grad_()
    opt = optim.make(name, [mine], lr=1e-2, weight_decay=1e-3)
    cls = torch.optim.Adam if isinstance(opt, fast.Adam) else type(opt)
    kw = {k: opt.defaults[k] for k in ("momentum", "nesterov") if k in opt.defaults}
    ref_opt = cls([ref], lr=1e-2, weight_decay=1e-3, **kw)
    for _ in range(5):
        g = torch.randn_like(w)
        mine.grad, ref.grad = g.clone(), g.clone()
        opt.step()
        ref_opt.step()
    torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-6)


def test_stacked_members_on_gpu_match_single_runs(toy_root):
    ds = _toy(toy_root, "cuda")
    lrs = [1e-3, 3e-3, 1e-2]

    def member(seed):
        torch.manual_seed(seed)
        return models.mlp([32], in_features=784, out_features=10)

    stack = [member(s) for s in range(3)]
    hists = train.fit(stacked.Stack(stack), ds, epochs=2, batch_size=32, optimizer="adam", lr=lrs,
                      seed=[0, 1, 2], device="cuda", progress=False)
    for s, (model, hist) in enumerate(zip(stack, hists)):
        single = member(s)
        ref = train.fit(single, ds, epochs=2, batch_size=32, optimizer="adam", lr=lrs[s], seed=s, device="cuda",
                        progress=False)
        assert abs(hist.final["test_acc"] - ref.final["test_acc"]) <= 0.02


def test_cnn_and_batchnorm_stacks_on_gpu_learn(toy_root):
    ds = _toy(toy_root, "cuda")
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        members.append(models.cnn([8], [32], batchnorm=True))
    stack = stacked.Stack(members)
    hists = train.fit(stack, ds, epochs=2, batch_size=32, lr=[3e-3, 2e-3, 1e-3], seed=[0, 1, 2], device="cuda",
                      progress=False)
    assert all(h.final["test_acc"] >= 0.9 for h in hists)
    assert next(stack.parameters()).is_cuda
    stack.write_back(members)
    assert train.evaluate(members[1], ds.test)[1] == pytest.approx(hists[1].final["test_acc"], abs=1e-6)


def test_run_on_gpu_is_cached_and_reloads_anywhere(toy_root, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(toy_root))
    spec = runs.RunSpec(dataset="mnist", train_size=300, test_size=100, hidden=(32,), batch_size=32, epochs=2,
                        device="auto")
    first = runs.run(spec)
    assert first.env["device"] == "cuda" and not first.cached
    again = runs.run(spec)
    assert again.cached
    test = runs.load_data(spec).test
    on_gpu, on_cpu = again.model("cuda"), again.model("cpu")
    assert (metrics.predict(on_gpu, test) == metrics.predict(on_cpu, test.to("cpu"))).mean() >= 0.99
    assert metrics.accuracy(test.y, metrics.predict(on_gpu, test)) == pytest.approx(first.metrics["test_acc"], abs=1e-6)
    swept = runs.sweep([spec.replace(lr=lr) for lr in (2e-3, 3e-3)])
    assert set(swept["stack_size"]) == {2}
    assert all(r.env["device"] == "cuda" for r in swept["result"])


def test_landscape_on_gpu_models(toy_root):
    ds = _toy(toy_root, "cuda")
    pair = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = models.mlp([32], in_features=784, out_features=10)
        train.fit(model, ds, epochs=1, batch_size=32, seed=seed, device="cuda", progress=False)
        pair.append(model)
    curve = landscape.interpolation_curve(*pair, {"test": ds.test}, num=5)
    ends = curve[curve["alpha"].isin([0.0, 1.0])]
    assert (ends["acc"] >= 0.8).all()
    assert landscape.input_sensitivity(pair[0], ds.test, max_samples=50) > 0


def test_gpu_model_evaluates_data_loaded_on_the_cpu(toy_root):
    """Analyses move each chunk to the model: a GPU-trained model scores a CPU split and vice versa."""
    ds_gpu, ds_cpu = _toy(toy_root, "cuda"), _toy(toy_root, "cpu")
    torch.manual_seed(0)
    model = models.mlp([32], in_features=784, out_features=10, batchnorm=True)
    train.fit(model, ds_gpu, epochs=1, batch_size=32, device="cuda", progress=False)
    on_gpu = train.evaluate(model, ds_gpu.test)
    on_cpu_data = train.evaluate(model, ds_cpu.test)
    assert on_cpu_data == pytest.approx(on_gpu, rel=1e-5)
    assert (metrics.predict(model, ds_cpu.test) == metrics.predict(model, ds_gpu.test)).all()
    norms = landscape.jacobian_norms(model, ds_cpu.test.x[:20])
    assert norms.shape == (20,) and bool((norms > 0).all())
    landscape.recompute_bn_stats(model, ds_cpu.train)
    cpu_model = models.mlp([32], in_features=784, out_features=10, batchnorm=True)
    cpu_model.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    assert train.evaluate(cpu_model, ds_gpu.test) == pytest.approx(train.evaluate(model, ds_cpu.test), rel=1e-4)
