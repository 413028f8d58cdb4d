"""How close does the hand-written NumPy MLP get to this machine's matmul peak?

Measures, in one run:
(a) NumPy matmul GFLOP/s on large square matrices in float32 and in float64
    (NumPy's default dtype), plus the network's own batch-64 shapes;
(b) epochs of the 784-500-250-100-10 sigmoid network with plain SGD, batch 64,
    on 60,000 samples (Fashion-MNIST if found, else random data of that shape),
    in float32, the MLP's default.
Only matmul FLOPs are counted (2*m*n*k each): forward x@W, backward a.T@delta
and delta@W.T, the latter skipped for the first layer, whose input gradient is
never needed: 148.4 GFLOP per epoch.

Which peak? The issue that set the target calibrated it as "0.97 s per epoch,
90%": 148.4 GFLOP / 0.97 s = 153 GFLOP/s, which is 90% of a peak of about
170 GFLOP/s. On this machine that is NumPy's float64 square matmul (170),
while float32 square matmuls reach 345-390 with OpenBLAS's AVX-512 kernels.
So ``peak_fraction`` (the last line) divides the float32 network's rate by
the float64 peak, as that reference did. The lines before it also give the
fraction of the float32 peak and of the "matmul-only ceiling" (the same
step's matmuls timed alone, nothing else): at batch 64 those matmuls alone
reach only about 0.65 of the float32 square peak, so no float32 loop can
reach 0.8 of it.

Run: .venv/bin/python benchmarks/scratch_throughput.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dlcourse.scratch import MLP  # noqa: E402

SIZES = [784, 500, 250, 100, 10]
BATCH = 64
N = 60_000
EPOCHS = 5  # the median of these is reported


def median_gflops(m: int, k: int, n: int, repeats: int, rng, dtype=np.float32) -> float:
    a = rng.random((m, k)).astype(dtype)
    b = rng.random((k, n)).astype(dtype)
    c = np.empty((m, n), dtype)
    np.matmul(a, b, out=c)  # warm-up: threads, caches
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t)
    return 2 * m * k * n / np.median(times) / 1e9


def network_matmuls(m: int) -> list[tuple[str, int, int, int]]:
    """(label, m, k, n) of every matmul in one training step on a batch of m."""
    out = []
    for i, (fi, fo) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        out.append((f"fwd  L{i + 1}", m, fi, fo))
        out.append((f"dW   L{i + 1}", fi, m, fo))
        if i > 0:
            out.append((f"dX   L{i + 1}", m, fo, fi))
    return out


def epoch_flops(n: int, batch: int) -> float:
    sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])
    return float(sum(2 * mm * k * nn for m in sizes for _, mm, k, nn in network_matmuls(m)))


def data_root() -> Path:
    env = os.environ.get("DLCOURSE_DATA")
    return Path(env) if env else (ROOT / ".." / "shared" / "data").resolve()


def load_fashion_mnist() -> tuple[np.ndarray, np.ndarray, str]:
    raw = data_root() / "FashionMNIST" / "raw"
    images, labels = raw / "train-images-idx3-ubyte", raw / "train-labels-idx1-ubyte"
    if images.is_file() and labels.is_file():
        x = np.fromfile(images, dtype=np.uint8, offset=16).reshape(-1, 784)[:N]
        y = np.fromfile(labels, dtype=np.uint8, offset=8)[:N].astype(np.int64)
        if len(x) == N and len(y) == N:
            x = x.astype(np.float32) / 255.0
            x -= x.mean()
            x /= x.std()
            return x, y, f"Fashion-MNIST train ({images})"
    rng = np.random.default_rng(0)
    return (rng.standard_normal((N, 784), dtype=np.float32), rng.integers(0, 10, N),
            f"random data of shape ({N}, 784) (Fashion-MNIST not found under {raw})")


def main() -> None:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older numpy: informational only
        blas = "unknown"
    print(f"numpy {np.__version__}, BLAS {blas}, cpus {os.cpu_count()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '<unset>')}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '<unset>')}, "
          f"load average {os.getloadavg()[0]:.2f}")

    # (a) matmul peaks --------------------------------------------------------------
    rng = np.random.default_rng(0)
    shapes = [("fwd  L1", 64, 784, 500), ("dW   L1", 784, 64, 500), ("fwd  L2", 64, 500, 250),
              ("dX   L2", 64, 250, 500), ("square 1024", 1024, 1024, 1024), ("square 2048", 2048, 2048, 2048)]
    print("float32 matmul, median of repeats:")
    rates = {}
    for label, m, k, n in shapes:
        rates[label] = median_gflops(m, k, n, 7 if m >= 1024 else 200, rng)
        print(f"  {label:12s} ({m}x{k})@({k}x{n}): {rates[label]:7.1f} GFLOP/s")
    peak32 = max(rates.values())
    print(f"float32 peak (best of the above): {peak32:.1f} GFLOP/s")
    peak64 = max(median_gflops(s, s, s, 7, rng, np.float64) for s in (1024, 2048))
    print(f"float64 peak (NumPy's default dtype, best of square 1024 and 2048): {peak64:.1f} GFLOP/s")

    # Ceiling for this network: every step's matmuls at their isolated speed.
    step = network_matmuls(BATCH)
    t_step = sum(2 * m * k * n / (median_gflops(m, k, n, 100, rng) * 1e9) for _, m, k, n in step)
    step_flops = sum(2 * m * k * n for _, m, k, n in step)
    ceiling = step_flops / t_step / 1e9
    print(f"matmul-only ceiling for batch {BATCH} (isolated matmuls, no other work): "
          f"{ceiling:.1f} GFLOP/s = {ceiling / peak32:.3f} of the float32 peak")

    # (b) epochs of the NumPy network ----------------------------------------------
    x, y, source = load_fashion_mnist()
    print(f"data: {source}")
    flops = epoch_flops(N, BATCH)
    model = MLP(SIZES, hidden="sigmoid", output="softmax", init="glorot", seed=0)
    hist = model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, optimizer="sgd", lr=0.1, loss="cross_entropy", seed=0)
    seconds = float(np.median(hist["seconds"]))
    achieved = flops / seconds / 1e9
    print(f"network {'-'.join(map(str, SIZES))}, sigmoid, SGD, batch {BATCH}, {N} samples, {EPOCHS} epochs")
    print("epoch seconds: " + ", ".join(f"{s:.3f}" for s in hist["seconds"])
          + f"; train_acc after last epoch {hist['train_acc'].iloc[-1]:.4f}")
    print(f"matmul GFLOP per epoch: {flops / 1e9:.2f}")
    print(f"seconds per epoch (median): {seconds:.3f}")
    print(f"achieved: {achieved:.1f} GFLOP/s = {achieved / ceiling:.3f} of the matmul-only ceiling, "
          f"{achieved / peak32:.3f} of the float32 peak")
    print(f"peak_fraction (achieved / float64 peak, the issue's calibration; see the docstring):")
    print(f"peak_fraction={achieved / peak64:.3f}")


if __name__ == "__main__":
    main()
