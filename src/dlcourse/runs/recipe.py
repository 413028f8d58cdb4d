"""What a spec turns into: its data, its untrained model, and the `train.fit` call that trains it.

This is the part of `runs` that decides a result, so it is part of the code fingerprint (and
nothing about caching or scheduling is). `train_one` trains one spec; `train_stack` trains specs
that differ only in seed, lr, momentum, weight decay and init as one `stacked.Stack`: each member
built under its own seed, trained on its own data order (and labels), written back out as an
ordinary nn model. Members with equal settings are put side by side, so that they share a param
group of the optimizer.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import OrderedDict

import torch
from torch import nn

from .. import data as data_mod
from .. import models, stacked, train
from ..settings import resolve_device

#: Sample points of the 1-D targets when `train_size` is not given, and of their evaluation grid.
FUNCTION_TRAIN_SIZE = 1000
FUNCTION_TEST_SIZE = 4000


def build_model(spec) -> nn.Sequential:
    """The untrained model of `spec` (random draws from torch's global generator)."""
    common = dict(activation=spec.activation, batchnorm=spec.batchnorm, dropout=spec.dropout, init=spec.init)
    if spec.model == "mlp":
        return models.mlp(spec.hidden, in_features=spec.in_features, out_features=spec.out_features, **common)
    return models.cnn(spec.channels, spec.dense, pool=spec.pool, out_features=spec.out_features, **common)


# -- data, loaded lazily and kept in-process ----------------------------------------------------
_DATA: OrderedDict = OrderedDict()
_DATA_SLOTS = 4


def load_data(spec, root=None) -> data_mod.Dataset:
    """The data of `spec`, loaded once per process (random labels are applied per seed on top)."""
    device = resolve_device(spec.device)
    slot = (spec.dataset, spec.train_size, spec.val_size, spec.test_size, str(device),
            None if root is None else str(root), os.environ.get("DLCOURSE_DATA"))
    ds = _DATA.get(slot)
    if ds is None:
        if spec.is_function:
            n = spec.train_size or FUNCTION_TRAIN_SIZE
            ds = data_mod.Dataset(name=spec.dataset, classes=(), train=data_mod.function_data(spec.dataset, n, device=device),
                                  test=data_mod.function_data(spec.dataset, spec.test_size or FUNCTION_TEST_SIZE,
                                                              device=device))
        else:
            ds = data_mod.load(spec.dataset, root, device=device, train_size=spec.train_size,
                               val_size=spec.val_size)
            if spec.test_size is not None:
                if spec.test_size > len(ds.test):
                    raise ValueError(f"test_size={spec.test_size} is not valid; {spec.dataset} has "
                                     f"{len(ds.test)} test images")
                pick = torch.randperm(len(ds.test), generator=torch.Generator().manual_seed(0))[:spec.test_size]
                ds = dataclasses.replace(ds, test=data_mod.Split(ds.test.x[pick.to(device)], ds.test.y[pick.to(device)]))
        _DATA[slot] = ds
        while len(_DATA) > _DATA_SLOTS:
            _DATA.popitem(last=False)
    _DATA.move_to_end(slot)
    if spec.random_labels:  # as data.load(random_labels=True, seed=seed) does, sharing the images
        ds = dataclasses.replace(ds, train=data_mod.Split(ds.train.x, data_mod.shuffle_labels(ds.train.y, spec.seed)))
    return ds


def _eval_sets(spec, ds: data_mod.Dataset) -> dict:
    return {k: v for k, v in ds.eval_sets().items() if k != "test" or spec.eval_test}


# -- training ---------------------------------------------------------------------------------
def _fit_args(spec) -> dict:
    """The `train.fit` arguments every member of a stack shares."""
    return dict(epochs=spec.epochs, batch_size=spec.batch_size, optimizer=spec.optimizer, loss=spec.loss,
                device=resolve_device(spec.device), record_steps=spec.record_steps,
                record_grad_norm=spec.record_grad_norm, snapshot_every=spec.snapshot_every)


def train_one(spec, root=None, progress: bool = False,
              desc: str | None = None) -> tuple[train.History, nn.Module, float]:
    """(History, trained model, seconds) of one spec."""
    ds = load_data(spec, root)
    torch.manual_seed(spec.seed)
    model = build_model(spec)
    start = time.perf_counter()
    history = train.fit(model, ds.train, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
                        seed=spec.seed, eval_sets=_eval_sets(spec, ds), progress=progress, desc=desc,
                        **_fit_args(spec))
    return history, model, time.perf_counter() - start


def stack_order(specs) -> list[int]:
    """Indices of `specs` with equal (lr, momentum, weight decay) side by side (one param group each)."""
    return sorted(range(len(specs)), key=lambda i: (specs[i].lr, specs[i].momentum, specs[i].weight_decay))


def train_stack(specs, root=None, progress: bool = False) -> tuple[list[train.History], list[nn.Module], float]:
    """(Histories, trained models, seconds per member) of specs trained as one stack, in `specs`' order."""
    order = stack_order(specs)
    ordered = [specs[i] for i in order]
    datasets = [load_data(s, root) for s in ordered]
    members = []
    for s in ordered:
        torch.manual_seed(s.seed)
        members.append(build_model(s))
    first = ordered[0]
    device = resolve_device(first.device)
    stack = stacked.Stack(members).to(device)
    start = time.perf_counter()
    histories = train.fit(stack, [d.train for d in datasets], lr=[s.lr for s in ordered],
                          momentum=[s.momentum for s in ordered], weight_decay=[s.weight_decay for s in ordered],
                          seed=[s.seed for s in ordered], eval_sets=_eval_sets(first, datasets[0]),
                          progress=progress, **_fit_args(first))
    seconds = (time.perf_counter() - start) / len(specs)
    stack.write_back(members)
    back = sorted(range(len(order)), key=lambda j: order[j])
    return [histories[j] for j in back], [members[j] for j in back], seconds


__all__ = ["build_model", "load_data", "train_one", "train_stack", "stack_order", "FUNCTION_TRAIN_SIZE",
           "FUNCTION_TEST_SIZE"]
