"""Sweep throughput: models trained one by one with `runs.run` versus as one stack
(`sweep(specs)`, which stacks what it can), in seconds per model-epoch.

(a) 8 MLPs 784-100-10, Adam, batch 64, one epoch of Fashion-MNIST (60,000 images), evaluated on
    the test set after the epoch; members differ in seed and lr (4 values, so 4 param groups).
    A third line times stacks whose 8 members all differ in (lr, weight decay), as lab 8's search
    does (8 param groups), against the same sequential runs.
(b) 8 CNNs of lab 6's laptop size ("CNN 1": conv 8 and 16 channels with pooling, dense 104 and
    128), batch 64. A CNN epoch is expensive on two cores, so this part trains a fixed 200 steps
    (an "epoch" of 12,800 images, `train_size=12800`) and evaluates nothing (`eval_test=False`).

Each repeat uses fresh, empty caches (so everything trains) and new seeds; the two ways run back
to back within a repeat (the stack between the two halves of the sequential runs, so that both
are centred on one moment) and their ratio is paired per repeat; the median of `--repeats` (>= 5)
ratios is reported with its spread. Before timing, both ways run once, untimed, on a few hundred
images (first-call costs are a session's, not a run's). Both ways include what a user pays: spec hashing, training,
evaluation and writing the entries. Data is loaded once beforehand (the in-process data cache),
as in a notebook session.
A last measurement bounds the MLP's ratio: the training step alone (one model, the stack) and the
stack's floor (its matmuls and its Adam step timed alone), per model-step.
Last line: ratio_stacked=<MLP, sequential / stacked> ratio_stacked_cnn=<CNN, sequential / stacked>.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from _common import data_root, print_probe, spread, timed
from dlcourse import runs

LRS = (5e-4, 1e-3, 2e-3, 3e-3)
CNN = dict(model="cnn", channels=(8, 16), dense=(104, 128), pool=True)


def mlp_specs(n: int, repeat: int, decays: bool = False) -> list[runs.RunSpec]:
    return [runs.RunSpec(dataset="fashion-mnist", model="mlp", hidden=(100,), optimizer="adam", batch_size=64,
                         epochs=1, lr=LRS[i % len(LRS)], weight_decay=(5e-4 * (i // len(LRS)) if decays else 0.0),
                         seed=1000 * repeat + i, device="cpu") for i in range(n)]


def cnn_specs(n: int, repeat: int) -> list[runs.RunSpec]:
    return [runs.RunSpec(dataset="fashion-mnist", train_size=200 * 64, eval_test=False, optimizer="adam",
                         batch_size=64, epochs=1, lr=LRS[i % len(LRS)], seed=1000 * repeat + i, device="cpu", **CNN)
            for i in range(n)]


def warm_up(tmp: str, n: int) -> None:
    """Both ways once, untimed, on a few hundred images: a session's first-call costs (thread pool,
    kernel selection, the code fingerprint, the C heap growing to the step's sizes) are paid once
    per session, not per run, by either way. The stack has the timed stack's `n` members: with 2,
    the first timed stack still grew the heap, paging in about 190 fresh pages a step through its
    first epoch (1.5 s of a 4.1 s sweep, against 2.6-3.5 s for the sweeps after it)."""
    for make in (mlp_specs, cnn_specs):
        group = [s.replace(train_size=640) for s in make(n, 0)]
        runs.run(group[0], cache=os.path.join(tmp, "warm"))
        runs.sweep(group, cache=os.path.join(tmp, "warm"), progress=False)


def compare(make, args, tmp: str, tag: str) -> tuple[list, list, list, list, list]:
    """Per repeat: sequential and stacked seconds per model-epoch, their ratio; test accuracies."""
    seq_t, stk_t, ratios, acc_seq, acc_stk = [], [], [], [], []
    for rep in range(args.repeats):
        group = make(args.models, rep + 1)
        cache_a, cache_b = os.path.join(tmp, f"{tag}seq{rep}"), os.path.join(tmp, f"{tag}stk{rep}")
        half = len(group) // 2  # the stack runs between the two halves of the sequential runs, so
        # both ways are centred on one moment (this VM's speed drifts within seconds; see step_probe)
        sa1, first = timed(lambda: [runs.run(s, cache=cache_a) for s in group[:half]])
        sb, df = timed(runs.sweep, group, cache=cache_b, progress=False)
        sa2, second = timed(lambda: [runs.run(s, cache=cache_a) for s in group[half:]])
        sa, results = sa1 + sa2, first + second
        assert not any(r.cached for r in results) and not df["cached"].any()
        assert (df["stack_size"] > 1).all() and len(df.attrs["stacks"]) == 1, df["stack_size"].tolist()
        seq_t.append(sa / len(group))
        stk_t.append(sb / len(group))
        ratios.append(sa / sb)
        acc_seq += [r.metrics.get("test_acc", r.metrics["train_acc"]) for r in results]
        acc_stk += df["test_acc"].tolist() if "test_acc" in df else df["train_acc"].tolist()
        print(f"{tag} repeat {rep}: sequential {sa:.2f}s, stacked {sb:.2f}s, ratio {sa / sb:.2f}x", flush=True)
    return seq_t, stk_t, ratios, acc_seq, acc_stk


def report(tag: str, what: str, seq_t, stk_t, ratios, acc_seq, acc_stk) -> float:
    print(f"{tag}: seconds per model-epoch: sequential {spread(seq_t)}  stacked {spread(stk_t)}")
    print(f"{tag}: ratio median {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}] "
          f"over {len(ratios)} repeats")
    print(f"{tag}: {what} over {len(acc_seq)} models: sequential {statistics.mean(acc_seq):.4f} "
          f"(sd {statistics.stdev(acc_seq):.4f})  stacked {statistics.mean(acc_stk):.4f} "
          f"(sd {statistics.stdev(acc_stk):.4f})  "
          f"diff {100 * (statistics.mean(acc_stk) - statistics.mean(acc_seq)):+.2f} points")
    return statistics.median(ratios)


def step_ceiling(k: int, repeats: int, steps: int = 200) -> dict[str, list[float]]:
    """Microseconds per model-step of the MLP's training step (784-100-10, Adam, batch 64, the
    thread count `train.fit` picks): one model alone, a stack of `k`, and the stack's floor: its
    five batched matmuls alone (into preallocated outputs) plus its Adam step alone, work that no
    way of stacking avoids. `one / floor` bounds what stacking can gain on this machine."""
    from dlcourse import models, optim, stacked, train

    torch.manual_seed(0)
    x, y = torch.randn(k, 64, 784), torch.randint(0, 10, (k, 64))
    one = models.mlp([100])
    stack = stacked.Stack([models.mlp([100]) for _ in range(k)])
    opt_one, opt_stack = optim.make("adam", one.parameters()), optim.make("adam", stack.parameters())
    loss_one, loss_stack = train.loss_fn("ce"), train.loss_fn("ce", members=True)
    w1, w2, xt = torch.randn(k, 100, 784), torch.randn(k, 10, 100), x.transpose(1, 2).contiguous()
    h, out, gh = torch.empty(k, 100, 64), torch.empty(k, 10, 64), torch.empty(k, 100, 64)
    g1, g2 = torch.empty(k, 100, 784), torch.empty(k, 10, 100)

    def step(model, opt, loss):
        for p in model.parameters():
            p.grad = None
        total = loss(model(x[0] if model is one else x), y[0] if model is one else y)
        (total.sum() if model is stack else total).backward()
        opt.step()

    def matmuls():  # forward W1 x, W2 h; backward dW2 = g h^T, dh = W2^T g, dW1 = dh x^T
        torch.bmm(w1, xt, out=h), torch.bmm(w2, h, out=out)
        torch.bmm(out, h.transpose(1, 2), out=g2), torch.bmm(w2.transpose(1, 2), out, out=gh)
        torch.bmm(gh, xt.transpose(1, 2), out=g1)

    ways = {"one": (one, lambda: step(one, opt_one, loss_one), 1),
            "stack": (stack, lambda: step(stack, opt_stack, loss_stack), k),
            "matmuls": (stack, matmuls, k), "adam": (stack, opt_stack.step, k)}
    times = {name: [] for name in ways}
    for _ in range(repeats):
        for name, (model, fn, members) in ways.items():
            with train.step_threads(torch.device("cpu"), list(model.parameters()), 64):
                fn()
                start = time.perf_counter()
                for _ in range(steps):
                    fn()
                times[name].append(1e6 * (time.perf_counter() - start) / steps / members)
    times["floor"] = [m + a for m, a in zip(times["matmuls"], times["adam"])]
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--skip-cnn", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = data_root()
    os.environ["DLCOURSE_DATA"] = str(root)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, data {root}, "
          f"load {os.getloadavg()[0]:.2f}")
    print_probe("start")
    runs.load_data(mlp_specs(1, 0)[0])  # read the data once, as a notebook session would
    runs.load_data(cnn_specs(1, 0)[0])

    with tempfile.TemporaryDirectory() as tmp:
        warm_up(tmp, args.models)
        mlp = compare(mlp_specs, args, tmp, "mlp")
        decayed = []  # lab 8's case: every member its own (lr, weight decay), one param group each
        for rep in range(args.repeats):
            group = mlp_specs(args.models, 100 + rep, decays=True)
            sb, _ = timed(runs.sweep, group, cache=os.path.join(tmp, f"dec{rep}"), progress=False)
            decayed.append(sb / len(group))
        cnn = compare(cnn_specs, args, tmp, "cnn") if not args.skip_cnn else None

        # Cached reruns: the last stacked sweep again (all hits), one hit, and a 20-spec sweep.
        group = mlp_specs(args.models, args.repeats)
        cache_b = os.path.join(tmp, f"mlpstk{args.repeats - 1}")
        hit_t = [timed(runs.sweep, group, cache=cache_b, progress=False)[0] for _ in range(3)]
        single_t = [timed(runs.run, group[0], cache=cache_b)[0] for _ in range(5)]
        big = mlp_specs(20, 99)
        cache_c = os.path.join(tmp, "big")
        t0 = time.perf_counter()
        runs.sweep(big, cache=cache_c, progress=False)
        fill = time.perf_counter() - t0
        big_t = [timed(runs.sweep, big, cache=cache_c, progress=False)[0] for _ in range(3)]

    ceiling = step_ceiling(args.models, args.repeats)
    ratio = report("mlp", "test accuracy", *mlp)
    us = {name: statistics.median(v) for name, v in ceiling.items()}
    print(f"mlp step, microseconds per model-step (median of {args.repeats}): one model {us['one']:.0f}, "
          f"stack of {args.models} {us['stack']:.0f}, the stack's floor {us['floor']:.0f} "
          f"(matmuls {us['matmuls']:.0f} + Adam {us['adam']:.0f}); step ratio {us['one'] / us['stack']:.2f}, "
          f"highest stacking can reach here {us['one'] / us['floor']:.2f}")
    print(f"mlp, 8 distinct (lr, weight decay) settings: stacked {spread(decayed)} per model-epoch, "
          f"ratio to sequential {statistics.median(mlp[0]) / statistics.median(decayed):.2f}")
    ratio_cnn = report("cnn (200 steps)", "train accuracy", *cnn) if cnn else float("nan")
    print(f"cached rerun of the {args.models}-spec sweep: {spread(hit_t)}")
    print(f"single cache hit (run): {spread(single_t)}")
    print(f"20-spec sweep: first (stacked, trains) {fill:.2f}s, fully cached rerun {spread(big_t)}")
    print_probe("end")
    print(f"load {os.getloadavg()[0]:.2f}")
    print(f"ratio_stacked={ratio:.2f} ratio_stacked_cnn={ratio_cnn:.2f}")


if __name__ == "__main__":
    main()
