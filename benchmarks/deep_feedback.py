"""How large the converter's random feedback makes the error in deep nets (issue 27).

For each ``scaling`` of ``lchannel.torch.convert`` (``match``, the default; ``fan_in``;
``distribution``, the papers' Glorot scale) it prints the first layer's gradient norm
relative to BP's, on

- a stack of Conv(32, 3x3)+BatchNorm+ReLU layers (depth 4, 8, 12; 16x16 inputs,
  cross-entropy, 64 random images), and
- a ResNet-18 (torchvision's when it imports, else the same architecture defined here:
  BasicBlocks [2, 2, 2, 2], widths 64-512) on CIFAR-10-sized inputs (32x32, 32 images),

then trains the 12-layer stack and the ResNet-18 with plain SGD (lr 0.01, no momentum) on
the first CIFAR-10 images for ``--steps`` minibatches of 32 under BP, RBP and SRBP at each
scaling, and prints the first and last losses and whether any turned non-finite.  Ratios
are of one run, in the same process (no timing involved).

    OMP_NUM_THREADS=1 LCHANNEL_DATA_DIR=../shared/datasets python benchmarks/deep_feedback.py --steps 40
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import torch
from torch import nn

import lchannel.torch as lct

SCALINGS = ("match", "fan_in", "distribution")


def stack(depth, classes=10):
    torch.manual_seed(0)
    layers, c = [], 3
    for _ in range(depth):
        layers += [nn.Conv2d(c, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU()]
        c = 32
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, classes))


class BasicBlock(nn.Module):
    """torchvision's BasicBlock, written the same way (in-place add and ReLU); also the
    block of tests/test_torch_resnet.py."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


def resnet18(classes=10):
    torch.manual_seed(0)
    try:
        import torchvision
        return torchvision.models.resnet18(num_classes=classes), "torchvision"
    except Exception:  # not installed, or a CUDA build beside the CPU torch
        pass
    layers, cin = [], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    model = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                          nn.MaxPool2d(3, 2, 1), *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes))
    return model, "defined here"


def first_conv(model):
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def first_grad(model, X, Y):
    model.zero_grad()
    nn.functional.cross_entropy(model(X), Y).backward()
    return first_conv(model).weight.grad.norm().item()


def convert(make, name, scaling):
    model = make()
    return model if name == "bp" else lct.convert(model, name, seed=0, scaling=scaling, warn=False)


def cifar(n):
    from lchannel.data import as_images, load_cifar10
    d = Path(os.environ.get("LCHANNEL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    train, _ = load_cifar10(d, download_missing=False, batches=(1,))
    X = as_images(train.X[:n])
    X = (X - X.mean((0, 2, 3), keepdim=True)) / X.std((0, 2, 3), keepdim=True)
    return X, train.labels[:n]


def train(model, X, Y, steps, lr=0.01, batch=32):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for s in range(steps):
        i = (s * batch) % len(X)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(X[i:i + batch]), Y[i:i + batch])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=40, help="SGD steps per run (default 40)")
    p.add_argument("--no-resnet", action="store_true", help="skip the ResNet-18 (the slow part on a CPU)")
    args = p.parse_args()
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(64, 3, 16, 16, generator=g), torch.randint(0, 10, (64,), generator=g)
    print("first layer's gradient norm / BP's, conv stack (16x16, 64 images)")
    print(f"{'depth':>5} {'algorithm':>9} " + " ".join(f"{s:>12}" for s in SCALINGS))
    for depth in (4, 8, 12):
        bp = first_grad(stack(depth), X, Y)
        for name in ("rbp", "srbp"):
            r = [first_grad(convert(lambda: stack(depth), name, s), X, Y) / bp for s in SCALINGS]
            print(f"{depth:>5} {name:>9} " + " ".join(f"{v:>12.3g}" for v in r))
    nets = [("12-layer stack", lambda: stack(12))]
    if not args.no_resnet:
        model, origin = resnet18()
        print(f"\nResNet-18 ({origin}), 32x32 inputs, 32 images")
        X32, Y32 = torch.randn(32, 3, 32, 32, generator=g), torch.randint(0, 10, (32,), generator=g)
        bp = first_grad(model, X32, Y32)
        for name in ("rbp", "srbp"):
            r = [first_grad(convert(lambda: resnet18()[0], name, s), X32, Y32) / bp for s in SCALINGS]
            print(f"{'':>5} {name:>9} " + " ".join(f"{v:>12.3g}" for v in r))
        nets.append(("ResNet-18", lambda: resnet18()[0]))
    Xc, Yc = cifar(args.steps * 32)
    print(f"\nplain SGD, lr 0.01, {args.steps} steps of 32 CIFAR-10 images: first -> last loss (mean of 5)")
    for title, make in nets:
        Xin = Xc if title == "ResNet-18" else nn.functional.avg_pool2d(Xc, 2)  # the stack takes 16x16
        for name, scaling in (("bp", "-"), *((n, s) for n in ("rbp", "srbp") for s in SCALINGS)):
            losses = train(convert(make, name, scaling), Xin, Yc, args.steps)
            finite = all(math.isfinite(v) for v in losses)
            first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
            print(f"{title:>15} {name:>5} {scaling:>12}  {first:8.3f} -> {last:8.3f}  {'' if finite else 'DIVERGED'}")


if __name__ == "__main__":
    main()
