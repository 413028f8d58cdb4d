"""Speed behind one door: every trick here uses a private or low-level API, so none lives elsewhere.

The teaching modules (data, models, optim, train, the NumPy MLP) use public APIs only and read top
to bottom; where a trick pays, they take it from here. Each trick's docstring says why it exists,
what it gains on which benchmark command, and the public fallback it is tested against (the
trick must give the same numbers, and is deleted when the benchmark stops showing a gain).

- `Adam` (adam.py): torch.optim.Adam(fused=True) whose `step` calls the fused kernel directly;
  benchmarks/train_throughput.py (ratio_b10). Fallback: torch.optim.Adam(fused=True).
- `kernel_environment` (allocator.py): glibc malloc settings for the processes that execute labs;
  benchmarks/kernel_allocator.py. Fallback: glibc's defaults.
"""

from __future__ import annotations

from .allocator import SETTINGS, kernel_environment

__all__ = ["Adam", "SETTINGS", "kernel_environment"]


def __getattr__(name: str):
    """`Adam` on first use: the book's driver takes `kernel_environment` without importing torch."""
    if name == "Adam":
        from .adam import Adam
        return Adam
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
