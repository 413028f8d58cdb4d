"""Kernel allocator: the same training in child processes with glibc's default malloc settings
and with `dlcourse.fast.kernel_environment()` (what the processes that execute labs get).

(a) function: lab 5's 30 function fits (sinc and sign, nets of 8, 5 and 2 layers of 571 weights,
    5 seeds, stacked as `sweep` stacks them), full batch of 1,000 points, `--epochs` one-step
    epochs with the gradient norm recorded: allocation-bound.
(b) mlp: one Fashion-MNIST epoch of an MLP 784-100-10, Adam, batch 64: compute-bound.

The two settings alternate within each repeat; the median of `--repeats` paired ratios is
reported with its spread, and each child's peak resident memory beside its time.
Last line: ratio_function=<default s / tuned s> ratio_mlp=<default s / tuned s>.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from _common import REPO, data_root


def child(workload: str, epochs: int) -> None:
    """Train the workload once into an empty cache; print seconds and peak memory as JSON."""
    import torch

    from dlcourse import experiments as ex
    from dlcourse.runs import RunSpec, sweep

    if workload == "function":
        torch.set_num_threads(1)  # as lab 5 does
        specs = [RunSpec.from_dict(d) for d in ex.function_fits(["sinc", "sign"], [8, 5, 2], range(5),
                                                                 epochs=epochs, device="cpu")]
    else:
        specs = [RunSpec(dataset="fashion-mnist", model="mlp", hidden=(100,), optimizer="adam", batch_size=64,
                         epochs=1, lr=1e-3, seed=0, device="cpu")]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sweep(specs, cache=tmp, progress=False)
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(workload: str, epochs: int, tuned: bool) -> dict:
    from dlcourse.fast import SETTINGS, kernel_environment

    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    if tuned:
        env.update(kernel_environment(env))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, __file__, "--child", workload, "--epochs", str(epochs)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=300, help="one-step epochs per function fit")
    ap.add_argument("--child", choices=("function", "mlp"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.epochs)
    os.environ["DLCOURSE_DATA"] = str(data_root())
    sys.path.insert(0, str(REPO / "src"))
    from dlcourse.fast import kernel_environment

    print(f"settings: {kernel_environment({}) or 'none (not glibc): nothing to compare'}, "
          f"load {os.getloadavg()[0]:.2f}")
    ratios = {}
    for workload in ("function", "mlp"):
        ratios[workload] = []
        for rep in range(args.repeats):
            default, tuned = measure(workload, args.epochs, False), measure(workload, args.epochs, True)
            ratios[workload].append(default["seconds"] / tuned["seconds"])
            print(f"{workload} repeat {rep}: default {default['seconds']:.2f}s ({default['peak_mb']:.0f} MB peak), "
                  f"tuned {tuned['seconds']:.2f}s ({tuned['peak_mb']:.0f} MB peak), "
                  f"ratio {ratios[workload][-1]:.2f}x", flush=True)
        r = ratios[workload]
        print(f"{workload}: ratio median {statistics.median(r):.2f} [{min(r):.2f}-{max(r):.2f}] over {len(r)} repeats")
    print(f"load {os.getloadavg()[0]:.2f}")
    print(f"ratio_function={statistics.median(ratios['function']):.2f} ratio_mlp={statistics.median(ratios['mlp']):.2f}")


if __name__ == "__main__":
    main()
