"""Shared fixtures: small IDX data sets written by the tests themselves, and the real data root."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import os
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write `array` (uint8) in the IDX format that MNIST ships and torchvision reads."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def make_idx_dataset(root: Path, name: str = "mnist", n_train: int = 600, n_test: int = 200, seed: int = 0,
                     gz: bool = False) -> Path:
    """A learnable toy data set in torchvision's layout: each class lights up its own block of pixels."""
    rng = np.random.default_rng(seed)
    raw = root / FOLDERS[name] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            r = 2 + (c // 5) * 12
            col = 2 + (c % 5) * 5
            images[i, r:r + 10, col:col + 4] = 220
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        if gz:
            for kind in ("images-idx3", "labels-idx1"):
                f = raw / f"{prefix}-{kind}-ubyte"
                (raw / (f.name + ".gz")).write_bytes(gzip.compress(f.read_bytes()))
    return root


@pytest.fixture
def toy_root(tmp_path) -> Path:
    """A data root holding toy MNIST and Fashion-MNIST (600 train / 200 test images each)."""
    make_idx_dataset(tmp_path, "mnist", seed=1)
    make_idx_dataset(tmp_path, "fashion-mnist", seed=2)
    return tmp_path


def real_data_root() -> Path | None:
    """$DLCOURSE_DATA when it holds the real files, else None."""
    place = os.environ.get("DLCOURSE_DATA")
    if place and (Path(place) / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").exists():
        return Path(place)
    return None


@pytest.fixture
def real_root() -> Path:
    root = real_data_root()
    if root is None:
        if os.environ.get("DLCOURSE_REQUIRE_DATA"):
            pytest.fail("DLCOURSE_REQUIRE_DATA is set but DLCOURSE_DATA holds no FashionMNIST/raw")
        pytest.skip("real Fashion-MNIST not found: set DLCOURSE_DATA to a folder holding FashionMNIST/raw")
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own results cache, never the project's .cache/."""
    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    """No test downloads from torchvision's mirrors: only a DLCOURSE_MIRROR a test serves itself."""
    monkeypatch.setenv("DLCOURSE_MIRROR_ONLY", "1")
    monkeypatch.delenv("DLCOURSE_MIRROR", raising=False)


def write_sha256sums(root: Path) -> Path:
    """`sha256sum`-format checksums of every .gz under `root`, as a mirror publishes them."""
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}"
             for p in sorted(root.rglob("*.gz"))]
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return root / "SHA256SUMS"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """`folder` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
