"""Data sets as tensors on the device, and batches as index slices.

MNIST-sized data fits in memory many times over, so each split is one normalized float32
tensor plus int64 labels, already on the training device. Batches are slices of a fresh
seeded permutation each epoch: no DataLoader, no per-image Python work in the hot path.
A data set found in no data root is downloaded into the first one (`dlcourse.download`).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torchvision

from . import validate, vocabulary
from .download import DataError, Fetched, fetch
from .settings import data_roots, resolve_device


@dataclass(frozen=True)
class _Source:
    cls: type
    folder: str
    mean: float
    std: float
    classes: tuple[str, ...]


DATASETS: dict[str, _Source] = {
    "mnist": _Source(torchvision.datasets.MNIST, "MNIST", 0.1307, 0.3081, tuple(str(i) for i in range(10))),
    "fashion-mnist": _Source(
        torchvision.datasets.FashionMNIST,
        "FashionMNIST",
        0.2860,
        0.3530,
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
}
assert tuple(DATASETS) == vocabulary.DATASETS, "data.DATASETS must describe vocabulary.DATASETS"
FUNCTIONS = vocabulary.FUNCTIONS


@dataclass(frozen=True)
class Split:
    """One split: inputs `x` (N, 1, 28, 28 float32, normalized) and labels `y` (N, int64)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Dataset:
    """Train, optional validation and test splits of one data set, with its class names."""

    name: str
    classes: tuple[str, ...]
    train: Split
    test: Split
    val: Split | None = None
    root: Path | None = None
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def eval_sets(self) -> dict[str, Split]:
        sets = {"val": self.val} if self.val is not None else {}
        sets["test"] = self.test
        return sets


def _has_files(root: Path, source: _Source) -> bool:
    raw = root / source.folder / "raw"
    return all((raw / f).exists() for f in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte",
                                             "train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"))


def find_root(name: str, root=None) -> Path | None:
    """The first place that holds the data set's raw files, or None."""
    source = DATASETS[validate.choice("dataset", name, vocabulary.DATASETS)]
    for place in data_roots(root):
        if _has_files(place, source):
            return place
    return None


def _missing_error(name: str, places: list[Path], reason: str, explicit: bool) -> DataError:
    source = DATASETS[name]
    looked = "\n".join(f"  - {(p / source.folder / 'raw').resolve()}" for p in places)
    only = " (an explicit root is the only place looked at: DLCOURSE_DATA and data/ were not)" if explicit else ""
    return DataError(
        f"{name}: the data set was not found and could not be downloaded ({reason}).\n"
        f"Looked in{only}:\n{looked}\n"
        f"Fix: point the data root at a folder holding {source.folder}/raw/*-ubyte files, e.g.\n"
        f"  export DLCOURSE_DATA=/path/to/data   (or pass root=... / --root ...)\n"
        f"or set DLCOURSE_MIRROR to a server holding {source.folder}/raw/*.gz, or get internet access,\n"
        f"then `dlcourse data get {name}`."
    )


