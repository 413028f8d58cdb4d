"""Speed behind one door: every trick here uses a private or low-level API, so none lives elsewhere.

The teaching modules (data, models, optim, train, the NumPy MLP) use public APIs only and read top
to bottom; where a trick pays, they take it from here. Each trick's docstring says why it exists,
what it gains on which benchmark command, and the public fallback it is tested against (the
trick must give the same numbers, and is deleted when the benchmark stops showing a gain).

- `Adam` (adam.py): torch.optim.Adam(fused=True) whose `step` calls the fused kernel directly;
  benchmarks/train_throughput.py (ratio_b10). Fallback: torch.optim.Adam(fused=True).
"""

from __future__ import annotations

from .adam import Adam

__all__ = ["Adam"]
