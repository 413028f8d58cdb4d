"""dlcourse.models and dlcourse.optim: shapes, inits, parameter matching, names and their errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlcourse import fast, models, optim, vocabulary


def test_mlp_layout_and_forward():
    m = models.mlp([50, 20], activation="tanh", batchnorm=True, dropout=0.1)
    kinds = [type(l).__name__ for l in m]
    assert kinds == ["Flatten", "Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear", "BatchNorm1d", "Tanh",
                     "Dropout", "Linear"]
    assert m(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    assert models.count_parameters(m) == models.mlp_parameter_count([50, 20], 784, 10) + 2 * (50 + 20)


def test_every_activation_builds():
    for name in models.ACTIVATIONS:
        assert models.mlp([8], activation=name)(torch.randn(2, 784)).shape == (2, 10)


@pytest.mark.parametrize("scheme,std", [("xavier_normal", (2 / (784 + 300)) ** 0.5), ("he", (2 / 784) ** 0.5),
                                        ("normal", 0.05), ("uniform", 0.05 / 3 ** 0.5)])
def test_init_schemes_set_the_expected_scale(scheme, std):
    torch.manual_seed(0)
    w = models.mlp([300], init=scheme)[1].weight
    assert abs(w.std().item() - std) / std < 0.05
    assert torch.count_nonzero(models.mlp([300], init=scheme)[1].bias) == 0


def test_cnn_shapes():
    torch.manual_seed(0)
    two_conv = models.cnn([16, 32], [64, 32])
    one_conv_no_pool = models.cnn([8], [32, 16], pool=False)
    x = torch.randn(3, 1, 28, 28)
    assert two_conv(x).shape == (3, 10) and one_conv_no_pool(x).shape == (3, 10)
    assert models.count_parameters(one_conv_no_pool) > models.count_parameters(models.cnn([8], [32, 16]))


@pytest.mark.parametrize("depth", [2, 5, 8])
def test_matched_parameter_count(depth):
    hidden = models.matched_hidden(depth, 571)
    m = models.matched_mlp(depth, 571)
    assert len(hidden) == depth - 1
    assert sum(isinstance(l, nn.Linear) for l in m) == depth
    assert abs(models.count_parameters(m) - 571) <= 6


def test_matched_shapes_are_balanced():
    # the report's ~571 parameters as balanced nets, not a thin stack ending in one wide layer
    assert models.matched_hidden(2, 571) == (190,)
    assert models.matched_hidden(5, 571) == (13, 13, 13, 12)
    assert models.matched_hidden(8, 571) == (9,) * 7
    for depth in range(2, 12):
        hidden = models.matched_hidden(depth, 571)
        assert max(hidden) - min(hidden) <= 1 and list(hidden) == sorted(hidden, reverse=True)
    with pytest.raises(ValueError, match="target_params=0"):
        models.matched_hidden(3, 0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"activation": "swish"}, "activation='swish'.*relu"),
        ({"init": "orthogonal"}, "init='orthogonal'.*xavier_normal"),
        ({"hidden": [100, 0]}, r"hidden=\[100, 0\].*entry 1"),
        ({"hidden": "100,50"}, "hidden='100,50'.*list of positive integers"),
        ({"dropout": 1.5}, "dropout=1.5"),
    ],
)
def test_mlp_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.mlp(**({"hidden": [10]} | kwargs))


def test_every_optimizer_trains():
    for name in optim.OPTIMIZERS:
        torch.manual_seed(0)
        x = torch.randn(256, 5)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0]) + 1
        model = nn.Linear(5, 1)
        opt = optim.make(name, model.parameters(), lr=0.01 if name not in ("sgd",) else 0.05)
        losses = []
        for _ in range(150):
            loss = ((model(x).squeeze(1) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.5 * losses[0], name


def test_optimizer_settings_reach_torch():
    p = [nn.Parameter(torch.zeros(3))]
    nesterov = optim.make("nesterov", p, lr=0.1, momentum=0.8, weight_decay=1e-4)
    assert isinstance(nesterov, torch.optim.SGD)
    group = nesterov.param_groups[0]
    assert group["nesterov"] and group["momentum"] == 0.8 and group["weight_decay"] == 1e-4
    assert optim.make("sgd", p, lr=0.1).param_groups[0]["momentum"] == 0
    assert isinstance(optim.make("nadam", p), torch.optim.NAdam)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "adagrad"}, "optimizer='adagrad'.*sgd, momentum, nesterov"),
        ({"lr": -0.1}, "lr=-0.1"),
        ({"lr": 0}, "lr=0"),
        ({"momentum": 1.2}, "momentum=1.2"),
        ({"weight_decay": -1}, "weight_decay=-1"),
    ],
)
def test_optimizer_bad_arguments(kwargs, match):
    args = {"name": "adam", "lr": 0.01} | kwargs
    with pytest.raises(ValueError, match=match):
        optim.make(args.pop("name"), [nn.Parameter(torch.zeros(1))], **args)


def test_fast_adam_matches_torch_fused_adam_bit_for_bit():
    """dlcourse.fast.Adam (the fused kernel called directly) against its public fallback."""
    results = []
    for cls in (torch.optim.Adam, fast.Adam):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
        groups = [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.003}]
        opt = cls(groups, lr=0.01, weight_decay=1e-3, fused=True)
        for step in range(20):
            x = torch.randn(8, 6, generator=torch.Generator().manual_seed(step))
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        results.append((model, opt))
    (ref, ref_opt), (lean, lean_opt) = results
    assert all(torch.equal(a, b) for a, b in zip(ref.parameters(), lean.parameters()))
    for a, b in zip(ref_opt.state.values(), lean_opt.state.values()):
        assert all(torch.equal(a[k], b[k]) for k in ("step", "exp_avg", "exp_avg_sq"))
    assert isinstance(optim.make("adam", lean.parameters()), fast.Adam)


def test_param_groups_carry_their_own_settings():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    opt = optim.make("momentum", [{"params": [a], "lr": 0.1, "momentum": 0.5}, {"params": [b], "weight_decay": 0.1}],
                     lr=0.2, momentum=0.9)
    first, second = opt.param_groups
    assert (first["lr"], first["momentum"], first["weight_decay"]) == (0.1, 0.5, 0.0)
    assert (second["lr"], second["momentum"], second["weight_decay"]) == (0.2, 0.9, 0.1)
    assert "momentum" not in optim.make("adam", [{"params": [a], "momentum": 0.5}]).param_groups[0]
    assert optim.make("rmsprop", [{"params": [a], "momentum": 0.5}]).param_groups[0]["momentum"] == 0
    with pytest.raises(ValueError, match="lr=-1"):
        optim.make("sgd", [{"params": [a], "lr": -1}])
    with pytest.raises(ValueError, match="momentum=0 is not valid for optimizer='nesterov'"):
        optim.make("nesterov", [{"params": [a], "momentum": 0.0}])


def test_names_come_from_the_vocabulary():
    assert list(models.ACTIVATIONS) == list(vocabulary.ACTIVATIONS)
    assert models.INITS is vocabulary.INITS and models.PLAIN_INIT_SCALE == vocabulary.PLAIN_INIT_SCALE
    assert optim.OPTIMIZERS is vocabulary.OPTIMIZERS
    with pytest.raises(ValueError, match="init='glorot'.*" + ", ".join(vocabulary.INITS)):
        models.mlp([4], init="glorot")


def test_kernel_environment_tunes_glibc_unless_the_user_did():
    import platform

    from dlcourse.fast import SETTINGS, kernel_environment

    if platform.libc_ver()[0] != "glibc":
        assert kernel_environment({}) == {}
        return
    assert kernel_environment({"PATH": "/bin"}) == SETTINGS
    assert kernel_environment({"MALLOC_TRIM_THRESHOLD_": "0"}) == {}  # a user's own choice stays alone
