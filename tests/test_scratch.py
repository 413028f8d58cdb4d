"""The hand-written NumPy MLP checked against torch autograd and torch.optim."""

import numpy as np
import pytest
import torch

from dlcourse import scratch, vocabulary
from dlcourse.scratch import MLP, cross_entropy, get_activation, make_optimizer, mse, penalty_grad

RTOL = 1e-5


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, np.float64), dtype=torch.float64, requires_grad=grad)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# --------------------------------------------------------------------------- activations

TORCH_ACT = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "identity": lambda z: z,
    "softmax": lambda z: torch.softmax(z, dim=1),
}


@pytest.mark.parametrize("name", sorted(TORCH_ACT))
def test_activation_forward_and_vjp_match_autograd(name, rng):
    z = rng.standard_normal((6, 5)) * 2
    z[0, 0] = 0.3  # keep relu away from its kink
    g = rng.standard_normal((6, 5))
    act = get_activation(name)
    zt = t64(z, grad=True)
    at = TORCH_ACT[name](zt)
    at.backward(t64(g))
    a = act.forward(z)
    assert rel_err(a, at.detach().numpy()) <= RTOL
    assert rel_err(act.backward(a, g), zt.grad.numpy()) <= RTOL
    if name != "softmax":
        assert rel_err(g * act.gradient(z), zt.grad.numpy()) <= RTOL


def test_softmax_jacobian_matches_autograd(rng):
    z = rng.standard_normal((3, 4))
    jac = get_activation("softmax").gradient(z)
    for i in range(3):
        expected = torch.autograd.functional.jacobian(lambda r: torch.softmax(r, dim=0), t64(z[i]))
        assert rel_err(jac[i], expected.numpy()) <= RTOL


