"""Seconds per CIFAR-10 epoch of paper 1's conv net: lchannel's explicit engine (BP, RBP,
SRBP at E = 1 and E = 4) against the plain PyTorch autograd model of the same network.

The net (paper 1, section 4.3): 3 x (conv 64 channels 5x5 stride 1 "same", tanh; max-pool
3x3 stride 2), dense 1024 tanh, softmax 10, on 3x32x32 inputs; minibatch 128, momentum
0.9, lr 0.01 decaying by 1e-5 per update.  The baseline is what a user would write:
``nn.Conv2d``/``nn.MaxPool2d``/``nn.Linear`` with ``nn.Tanh``, autograd,
``torch.optim.SGD(momentum=0.9)``, cross-entropy and the 1/(1 + decay·t) schedule.

An epoch (391 minibatches of 128 = 50,000 images) takes minutes on a CPU, so each
contender trains ``--steps`` minibatches per round (through ``Trainer.train_epoch`` for
lchannel: index, augment if asked, forward, channel, update, running metrics; the same
indexing for the baseline) and the time is **extrapolated to one epoch** (x 391 /
steps).  Inputs are random images in [0, 1] with random labels: the time of a step does
not depend on the values.  Contenders alternate within each round, and the machine is
shared and noisy, so each contender's time is its **minimum** over rounds; ratios are
against the baseline's minimum.  At E = 4 the ratio is per member (time / 4).

lchannel keeps conv feature maps channels-last (what the CPU's oneDNN kernels compute in;
see ``lchannel.engine.blocks.conv``).  The targets are against the plain baseline above, the
model as users write it; for a fair reading the table also shows the same autograd
model converted to channels-last (``model.to(memory_format=torch.channels_last)`` and
channels-last inputs), ``autograd-cl``, measured in the same rounds.

    python benchmarks/bench_cifar.py                      # 3 rounds x 4 minibatches
    python benchmarks/bench_cifar.py --rounds 5 --steps 8 --augment
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from lchannel.channels import build_channel
from lchannel.data import CIFAR10_ARCHITECTURE, RandomTranslateFlip
from lchannel.data.base import Dataset, one_hot
from lchannel.engine.nets import Network
from lchannel.engine.plasticity import SGD
from lchannel.engine.train import Trainer

SHAPE = (3, 32, 32)
BATCH = 128
EPOCH_STEPS = -(-50000 // BATCH)  # 391 minibatches per CIFAR-10 epoch
LR, DECAY, MOMENTUM = 0.01, 1e-5, 0.9


def baseline_model() -> nn.Sequential:
    """Paper 1's conv net in plain torch.nn (the same shapes as CIFAR10_ARCHITECTURE)."""
    layers: list[nn.Module] = []
    c = 3
    for _ in range(3):
        layers += [nn.Conv2d(c, 64, 5, padding=2), nn.Tanh(), nn.MaxPool2d(3, 2, padding=1)]
        c = 64
    layers += [nn.Flatten(), nn.Linear(64 * 4 * 4, 1024), nn.Tanh(), nn.Linear(1024, 10)]
    return nn.Sequential(*layers)


class Baseline:
    """The autograd training loop users would write."""

    members = 1

    def __init__(self, augment: RandomTranslateFlip | None, device: str, channels_last: bool = False):
        torch.manual_seed(0)
        self.name = "autograd-cl" if channels_last else "autograd"
        self.format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = baseline_model().to(device, memory_format=self.format)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda t: 1.0 / (1.0 + DECAY * t))
        self.loss_fn = nn.CrossEntropyLoss()
        self.augment = augment
        self.g = torch.Generator().manual_seed(0)

    def run(self, data: Dataset) -> float:
        X, y = data.X, data.labels
        t0 = time.perf_counter()
        perm = torch.randperm(len(X), generator=self.g).to(X.device)
        for start in range(0, len(X), BATCH):
            idx = perm[start:start + BATCH]
            xb = X.index_select(0, idx)
            if self.augment is not None:
                xb = self.augment(xb, self.g)
            self.opt.zero_grad(set_to_none=True)
            xb = xb.view(-1, *SHAPE).contiguous(memory_format=self.format)
            loss = self.loss_fn(self.model(xb), y.index_select(0, idx))
            loss.backward()
            self.opt.step()
            self.sched.step()
        _sync(X.device)
        return time.perf_counter() - t0


class Engine:
    """lchannel's explicit engine: E members of the paper's net with one algorithm."""

    def __init__(self, algorithm: str, members: int, augment, device: str):
        self.name = f"{algorithm} E={members}"
        self.members = members
        net = Network(CIFAR10_ARCHITECTURE, input_shape=SHAPE, seeds=list(range(members)), device=device)
        self.trainer = Trainer(net, build_channel(algorithm), SGD(lr=LR, decay=DECAY, momentum=MOMENTUM),
                               batch_size=BATCH, progress=False, augment=augment)

    def run(self, data: Dataset) -> float:
        t0 = time.perf_counter()
        self.trainer.train_epoch(data)
        _sync(data.X.device)
        return time.perf_counter() - t0


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="rounds; each contender's time is its minimum (default: 3)")
    p.add_argument("--steps", type=int, default=4, help="minibatches of 128 per contender and round (default: 4)")
    p.add_argument("--algorithms", default="bp,rbp,srbp", help="comma-separated (default: bp,rbp,srbp)")
    p.add_argument("--members", default="1,4", help="population sizes E (default: 1,4)")
    p.add_argument("--augment", action="store_true", help="with section 4.3's translations and flips")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.steps < 1:
        p.error("--rounds and --steps must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    n = args.steps * BATCH
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (n,), generator=g)
    data = Dataset(torch.rand(n, 3 * 32 * 32, generator=g), one_hot(y, 10), y, "random-images").to(args.device)
    augment = RandomTranslateFlip(SHAPE) if args.augment else None
    contenders = [Baseline(augment, args.device), Baseline(augment, args.device, channels_last=True)]
    for E in (int(e) for e in args.members.split(",")):
        contenders += [Engine(a.strip(), E, augment, args.device) for a in args.algorithms.split(",")]
    for c in contenders:  # warm-up: allocator, kernels, lazy buffers
        c.run(Dataset(data.X[:BATCH], data.T[:BATCH], data.labels[:BATCH]))
    best = {c.name: float("inf") for c in contenders}
    for r in range(args.rounds):
        for c in contenders:
            best[c.name] = min(best[c.name], c.run(data))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v * EPOCH_STEPS / args.steps:.0f}s"
                                                          for k, v in best.items()), flush=True)
    base = best["autograd"]
    print(f"\nCIFAR-10 epoch of paper 1's conv net (batch {BATCH}; {args.steps} minibatches per round "
          f"extrapolated to {EPOCH_STEPS}; min over {args.rounds} rounds; {torch.get_num_threads()} threads, "
          f"{args.device}{', augmented' if args.augment else ''})")
    print(f"{'contender':<14} {'s/epoch':>9} {'s/member-epoch':>15} {'ratio/member':>13}")
    for c in contenders:
        t = best[c.name] * EPOCH_STEPS / args.steps
        print(f"{c.name:<14} {t:9.1f} {t / c.members:15.1f} {best[c.name] / c.members / base:12.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
