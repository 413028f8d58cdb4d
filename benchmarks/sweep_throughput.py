"""Sweep throughput: 8 MLPs 784-100-10 (Adam, batch 64, one epoch of Fashion-MNIST) trained one by
one with `runs.run` versus as one stack (`sweep(backend="stacked")`), then the cached reruns.

Each repeat uses a fresh, empty cache (so everything trains) and new seeds; the two backends
run back to back within a repeat and their ratio is paired per repeat. Both paths include what
a user pays: spec hashing, training, per-epoch evaluation on the test set and writing the
entries. Data is loaded once beforehand (in-process data cache), as in a notebook session.
Last line: ratio_stacked=<seconds per model-epoch, sequential / stacked>.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from _common import data_root, spread, timed
from dlcourse import runs


def specs(n: int, repeat: int) -> list[runs.RunSpec]:
    lrs = (5e-4, 1e-3, 2e-3, 3e-3)
    return [runs.RunSpec(dataset="fashion-mnist", model="mlp", hidden=(100,), optimizer="adam", batch_size=64,
                         epochs=1, lr=lrs[i % len(lrs)], seed=1000 * repeat + i, device="cpu") for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = data_root()
    os.environ["DLCOURSE_DATA"] = str(root)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, data {root}, "
          f"load {os.getloadavg()[0]:.2f}")
    runs.load_data(specs(1, 0)[0])  # read the data once, as a notebook session would

    seq_t, stk_t, ratios, acc_seq, acc_stk = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            group = specs(args.models, rep + 1)
            cache_a, cache_b = os.path.join(tmp, f"seq{rep}"), os.path.join(tmp, f"stk{rep}")
            sa, results = timed(lambda: [runs.run(s, cache=cache_a) for s in group])
            sb, df = timed(runs.sweep, group, backend="stacked", cache=cache_b, progress=False)
            assert not any(r.cached for r in results) and not df["cached"].any()
            assert (df["backend"] == "stacked").all(), df["backend"].tolist()
            seq_t.append(sa / len(group))
            stk_t.append(sb / len(group))
            ratios.append(sa / sb)
            acc_seq += [r.metrics["test_acc"] for r in results]
            acc_stk += df["test_acc"].tolist()
            print(f"repeat {rep}: sequential {sa:.2f}s, stacked {sb:.2f}s, ratio {sa / sb:.2f}x", flush=True)

        # Cached reruns: the last stacked sweep again (all hits), and a 20-spec sweep.
        hit_t = [timed(runs.sweep, group, backend="stacked", cache=cache_b, progress=False)[0] for _ in range(3)]
        single_t = [timed(runs.run, group[0], cache=cache_b)[0] for _ in range(5)]
        big = specs(20, 99)
        cache_c = os.path.join(tmp, "big")
        t0 = time.perf_counter()
        runs.sweep(big, backend="stacked", cache=cache_c, progress=False)
        fill = time.perf_counter() - t0
        big_t = [timed(runs.sweep, big, backend="stacked", cache=cache_c, progress=False)[0] for _ in range(3)]

    print(f"seconds per model-epoch: sequential {spread(seq_t)}  stacked {spread(stk_t)}")
    print(f"test accuracy over {len(acc_seq)} models: sequential {statistics.mean(acc_seq):.4f} "
          f"(sd {statistics.stdev(acc_seq):.4f})  stacked {statistics.mean(acc_stk):.4f} "
          f"(sd {statistics.stdev(acc_stk):.4f})  diff {100 * (statistics.mean(acc_stk) - statistics.mean(acc_seq)):+.2f} points")
    print(f"cached rerun of the {args.models}-spec sweep: {spread(hit_t)}")
    print(f"single cache hit (run): {spread(single_t)}")
    print(f"20-spec sweep: first (stacked, trains) {fill:.2f}s, fully cached rerun {spread(big_t)}")
    print(f"ratio_stacked={statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
