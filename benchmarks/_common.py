"""Helpers shared by the benchmark scripts: data root, timing, summary statistics."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """$DLCOURSE_DATA, else ../shared/data beside the checkout, else ./data."""
    for place in (os.environ.get("DLCOURSE_DATA"), REPO.parent / "shared" / "data", REPO / "data"):
        if place and (Path(place) / "FashionMNIST" / "raw").exists():
            return Path(place)
    raise SystemExit("Fashion-MNIST not found: set DLCOURSE_DATA to a folder holding FashionMNIST/raw")


def timed(fn, *args, **kwargs):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def spread(values) -> str:
    """median [min-max] of a list of seconds."""
    return f"{statistics.median(values):.3f}s [{min(values):.3f}-{max(values):.3f}]"
