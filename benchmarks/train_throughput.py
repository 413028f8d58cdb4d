"""One Fashion-MNIST epoch of an MLP 784-100-10 with Adam: the canonical loop against dlcourse.

(a) the loop of pytorch/examples' mnist: torchvision dataset with ToTensor and Normalize, a
    shuffling DataLoader, per-batch zero_grad / backward / step, test loader of 1000;
(b) dlcourse: data as one tensor on the device, index-slice batches, fused Adam.
Each configuration runs `--repeats` times, (a) and (b) back to back; ratios are paired per
repeat and summarized by their median. Last line: ratio_b64=.. ratio_b1000=.. ratio_b10=.. ratio_eval=..
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets, transforms

from _common import data_root, print_probe, spread, timed
from dlcourse import data as dl_data
from dlcourse import models, train

MEAN, STD = dl_data.DATASETS["fashion-mnist"].mean, dl_data.DATASETS["fashion-mnist"].std


def canonical_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))


def canonical_epoch(model, loader, opt) -> None:
    model.train()
    for x, y in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()


def canonical_eval(model, loader) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(loader.dataset)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 1000, 10])
    args = ap.parse_args()
    root = data_root()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, data {root}")
    print_probe("start")

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    train_set = datasets.FashionMNIST(root, train=True, download=False, transform=tf)
    test_set = datasets.FashionMNIST(root, train=False, download=False, transform=tf)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=1000)
    ds = dl_data.load("fashion-mnist", root, device="cpu")

    ratios: dict[str, float] = {}
    for bs in args.batch_sizes:
        ta, tb, ra, acc_a, acc_b = [], [], [], [], []
        for rep in range(args.repeats):
            torch.manual_seed(rep)
            ma = canonical_model()
            opt = torch.optim.Adam(ma.parameters(), lr=1e-3)
            loader = torch.utils.data.DataLoader(train_set, batch_size=bs, shuffle=True)
            sa, _ = timed(canonical_epoch, ma, loader, opt)
            torch.manual_seed(rep)
            mb = models.mlp([100])
            sb, _ = timed(train.fit, mb, ds.train, epochs=1, batch_size=bs, optimizer="adam", lr=1e-3,
                          seed=rep, device="cpu", progress=False)
            ta.append(sa)
            tb.append(sb)
            ra.append(sa / sb)
            acc_a.append(canonical_eval(ma, test_loader))
            acc_b.append(train.evaluate(mb, ds.test)[1])
        ratios[f"b{bs}"] = statistics.median(ra)
        print(f"batch {bs:5d}: canonical {spread(ta)}  dlcourse {spread(tb)}  ratio {ratios[f'b{bs}']:.2f}x  "
              f"test acc canonical {statistics.mean(acc_a):.4f} dlcourse {statistics.mean(acc_b):.4f} "
              f"(diff {100 * (statistics.mean(acc_b) - statistics.mean(acc_a)):+.2f} points)")

    torch.manual_seed(0)
    model = models.mlp([100])
    ea, eb, re = [], [], []
    for _ in range(max(args.repeats, 5)):
        sa, acc_a = timed(canonical_eval, model, test_loader)
        sb, (_, acc_b) = timed(train.evaluate, model, ds.test)
        assert abs(acc_a - acc_b) < 1e-9, (acc_a, acc_b)
        ea.append(sa)
        eb.append(sb)
        re.append(sa / sb)
    ratios["eval"] = statistics.median(re)
    print(f"eval 10k  : canonical {spread(ea)}  dlcourse {spread(eb)}  ratio {ratios['eval']:.1f}x")
    print_probe("end")
    print(" ".join(f"ratio_{k}={v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