def test_activation_forward_in_place_and_stable():
    z = np.array([[-1000.0, 0.0, 1000.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = get_activation("sigmoid").forward(z.copy())
        p = get_activation("softmax").forward(z.copy())
    np.testing.assert_allclose(s, [[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(p, [[0.0, 0.0, 1.0]])
    buf = z.copy()
    assert get_activation("tanh").forward(buf, out=buf) is buf


# --------------------------------------------------------------------------- losses

PENALTIES = [(0.0, 0.0), (0.03, 0.0), (0.0, 0.05), (0.02, 0.04)]


def torch_penalty(ws, l1, l2):
    return sum(l1 * w.abs().sum() + 0.5 * l2 * (w * w).sum() for w in ws)


@pytest.mark.parametrize("l1,l2", PENALTIES)
@pytest.mark.parametrize("target_kind", ["labels", "dense"])
def test_mse_value_and_gradients(l1, l2, target_kind, rng):
    pred = rng.standard_normal((7, 4))
    target = rng.integers(0, 4, 7) if target_kind == "labels" else rng.standard_normal((7, 4))
    ws = [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))]
    value, grad = mse(pred, target, ws, l1=l1, l2=l2)

    pt, wt = t64(pred, True), [t64(w, True) for w in ws]
    tt = torch.nn.functional.one_hot(torch.tensor(target), 4).double() if target_kind == "labels" else t64(target)
    ref = torch.nn.functional.mse_loss(pt, tt) + torch_penalty(wt, l1, l2)
    ref.backward()
    assert abs(value - ref.item()) <= RTOL * abs(ref.item())
    assert rel_err(grad, pt.grad.numpy()) <= RTOL
    for w, w_t in zip(ws, wt):
        assert rel_err(penalty_grad(w, l1, l2), w_t.grad.numpy()) <= RTOL if (l1 or l2) else np.all(w_t.grad.numpy() == 0)


@pytest.mark.parametrize("l1,l2", PENALTIES)
@pytest.mark.parametrize("target_kind", ["labels", "probs"])
def test_cross_entropy_value_and_gradients(l1, l2, target_kind, rng):
    logits = rng.standard_normal((8, 5)) * 3
    if target_kind == "labels":
        target = rng.integers(0, 5, 8)
        tt = torch.tensor(target)
    else:
        target = rng.dirichlet(np.ones(5), 8)
        tt = t64(target)
    ws = [rng.standard_normal((5, 3))]
    value, grad = cross_entropy(logits, target, ws, l1=l1, l2=l2)

    lt, wt = t64(logits, True), [t64(w, True) for w in ws]
    ref = torch.nn.functional.cross_entropy(lt, tt) + torch_penalty(wt, l1, l2)
    ref.backward()
    assert abs(value - ref.item()) <= RTOL * abs(ref.item())
    assert rel_err(grad, lt.grad.numpy()) <= RTOL
    if l1 or l2:
        assert rel_err(penalty_grad(ws[0], l1, l2), wt[0].grad.numpy()) <= RTOL


def test_cross_entropy_is_stable_for_huge_logits():
    value, grad = cross_entropy(np.array([[1000.0, -1000.0]]), np.array([1]))
    assert value == pytest.approx(2000.0)
    np.testing.assert_allclose(grad, [[1.0, -1.0]])


# --------------------------------------------------------------------------- full backward pass


def torch_mlp_loss(model, x, y, loss, l1, l2):
    ws = [t64(w, True) for w in model.weights]
    bs = [t64(b, True) for b in model.biases]
    a = t64(x)
    for i, (w, b) in enumerate(zip(ws, bs)):
        z = a @ w + b
        a = TORCH_ACT[model.hidden_name](z) if i < len(ws) - 1 else z
    if loss == "ce":
        value = torch.nn.functional.cross_entropy(a, torch.tensor(y))  # softmax folded in
    else:
        out = TORCH_ACT[model.output_name](a)
        value = torch.nn.functional.mse_loss(out, torch.nn.functional.one_hot(torch.tensor(y), a.shape[1]).double())
    value = value + torch_penalty(ws, l1, l2)
    value.backward()
    return value.item(), [(w.grad.numpy(), b.grad.numpy()) for w, b in zip(ws, bs)]


@pytest.mark.parametrize("hidden", ["relu", "sigmoid", "tanh", "identity"])
@pytest.mark.parametrize("output,loss", [("softmax", "ce"), ("softmax", "mse"),
                                         ("identity", "ce"), ("identity", "mse")])
@pytest.mark.parametrize("l1,l2", [(0.0, 0.0), (0.01, 0.02)])
def test_mlp_backward_matches_autograd(hidden, output, loss, l1, l2, rng):
    model = MLP([6, 7, 5, 3], hidden=hidden, output=output, init="normal", seed=3, dtype=np.float64)
    model.weights = [w * 10 for w in model.weights]  # non-trivial activations
    x = rng.standard_normal((9, 6))
    y = rng.integers(0, 3, 9)
    value, grads = model.loss_and_grads(x, y, loss=loss, l1=l1, l2=l2)
    ref_value, ref_grads = torch_mlp_loss(model, x, y, loss, l1, l2)
    assert abs(value - ref_value) <= RTOL * abs(ref_value)
    for (dw, db), (rw, rb) in zip(grads, ref_grads):
        assert dw.shape == rw.shape and db.shape == rb.shape
        assert rel_err(dw, rw) <= RTOL
        assert rel_err(db, rb) <= RTOL


def test_backward_with_arbitrary_upstream_gradient(rng):
    model = MLP([4, 6, 3], hidden="tanh", output="softmax", seed=0, dtype=np.float64)
    x, g = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    grads = model.backward(g, wrt="output") if model.forward(x) is not None else None
    ws = [t64(w, True) for w in model.weights]
    bs = [t64(b, True) for b in model.biases]
    out = torch.softmax(torch.tanh(t64(x) @ ws[0] + bs[0]) @ ws[1] + bs[1], dim=1)
    out.backward(t64(g))
    for (dw, db), w, b in zip(grads, ws, bs):
        assert rel_err(dw, w.grad.numpy()) <= RTOL and rel_err(db, b.grad.numpy()) <= RTOL


# --------------------------------------------------------------------------- optimizers

TORCH_OPT = {
    "sgd": lambda p, lr, wd: torch.optim.SGD(p, lr=lr, weight_decay=wd),
    "momentum": lambda p, lr, wd: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=wd),
    "nesterov": lambda p, lr, wd: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd),
    "rmsprop": lambda p, lr, wd: torch.optim.RMSprop(p, lr=lr, alpha=0.9, eps=1e-6, weight_decay=wd),
    "adam": lambda p, lr, wd: torch.optim.Adam(p, lr=lr, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd),
    "nadam": lambda p, lr, wd: torch.optim.NAdam(p, lr=lr, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd,
                                                 momentum_decay=4e-3),
}
OUR_KW = {"rmsprop": {"alpha": 0.9, "eps": 1e-6}, "adam": {"betas": (0.8, 0.99), "eps": 1e-6},
          "nadam": {"betas": (0.8, 0.99), "eps": 1e-6, "momentum_decay": 4e-3}}


@pytest.mark.parametrize("name", scratch.OPTIMIZERS)
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("steps", [1, 5])
def test_optimizer_matches_torch(name, weight_decay, steps, rng):
    params = [rng.standard_normal((4, 3)), rng.standard_normal(3)]
    grad_seq = [[rng.standard_normal(p.shape) for p in params] for _ in range(steps)]
    ours = [p.copy() for p in params]
    opt = make_optimizer(name, lr=0.05, weight_decay=weight_decay, **OUR_KW.get(name, {}))
    tparams = [torch.nn.Parameter(t64(p)) for p in params]
    topt = TORCH_OPT[name](tparams, 0.05, weight_decay)
    torch.set_default_dtype(torch.float64)  # torch keeps NAdam's mu_product in the default dtype
    try:
        for grads in grad_seq:
            opt.step(ours, [g.copy() for g in grads])
            for tp, g in zip(tparams, grads):
                tp.grad = t64(g)
            topt.step()
            for p, tp in zip(ours, tparams):
                np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-10, atol=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)
    assert not all(np.array_equal(p, q) for p, q in zip(ours, params))


def test_optimizer_defaults_are_torchs():
    assert make_optimizer("sgd").lr == torch.optim.SGD([torch.zeros(1)]).defaults["lr"]
    for name, cls in [("rmsprop", torch.optim.RMSprop), ("adam", torch.optim.Adam), ("nadam", torch.optim.NAdam)]:
        assert make_optimizer(name).lr == cls([torch.zeros(1)]).defaults["lr"]


# --------------------------------------------------------------------------- training


def blobs(n, rng, dim=8, classes=3):
    centers = rng.standard_normal((classes, dim)) * 4
    y = rng.integers(0, classes, n)
    return (centers[y] + rng.standard_normal((n, dim))).astype(np.float32), y


@pytest.mark.parametrize("optimizer,lr,hidden", [("sgd", 0.1, "sigmoid"), ("momentum", 0.05, "tanh"),
                                                 ("nesterov", 0.05, "relu"), ("rmsprop", 0.003, "relu"),
                                                 ("adam", 0.005, "tanh"), ("nadam", 0.005, "sigmoid")])
def test_training_learns_separable_problem(optimizer, lr, hidden):
    rng = np.random.default_rng(0)
    x, y = blobs(600, rng)
    xv, yv = blobs(200, np.random.default_rng(0))  # same centers, fresh samples
    xv, yv = xv[:200], yv[:200]
    model = MLP([8, 16, 3], hidden=hidden, seed=1)
    loss0, _ = model.evaluate(x, y)
    hist = model.fit(x, y, epochs=15, batch_size=32, optimizer=optimizer, lr=lr, x_val=xv, y_val=yv)
    assert list(hist.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]
    assert len(hist) == 15 and (hist["seconds"] > 0).all()
    assert hist["train_loss"].iloc[-1] < 0.3 * loss0
    assert hist["train_acc"].iloc[-1] >= 0.97
    loss, acc = model.evaluate(x, y)
    assert loss < 0.3 * loss0 and acc >= 0.97
    assert np.mean(model.predict(x) == y) == acc
    proba = model.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)


