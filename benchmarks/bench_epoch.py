"""Seconds per MNIST member-epoch: lchannel's explicit engine against plain PyTorch.

Protocol (paper 1, section 4.1): A[784,100,100,100,100,10], tanh, softmax, minibatch 100,
lr 0.1, decay 1e-6, no momentum, data already in memory.  The baseline is what a user
would write: ``nn.Sequential`` of Linear + Tanh, autograd, ``torch.optim.SGD`` with
cross-entropy and the 1/(1 + decay·t) schedule.

Every contender keeps training the same model across rounds (steady state, as in a real
run).  A round gives each contender the same ``--batches`` minibatches, one after the
other; the machines here drift by 2x within a minute, so each contender's ratio is taken
*per round* against the baseline's time in that round, and the median over rounds is
reported (with the median seconds per member-epoch, scaled to 600 minibatches).

    python benchmarks/bench_epoch.py                          # 15 rounds x 200 minibatches
    python benchmarks/bench_epoch.py --rounds 40 --batches 50
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from lchannel.channels import build_channel
from lchannel.data import load_mnist
from lchannel.data.base import Dataset
from lchannel.engine.nets import Network
from lchannel.engine.plasticity import SGD
from lchannel.engine.train import Trainer

SIZES = [784, 100, 100, 100, 100, 10]
BATCH = 100


class Baseline:
    """The autograd training loop users would write."""

    def __init__(self, seed: int = 0):
        torch.manual_seed(seed)
        layers = []
        for i in range(len(SIZES) - 1):
            layers.append(nn.Linear(SIZES[i], SIZES[i + 1]))
            if i < len(SIZES) - 2:
                layers.append(nn.Tanh())
        self.model = nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda t: 1.0 / (1.0 + 1e-6 * t))
        self.loss_fn = nn.CrossEntropyLoss()

    def run(self, data: Dataset) -> float:
        X, y = data.X, data.labels
        perm = torch.randperm(len(X))
        t0 = time.perf_counter()
        for start in range(0, len(X), BATCH):
            idx = perm[start:start + BATCH]
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(X[idx]), y[idx])
            loss.backward()
            self.opt.step()
            self.sched.step()
        return time.perf_counter() - t0


class MatmulFloor:
    """Only the matrix products of a BP step (forward, backward signals, fused updates),
    same shapes and member layout as lchannel: the bound no explicit engine can beat."""

    def __init__(self, E: int):
        self.E = E
        self.X = torch.rand(E, BATCH, SIZES[0])
        self.Ws = [torch.randn(E, n, m) * 0.05 for m, n in zip(SIZES[:-1], SIZES[1:])]
        self.acts = [self.X] + [torch.rand(E, BATCH, n) for n in SIZES[1:]]

    def run(self, data: Dataset) -> float:
        t0 = time.perf_counter()
        for _ in range(0, len(data), BATCH):
            for h, W in enumerate(self.Ws):
                torch.bmm(self.acts[h], W.transpose(1, 2))
            for h in range(len(self.Ws) - 1, 0, -1):
                torch.bmm(self.acts[h + 1], self.Ws[h])
            for h, W in enumerate(self.Ws):
                W.baddbmm_(self.acts[h + 1].transpose(1, 2), self.acts[h], alpha=1e-9)
        return time.perf_counter() - t0


class Engine:
    """lchannel's Trainer on a population of E members."""

    def __init__(self, algorithm: str, E: int):
        net = Network(SIZES, hidden="tanh", output="softmax", seeds=list(range(E)))
        self.trainer = Trainer(net, build_channel(algorithm), SGD(lr=0.1, decay=1e-6),
                               batch_size=BATCH, progress=False)

    def run(self, data: Dataset) -> float:
        t0 = time.perf_counter()
        self.trainer.train_epoch(data)
        return time.perf_counter() - t0


def _positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {s}")
    return v


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--batches", type=_positive_int, default=200, help="minibatches per contender per round")
    p.add_argument("--rounds", type=_positive_int, default=15)
    p.add_argument("--algorithms", default="bp,rbp,srbp")
    p.add_argument("--members", default="1,8", help="population sizes E, comma-separated")
    args = p.parse_args(argv)
    try:
        Es = [int(e) for e in args.members.split(",")]
        if any(E < 1 for E in Es):
            raise ValueError
    except ValueError:
        p.error(f"--members must be comma-separated integers >= 1, got {args.members!r}")
    algs = args.algorithms.split(",")
    train, _ = load_mnist(args.data_dir)
    if args.batches * BATCH > len(train):
        p.error(f"--batches must be at most {len(train) // BATCH}, got {args.batches}")

    contenders: dict[str, tuple[object, int]] = {"baseline (autograd)": (Baseline(), 1)}
    for E in sorted(set(Es) | {1}):
        contenders[f"matmul floor E={E}"] = (MatmulFloor(E), E)
    for a in algs:
        for E in Es:
            contenders[f"{a} E={E}"] = (Engine(a, E), E)

    n = args.batches * BATCH
    slices = [Dataset(train.X[i:i + n], train.T[i:i + n], train.labels[i:i + n], "mnist")
              for i in range(0, len(train) - n + 1, n)]
    warm = slices[0].subset(20 * BATCH)
    for c, _ in contenders.values():
        c.run(warm)
    seconds: dict[str, list[float]] = {k: [] for k in contenders}
    ratios: dict[str, list[float]] = {k: [] for k in contenders}
    scale = 600 / args.batches  # seconds per full 600-minibatch epoch
    for r in range(args.rounds):
        data = slices[r % len(slices)]  # fresh rows each round, as an epoch reads them
        times = {k: c.run(data) * scale / E for k, (c, E) in contenders.items()}
        base = times["baseline (autograd)"]
        for k, t in times.items():
            seconds[k].append(t)
            ratios[k].append(t / base)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.rounds} rounds x "
          f"{args.batches} minibatches; medians over rounds")
    print(f"{'run':<22}{'s/member-epoch':>16}{'ratio':>9}{'ratio IQR':>16}")
    for k in contenders:
        q = statistics.quantiles(ratios[k], n=4) if len(ratios[k]) > 1 else [ratios[k][0]] * 3
        print(f"{k:<22}{statistics.median(seconds[k]):>16.3f}{statistics.median(ratios[k]):>9.2f}"
              f"{f'{q[0]:.2f}-{q[2]:.2f}':>16}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
