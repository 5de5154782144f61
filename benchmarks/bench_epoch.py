"""Seconds per MNIST member-epoch: lchannel's explicit engine against plain PyTorch.

Protocol (paper 1, section 4.1): A[784,100,100,100,100,10], tanh, softmax, minibatch 100,
lr 0.1, decay 1e-6, no momentum, data already in memory.  The baseline is what a user
would write: ``nn.Sequential`` of Linear + Tanh, autograd, ``torch.optim.SGD`` with
cross-entropy.  Both are timed in the same run, interleaved, and each ratio is
lchannel's time per member-epoch divided by the baseline's time per epoch.

    python benchmarks/bench_epoch.py                 # full MNIST epochs
    python benchmarks/bench_epoch.py --batches 200   # shorter: first 200 minibatches
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from lchannel.channels import build_channel
from lchannel.data import load_mnist
from lchannel.nets import Network
from lchannel.plasticity import SGD
from lchannel.train import Trainer

SIZES = [784, 100, 100, 100, 100, 10]


def baseline_epoch(data, batches: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    layers = []
    for i in range(len(SIZES) - 1):
        layers.append(nn.Linear(SIZES[i], SIZES[i + 1]))
        if i < len(SIZES) - 2:
            layers.append(nn.Tanh())
    model = nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1.0 + 1e-6 * t))
    loss_fn = nn.CrossEntropyLoss()
    X, y = data.X, data.labels
    perm = torch.randperm(len(X))
    t0 = time.perf_counter()
    for i in range(batches):
        idx = perm[i * 100:(i + 1) * 100]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(X[idx]), y[idx])
        loss.backward()
        opt.step()
        sched.step()
    return time.perf_counter() - t0


def matmul_floor_epoch(batches: int, E: int = 1) -> float:
    """Only the matrix products of a BP step (forward, backward signals, fused updates),
    same shapes and member layout as lchannel: the bound no explicit engine can beat."""
    X = torch.rand(E, 100, SIZES[0])
    Ws = [torch.randn(E, n, m) * 0.05 for m, n in zip(SIZES[:-1], SIZES[1:])]
    acts = [X] + [torch.rand(E, 100, n) for n in SIZES[1:]]
    t0 = time.perf_counter()
    for _ in range(batches):
        for h, W in enumerate(Ws):
            torch.bmm(acts[h], W.transpose(1, 2))
        for h in range(len(Ws) - 1, 0, -1):
            torch.bmm(acts[h + 1], Ws[h])
        for h, W in enumerate(Ws):
            W.baddbmm_(acts[h + 1].transpose(1, 2), acts[h], alpha=1e-9)
    return time.perf_counter() - t0


def lchannel_epoch(data, algorithm: str, E: int, batches: int) -> float:
    net = Network(SIZES, hidden="tanh", output="softmax", seeds=list(range(E)))
    trainer = Trainer(net, build_channel(algorithm), SGD(lr=0.1, decay=1e-6), batch_size=100, progress=False)
    sub = data.subset(batches * 100)
    t0 = time.perf_counter()
    trainer.train_epoch(sub)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--batches", type=int, default=600, help="minibatches per timed epoch (600 = all of MNIST)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--algorithms", default="bp,rbp,srbp")
    p.add_argument("--members", default="1,8")
    args = p.parse_args(argv)
    train, _ = load_mnist(args.data_dir)
    scale = 600 / args.batches  # report seconds per full 600-batch epoch
    algs = args.algorithms.split(",")
    Es = [int(e) for e in args.members.split(",")]
    times: dict = {("baseline", 1): [], ("matmul floor", 1): [], ("matmul floor", 8): []}
    for a in algs:
        for E in Es:
            times[(a, E)] = []
    baseline_epoch(train, 20)  # warm-up both paths
    lchannel_epoch(train, "bp", 1, 20)
    for _ in range(args.repeats):  # interleave so machine noise hits everyone alike
        times[("baseline", 1)].append(baseline_epoch(train, args.batches) * scale)
        for E in (1, 8):
            times[("matmul floor", E)].append(matmul_floor_epoch(args.batches, E) * scale / E)
        for a in algs:
            for E in Es:
                times[(a, E)].append(lchannel_epoch(train, a, E, args.batches) * scale / E)
    base = statistics.median(times[("baseline", 1)])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{args.batches} minibatches x {args.repeats} repeats (median), seconds per member-epoch")
    print(f"{'run':<20}{'s/member-epoch':>16}{'ratio':>9}")
    print(f"{'baseline (autograd)':<20}{base:>16.3f}{1.0:>9.2f}")
    for E in (1, 8):
        t = statistics.median(times[("matmul floor", E)])
        print(f"{'matmul floor E=' + str(E):<20}{t:>16.3f}{t / base:>9.2f}")
    for a in algs:
        for E in Es:
            t = statistics.median(times[(a, E)])
            print(f"{a + ' E=' + str(E):<20}{t:>16.3f}{t / base:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