def test_regression_with_identity_output_and_l2():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 3)).astype(np.float32)
    y = np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2]], axis=1).astype(np.float32)
    model = MLP([3, 32, 2], hidden="tanh", output="identity", seed=0)
    loss0, _ = model.evaluate(x, y, loss="mse")
    hist = model.fit(x, y, epochs=40, batch_size=20, optimizer="adam", lr=0.01, loss="mse", l2=1e-4)
    assert hist["train_loss"].iloc[-1] < 0.2 * loss0


def test_l1_penalty_shrinks_weights():
    rng = np.random.default_rng(0)
    x, y = blobs(300, rng)
    norms = {}
    for l1 in (0.0, 0.05):
        model = MLP([8, 16, 3], hidden="relu", seed=0)
        model.fit(x, y, epochs=5, batch_size=30, optimizer="sgd", lr=0.1, l1=l1)
        norms[l1] = sum(np.abs(w).sum() for w in model.weights)
    assert norms[0.05] < 0.7 * norms[0.0]


def test_same_seed_is_deterministic_and_seed_matters():
    x, y = blobs(200, np.random.default_rng(5))

    def run(seed, fit_seed=None):
        model = MLP([8, 10, 3], hidden="relu", init="xavier_uniform", seed=seed)
        hist = model.fit(x, y, epochs=3, batch_size=16, optimizer="adam", lr=0.01, seed=fit_seed)
        return model, hist.drop(columns="seconds")

    (m1, h1), (m2, h2), (m3, _), (m4, _) = run(7), run(7), run(8), run(7, fit_seed=99)
    for a, b in zip(m1.params(), m2.params()):
        np.testing.assert_array_equal(a, b)
    assert h1.equals(h2)
    assert not np.array_equal(m1.weights[0], m3.weights[0])
    assert not np.array_equal(m1.weights[0], m4.weights[0])  # shuffle order matters


