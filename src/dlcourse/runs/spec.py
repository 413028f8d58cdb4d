"""The spec of one training: a frozen, validated RunSpec whose canonical form keys the cache.

Validation happens on construction, before any data is loaded: every field is checked, and the
model and optimizer are built on the meta device so that their own checks run (no memory, no
random draws). `canonical()` drops what training ignores, so equal trainings share one key.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .. import optim as optim_mod
from .. import data as data_mod
from .. import train, validate, vocabulary
from ..settings import resolve_device
from .recipe import FUNCTION_TEST_SIZE, FUNCTION_TRAIN_SIZE, build_model

DATASETS = vocabulary.DATASETS + vocabulary.FUNCTIONS
MODELS = ("mlp", "cnn")


@dataclass(frozen=True)
class RunSpec:
    """One training, fully described and validated on construction.

    Field groups: data (dataset .. test_size), model (model .. init; `hidden` for MLPs,
    `channels`/`dense`/`pool` for CNNs), optimization (optimizer .. seed), what to record, and
    the device. `loss=None` means "ce" for the image sets and "mse" for "sinc"/"sign".
    """

    dataset: str = "fashion-mnist"
    train_size: int | None = None
    val_size: int = 0
    test_size: int | None = None
    random_labels: bool = False
    model: str = "mlp"
    hidden: tuple[int, ...] = (100,)
    channels: tuple[int, ...] = (32, 64)
    dense: tuple[int, ...] = (128,)
    pool: bool = True
    activation: str = "relu"
    batchnorm: bool = False
    dropout: float = 0.0
    init: str = "default"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    loss: str | None = None
    batch_size: int = 64
    epochs: int = 1
    seed: int = 0
    eval_test: bool = True
    record_grad_norm: bool = False
    record_steps: bool = False
    snapshot_every: int | None = None
    device: str = "auto"

    def __post_init__(self):
        put = functools.partial(object.__setattr__, self)
        put("dataset", validate.choice("dataset", self.dataset, DATASETS))
        put("model", validate.choice("model", self.model, MODELS))
        for name in ("hidden", "channels", "dense"):
            put(name, validate.int_list(name, getattr(self, name)))
        for name in ("random_labels", "pool", "batchnorm", "eval_test", "record_grad_norm", "record_steps"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} is not valid; it must be true or false")
        validate.positive_int("train_size", self.train_size, allow_none=True)
        validate.positive_int("test_size", self.test_size, allow_none=True)
        validate.non_negative_int("val_size", self.val_size)
        validate.non_negative_int("seed", self.seed)
        is_function = self.dataset in vocabulary.FUNCTIONS
        if self.loss is None:
            put("loss", "mse" if is_function else "ce")
        if is_function:
            if self.model != "mlp":
                raise ValueError(f"model={self.model!r} is not valid for dataset={self.dataset!r}; choose one of: mlp")
            if self.random_labels:
                raise ValueError(f"random_labels=True is not valid for dataset={self.dataset!r}; it has no labels")
            if self.val_size:
                raise ValueError(f"val_size={self.val_size!r} is not valid for dataset={self.dataset!r}; choose 0 "
                                 f"(it is evaluated on a dense grid, test_size points)")
            if validate.choice("loss", self.loss, train.LOSSES) != "mse":
                raise ValueError(f"loss={self.loss!r} is not valid for dataset={self.dataset!r} (real-valued "
                                 f"targets); choose one of: mse")
        for name in ("optimizer", "activation", "init", "loss"):
            if isinstance(getattr(self, name), str):
                put(name, getattr(self, name).lower())
        train.check_fit_args(self.epochs, self.batch_size, self.optimizer, self.lr, self.momentum,
                             self.weight_decay, self.loss, self.snapshot_every)
        resolve_device(self.device)
        # The builders own the model and optimizer checks: build both on the meta device, which
        # costs no memory and draws no random numbers.
        with torch.device("meta"):
            model = build_model(self)
            optim_mod.make(self.optimizer, model.parameters(), lr=self.lr, momentum=self.momentum,
                           weight_decay=self.weight_decay)
        for name in ("lr", "momentum", "weight_decay", "dropout"):  # 1 and 1.0 give one key
            put(name, float(getattr(self, name)))

    @classmethod
    def from_dict(cls, d: Mapping) -> "RunSpec":
        """A spec from what YAML or papermill give: lists for tuples, "1e-3" strings for numbers."""
        if not isinstance(d, Mapping):
            raise ValueError(f"spec={d!r} is not valid; it must be a mapping of field names to values")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = [k for k in d if k not in names]
        if unknown:
            raise ValueError(f"{unknown[0]}={d[unknown[0]]!r} is not valid: there is no such RunSpec field; "
                             f"choose among: {', '.join(names)}")
        return cls(**{k: _coerce(k, v, names[k].type) for k, v in d.items()})

    def replace(self, **changes) -> "RunSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Every field as plain JSON types (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def canonical(self) -> dict:
        """What decides the result: the fields without those the model or optimizer ignores,
        and the resolved device type (cpu vs cuda) instead of "auto"."""
        d = self.to_dict()
        for name in (("channels", "dense", "pool") if self.model == "mlp" else ("hidden",)):
            d.pop(name)
        if self.optimizer not in ("momentum", "nesterov"):
            d.pop("momentum")
        if self.is_function:
            d["train_size"] = self.train_size or FUNCTION_TRAIN_SIZE
            d["test_size"] = self.test_size or FUNCTION_TEST_SIZE
        d["device"] = resolve_device(self.device).type
        return d

    @property
    def key(self) -> str:
        """Stable hash of the canonical spec and the training code's fingerprint."""
        from . import fingerprint  # the fingerprint module reads source files; specs alone need not

        return fingerprint.spec_key(self)

    @property
    def is_function(self) -> bool:
        return self.dataset in vocabulary.FUNCTIONS

    @property
    def in_features(self) -> int:
        return 1 if self.is_function else 784

    @property
    def out_features(self) -> int:
        return 1 if self.is_function else len(data_mod.DATASETS[self.dataset].classes)


def _coerce(name: str, value, type_str):
    """Loosen what YAML/papermill hand over: lists -> tuples, numeric strings -> numbers."""
    t = str(type_str)
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, str):
        text = value.strip()
        if "float" in t or ("int" in t and "tuple" not in t):
            if text.lower() in ("none", "null") and "None" in t:
                return None
            try:
                number = float(text)
            except ValueError:
                return value  # the spec's own check names the field and what is allowed
            if "int" in t and "float" not in t:
                return int(number) if number.is_integer() else value
            return number
        if t == "bool" and text.lower() in ("true", "false"):
            return text.lower() == "true"
    if isinstance(value, float) and "int" in t and "float" not in t and "tuple" not in t and value.is_integer():
        return int(value)
    return value


def as_spec(spec) -> RunSpec:
    return spec if isinstance(spec, RunSpec) else RunSpec.from_dict(spec)



__all__ = ["RunSpec", "as_spec", "DATASETS", "MODELS"]
