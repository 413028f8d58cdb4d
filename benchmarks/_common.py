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


def step_probe(steps: int = 300) -> float:
    """Microseconds per step of a fixed small training step (plain torch: an MLP 784-100-10, Adam,
    batch 64, random data, torch's default threads), median of three runs of `steps` steps.

    Why: the project's 2-core VM switches, often within a minute, between a fast and a slow phase
    for work made of many small steps (one Fashion-MNIST epoch of this MLP in `train.fit` took
    0.48-0.54 s in one and 0.83-0.91 s in the other, nothing else running; a 2048 x 2048 matmul ran
    at the same speed in both). This probe read about 610 us in the fast phase and 900 in the slow
    one (2026-12-04). The benchmarks print it at their start and end so that a figure can be read
    with the phase it was measured in; compare figures across runs with similar probes.
    """
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 784, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    model = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    opt = torch.optim.Adam(model.parameters())
    times = []
    for _ in range(4):  # the first is a warm-up
        start = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        times.append((time.perf_counter() - start) / steps * 1e6)
    return statistics.median(times[1:])


def print_probe(when: str) -> None:
    """Print `step_probe()` labelled `when` ("start", "end"), beside a benchmark's figures."""
    print(f"step probe at {when}: {step_probe():.0f} us per step (see _common.step_probe)", flush=True)