def test_names_come_from_the_vocabulary():
    assert set(scratch.INITS) == set(vocabulary.INITS) - {"default"}  # "default" is PyTorch's own
    assert scratch.PLAIN_INIT_SCALE == vocabulary.PLAIN_INIT_SCALE
    assert set(scratch.HIDDEN_ACTIVATIONS) == {"relu", "sigmoid", "tanh", "identity"}
    assert set(scratch.HIDDEN_ACTIVATIONS) <= set(vocabulary.ACTIVATIONS)
    assert scratch.LOSSES == vocabulary.LOSSES
    assert scratch.OPTIMIZERS == ("sgd", "momentum", "nesterov", "rmsprop", "adam", "nadam")
    assert set(scratch.OPTIMIZERS) <= set(vocabulary.OPTIMIZERS)
    for retired, param in [("glorot", "init"), ("xavier", "init"), ("linear", "output"), ("cross_entropy", "loss")]:
        with pytest.raises(ValueError, match=f"{param}='{retired}' is not valid"):
            MLP([4, 3], **{param: retired}) if param != "loss" else MLP([4, 3]).evaluate(np.zeros((2, 4)), [0, 1], loss=retired)
    with pytest.raises(ValueError, match="optimizer='adamw' is not valid"):
        make_optimizer("adamw")  # in the vocabulary, not written out here


@pytest.mark.parametrize("init", ["uniform", "normal", "xavier_uniform", "xavier_normal", "he"])
def test_inits(init):
    model = MLP([300, 200, 10], init=init, seed=0)
    w = model.weights[0]
    assert w.shape == (300, 200) and w.dtype == np.float32
    assert all(np.all(b == 0) for b in model.biases)
    if init == "xavier_uniform":
        r = np.sqrt(6 / 500)
        assert np.abs(w).max() <= r and w.std() == pytest.approx(r / np.sqrt(3), rel=0.02)
    elif init == "xavier_normal":
        assert w.mean() == pytest.approx(0, abs=0.002) and w.std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    elif init == "he":
        assert w.mean() == pytest.approx(0, abs=0.002) and w.std() == pytest.approx(np.sqrt(2 / 300), rel=0.02)
    elif init == "uniform":
        assert np.abs(w).max() <= scratch.PLAIN_INIT_SCALE
    else:
        assert w.std() == pytest.approx(scratch.PLAIN_INIT_SCALE, rel=0.02)
    np.testing.assert_array_equal(w, MLP([300, 200, 10], init=init, seed=0).weights[0])


@pytest.mark.parametrize("ours, torch_init", [("xavier_uniform", torch.nn.init.xavier_uniform_),
                                              ("xavier_normal", torch.nn.init.xavier_normal_),
                                              ("he", lambda w: torch.nn.init.kaiming_normal_(w, nonlinearity="relu"))])
def test_inits_have_the_scale_of_torchs_namesakes(ours, torch_init):
    """torch stores a layer's weight as (outputs, inputs), we store (inputs, outputs)."""
    torch.manual_seed(0)
    theirs = torch_init(torch.empty(200, 300)).numpy()
    w = scratch.init_weights(300, 200, ours, np.random.default_rng(0))[0]
    assert w.std() == pytest.approx(float(theirs.std()), rel=0.03)
    assert np.abs(w).max() == pytest.approx(float(np.abs(theirs).max()), rel=0.1 if ours == "xavier_uniform" else 0.3)


