"""Ray's overhead: one sweep of 16 specs, local backend vs ray backend, side by side in one run.

The specs are 3 Fashion-MNIST epochs of an MLP 784-100-10 each (`--train-size` to shrink them on a
busy machine), 16 distinct seeds x lrs so that they form stacks. Both sweeps train the same specs
into fresh caches. The local sweep uses the threads a user of the local backend gets
(`--local-threads`, default: torch's own, all cores), each Ray task `--threads` (default 1, one
CPU per task), so the comparison is what a user gains or loses by moving one machine's sweep onto
a cluster of the same cores. The Ray sweep runs on the cluster at `--address` (else $RAY_ADDRESS),
which must already be up, e.g. two nodes of one CPU each:

    ray start --head --port 6379 --num-cpus 1 && ray start --address 127.0.0.1:6379 --num-cpus 1
    python benchmarks/ray_overhead.py --address 127.0.0.1:6379

Connecting to the cluster, and starting its workers (a short untimed Ray sweep: torch imported,
data read), is done before either sweep, as a notebook session would have done once; the driver
has read the data too. Each of `--repeats` rounds times both sweeps back to back (fresh caches);
the median of the paired ratios is reported with their spread.
Last line: ratio_ray=<local seconds / ray seconds> (the issue asks >= 1/1.3).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from dlcourse import runs
from dlcourse.runs import remote


def specs(n: int, train_size: int | None, epochs: int) -> list[runs.RunSpec]:
    return [runs.RunSpec(dataset="fashion-mnist", train_size=train_size, hidden=(100,), epochs=epochs, seed=i,
                         lr=(1e-3, 2e-3)[i % 2], batch_size=64, device="cpu") for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=None, help="the running Ray cluster (default: $RAY_ADDRESS)")
    parser.add_argument("-n", type=int, default=16, help="specs (default 16)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=None, help="training images per spec (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="threads (and CPUs) per Ray task (default 1)")
    parser.add_argument("--local-threads", type=int, default=None,
                        help="threads of the local sweep (default: torch's own, all cores)")
    parser.add_argument("--repeats", type=int, default=3, help="paired rounds (default 3)")
    parser.add_argument("--max-stack", type=int, default=4, help="members per stack (default 4: 4 tasks)")
    args = parser.parse_args()
    group = specs(args.n, args.train_size, args.epochs)
    print(f"load average before: {os.getloadavg()}", flush=True)
    ray = remote.connect(args.address)
    print(f"cluster: {ray.cluster_resources()}", flush=True)
    runs.load_data(group[0])  # the driver reads the data once, as a notebook session would
    with tempfile.TemporaryDirectory() as tmp:
        # ... and so do the workers: a short untimed Ray sweep starts them (torch imported, data read)
        warm = [s.replace(epochs=1, seed=10_000 + i) for i, s in enumerate(group[:2])]
        runs.sweep(warm, backend="ray", cache=os.path.join(tmp, "warm"), threads=args.threads, max_stack=1,
                   progress=False)
        ratios, same = [], True
        for rep in range(args.repeats):
            start = time.perf_counter()
            near = runs.sweep(group, backend="local", cache=os.path.join(tmp, f"local{rep}"),
                              threads=args.local_threads, max_stack=args.max_stack, progress=False)
            local_s = time.perf_counter() - start
            start = time.perf_counter()
            far = runs.sweep(group, backend="ray", cache=os.path.join(tmp, f"ray{rep}"), threads=args.threads,
                             max_stack=args.max_stack, progress=False)
            ray_s = time.perf_counter() - start
            same = same and all(a._weights == b._weights for a, b in zip(near["result"], far["result"]))
            ratios.append(local_s / ray_s)
            print(f"round {rep + 1}: local {local_s:.1f} s ({args.local_threads or 'default'} threads), "
                  f"ray {ray_s:.1f} s ({args.threads} per task), ratio {ratios[-1]:.2f}", flush=True)
    print(f"{len(group)} specs, {args.epochs} epochs, train_size={args.train_size or 'all'}, "
          f"{len(near.attrs['stacks'])} stacks; ratios {min(ratios):.2f}-{max(ratios):.2f}; "
          f"weights bitwise equal in every round: {same}", flush=True)
    print(f"load average after: {os.getloadavg()}", flush=True)
    print(f"ratio_ray={statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