@functools.lru_cache(maxsize=8)
def _read_raw(name: str, root: str, mtime: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 images and int64 labels of both splits, read once per process through torchvision."""
    source = DATASETS[name]
    out = []
    for train in (True, False):
        split = "train" if train else "test"
        try:
            ds = source.cls(root, train=train, download=False)
            images, labels = ds.data, ds.targets
        except DataError:
            raise
        except Exception as exc:  # torchvision raises bare RuntimeErrors on truncated IDX files
            raise DataError(
                f"{name}: the {split} files under {Path(root) / source.folder / 'raw'} could not be read "
                f"({type(exc).__name__}: {exc}). They are probably truncated or corrupt: delete them and "
                f"download again (or check them with `sha256sum -c SHA256SUMS`)."
            ) from exc
        if images.ndim != 3 or tuple(images.shape[1:]) != (28, 28) or images.dtype != torch.uint8:
            raise DataError(f"{name}: {split} images have shape {tuple(images.shape)}, expected (N, 28, 28) uint8; the file is corrupt")
        if labels.shape != (images.shape[0],):
            raise DataError(
                f"{name}: {split} has {images.shape[0]} images but {labels.numel()} labels; the files do not belong together"
            )
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(source.classes)):
            raise DataError(f"{name}: {split} labels fall outside 0..{len(source.classes) - 1}; the label file is corrupt")
        out += [images, labels.long()]
    return tuple(out)


def _raw_tensors(name: str, place: Path):
    """The cached raw tensors of `name` under `place`, re-read when the training file changes."""
    raw = place / DATASETS[name].folder / "raw" / "train-images-idx3-ubyte"
    return _read_raw(name, str(place), os.path.getmtime(raw))


def get(name: str, root=None, *, log=None) -> tuple[Path, list[Fetched]]:
    """The data root holding `name`, downloading it into the first root when it is nowhere.

    Returns the place and what was fetched (nothing when it was already there). Downloads go
    through $DLCOURSE_MIRROR first, then torchvision's mirrors; see `dlcourse.download`.
    """
    name = validate.choice("dataset", name, vocabulary.DATASETS)
    place = find_root(name, root)
    if place is not None:
        return place, []
    places = data_roots(root)
    source = DATASETS[name]
    try:
        fetched = fetch(places[0], source.folder, source.cls, present=lambda: _has_files(places[0], source), log=log)
    except DataError as exc:
        raise _missing_error(name, places, f"download failed: {exc}", root is not None) from None
    return places[0], fetched


def _locate_or_download(name: str, root, download: bool) -> Path:
    if download:
        return get(name, root)[0]
    place = find_root(name, root)
    if place is None:
        raise _missing_error(name, data_roots(root), "download=False", root is not None)
    return place


def load(
    name: str,
    root=None,
    *,
    device="auto",
    train_size: int | None = None,
    val_size: int = 0,
    random_labels: bool = False,
    seed: int = 0,
    download: bool = True,
) -> Dataset:
    """Load MNIST or Fashion-MNIST onto `device`.

    The validation split is carved from the training split with a fixed seed (0), so every run
    that asks for the same `val_size` validates on the same images. `train_size` then takes a
    subset of what remains; `random_labels` replaces the training labels by a seeded permutation.
    Sizes come from the files: MNIST here may hold 10,000 training images, not 60,000.
    """
    name = validate.choice("dataset", name, vocabulary.DATASETS)
    validate.positive_int("train_size", train_size, allow_none=True)
    validate.non_negative_int("val_size", val_size)
    device = resolve_device(device)
    place = _locate_or_download(name, root, download)
    xtr, ytr, xte, yte = _raw_tensors(name, place)

    n = xtr.shape[0]
    if val_size >= n:
        raise ValueError(f"val_size={val_size} is not valid; the {name} training split has only {n} images")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    val_idx, rest = order[:val_size], order[val_size:]
    if train_size is not None:
        if train_size > len(rest):
            raise ValueError(
                f"train_size={train_size} is not valid; {name} has {len(rest)} training images left after val_size={val_size}"
            )
        rest = rest[:train_size]
    source = DATASETS[name]

    def split(images, labels) -> Split:
        x = ((images.to(device, torch.float32) / 255.0 - source.mean) / source.std).unsqueeze(1)
        return Split(x.contiguous(), labels.to(device))

    train = split(xtr[rest], ytr[rest])
    if random_labels:
        train = replace(train, y=shuffle_labels(train.y, seed))
    return Dataset(
        name=name,
        classes=source.classes,
        train=train,
        val=split(xtr[val_idx], ytr[val_idx]) if val_size else None,
        test=split(xte, yte),
        root=place,
        info={"train_available": n, "test_available": xte.shape[0]},
    )


def shuffle_labels(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Random labels for the memorization experiment: a seeded permutation of the given labels.

    A permutation keeps the class frequencies, so only the link between image and label is lost.
    """
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(labels.numel(), generator=g).to(labels.device)
    return labels[perm]


def function_data(
    name: str, n: int = 1000, low: float = -1.0, high: float = 1.0, device="auto"
) -> Split:
    """Samples of the 1-D targets of the approximation lab on [low, high].

    `sinc`: sin(5πx)/(5πx) (1 at x=0); `sign`: sign(sin(5πx)). Returns x and y of shape (n, 1).
    """
    name = validate.choice("function", name, vocabulary.FUNCTIONS)
    validate.positive_int("n", n)
    if not (isinstance(low, (int, float)) and isinstance(high, (int, float)) and math.isfinite(low)
            and math.isfinite(high) and low < high):
        raise ValueError(f"interval [low, high]=[{low!r}, {high!r}] is not valid; low must be below high")
    x = torch.linspace(low, high, n, dtype=torch.float32).unsqueeze(1)
    y = torch.sinc(5 * x) if name == "sinc" else torch.sign(torch.sin(5 * math.pi * x))
    device = resolve_device(device)
    return Split(x.to(device), y.to(device))


def batch_indices(n: int, batch_size: int, generator: torch.Generator, device="cpu"):
    """Yield index tensors of one epoch: a fresh permutation, cut into slices.

    Every sample appears exactly once per epoch; the last, partial batch is kept.
    """
    perm = torch.randperm(n, generator=generator).to(device)
    return perm.split(batch_size)


def data_report(root=None) -> list[dict]:
    """What `dlcourse data check` prints: each data set, where it was found, its split sizes."""
    rows = []
    for name, source in DATASETS.items():
        place = find_root(name, root)
        row = {"dataset": name, "found": place is not None,
               "where": str((place / source.folder / "raw").resolve()) if place else None,
               "looked": [str((p / source.folder / "raw").resolve()) for p in data_roots(root)]}
        if place is not None:
            try:  # sizes from the raw tensors: no normalized float copies just to count images
                xtr, _, xte, _ = _raw_tensors(name, place)
                row.update(train=xtr.shape[0], test=xte.shape[0])
            except DataError as exc:
                row.update(found=False, error=str(exc))
        rows.append(row)
    return rows
