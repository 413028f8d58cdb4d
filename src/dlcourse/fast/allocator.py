"""glibc malloc settings for the kernels that execute labs: keep freed memory for the next step.

Why: every training step allocates and frees the same large temporaries (activations, gradients,
evaluation outputs). glibc by default hands freed memory at the top of its heap back to the
system and moves its mmap threshold as blocks come and go, so many steps fault their buffers back
in from the system. Fixing the mmap threshold at its 64-bit maximum (32 MiB) and never trimming
keeps those pages in the process for the next step; the peak memory stays what the largest step
needs.

Gain: `cd benchmarks && python kernel_allocator.py` trains lab 5's 30 function fits (tiny nets,
one full-batch step per epoch, which is where allocation dominates) and one Fashion-MNIST epoch
of an MLP in child processes with and without these settings; its last line is
`ratio_function=<default s / tuned s> ratio_mlp=<...>`, with both peak memories printed.
Measured 2026-12-03 on 2 cores, 3 paired repeats, 300 epochs per fit: function 1.73x
[1.30-2.00], mlp 1.18x [1.12-1.59], the same peak memory either way (~790 and ~1,175 MB).

Public fallback: nothing set (another C library, or a user who set any of these variables
already): the same numbers, at glibc's default speed. Only the processes that execute labs get
the settings (`dlcourse.execution`); a user's own session is left as it is.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping

#: glibc tunables, as environment variables a child process reads at start.
SETTINGS = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024), "MALLOC_TRIM_THRESHOLD_": str(2 ** 40)}


def kernel_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to add to `env` (default os.environ) for a child that trains: the glibc
    settings on glibc, unless the user set any of them; else nothing."""
    env = os.environ if env is None else env
    if platform.libc_ver()[0] != "glibc" or any(name in env for name in SETTINGS):
        return {}
    return dict(SETTINGS)