def test_float32_and_float64_agree(rng):
    x = rng.standard_normal((20, 6))
    m64 = MLP([6, 8, 4], hidden="sigmoid", seed=2, dtype=np.float64)
    m32 = MLP([6, 8, 4], hidden="sigmoid", seed=2)
    assert m32.predict_proba(x).dtype == np.float32
    np.testing.assert_allclose(m32.predict_proba(x), m64.predict_proba(x), rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("kwargs,param", [
    ({"sizes": [4, 0, 2]}, "sizes"),
    ({"sizes": [4]}, "sizes"),
    ({"sizes": [4, -3, 2]}, "sizes"),
    ({"hidden": "swish"}, "hidden"),
    ({"hidden": "softmax"}, "hidden"),
    ({"output": "tanh"}, "output"),
    ({"init": "xavier"}, "init"),
    ({"dtype": np.int32}, "dtype"),
])
def test_bad_constructor_arguments(kwargs, param):
    args = {"sizes": [4, 5, 2], **kwargs}
    with pytest.raises(ValueError, match=param) as info:
        MLP(**args)
    assert repr(kwargs[param])[:4] in str(info.value) or param == "sizes"
    assert "is not valid" in str(info.value)


@pytest.mark.parametrize("kwargs,param", [
    ({"epochs": 0}, "epochs"),
    ({"epochs": -2}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"lr": 0.0}, "lr"),
    ({"lr": -0.1}, "lr"),
    ({"optimizer": "adagrad"}, "optimizer"),
    ({"loss": "hinge"}, "loss"),
    ({"l2": -1.0}, "l2"),
    ({"l1": -1.0}, "l1"),
])
def test_bad_fit_arguments_raise_before_training(kwargs, param):
    model = MLP([4, 5, 2], seed=0)
    before = [p.copy() for p in model.params()]
    x, y = np.zeros((10, 4), np.float32), np.zeros(10, dtype=int)
    with pytest.raises(ValueError, match=param) as info:
        model.fit(x, y, **kwargs)
    assert str(next(iter(kwargs.values()))) in str(info.value)
    assert "is not valid" in str(info.value)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.params()))
    assert model.history_ is None


def test_bad_data_and_names():
    model = MLP([4, 5, 2], seed=0)
    with pytest.raises(ValueError, match="x"):
        model.fit(np.zeros((10, 3)), np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="y"):
        model.fit(np.zeros((10, 4)), np.full(10, 2))
    with pytest.raises(ValueError, match="activation='gelu'.*relu"):
        get_activation("gelu")
    with pytest.raises(ValueError, match="optimizer='lbfgs'.*adam"):
        make_optimizer("lbfgs")
    with pytest.raises(ValueError, match="lr"):
        make_optimizer("adam", lr=-1)
    with pytest.raises(ValueError, match="init"):
        scratch.init_weights(3, 4, "orthogonal")


@pytest.mark.parametrize("hidden, output, loss", [("sigmoid", "softmax", "ce"), ("tanh", "identity", "mse"),
                                                  ("relu", "softmax", "mse")])
def test_sgd_fit_equals_step_by_step_sgd(hidden, output, loss):
    """fit with plain SGD must give the textbook loop: gradients of the whole batch from the old
    weights, then p -= lr * g, over the same shuffled batches."""
    rng = np.random.default_rng(3)
    x, y = blobs(96, rng)
    fitted = MLP([8, 12, 7, 3], hidden=hidden, output=output, seed=4, dtype=np.float64)
    ref = MLP([8, 12, 7, 3], hidden=hidden, output=output, seed=4, dtype=np.float64)
    fitted.fit(x, y, epochs=2, batch_size=20, optimizer="sgd", lr=0.3, loss=loss, seed=1)
    order = np.random.default_rng(1)
    for _ in range(2):
        perm = order.permutation(len(x))
        for lo in range(0, len(x), 20):
            idx = perm[lo:lo + 20]
            _, grads = ref.loss_and_grads(x[idx], y[idx], loss=loss)
            for p, g in zip(ref.params(), [g for pair in grads for g in pair]):
                p -= 0.3 * g
    for a, b in zip(fitted.params(), ref.params()):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
