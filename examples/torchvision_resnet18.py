"""A worked example: torchvision's ResNet-18 learning CIFAR-10 through lchannel's converter.

For each algorithm (``bp``, ``rbp`` = FA, ``srbp`` = DFA by default) the script converts a
fresh ``torchvision.models.resnet18(num_classes=10)`` (the same initial weights for every
algorithm), trains it with plain SGD (lr 0.01, momentum 0.9, minibatches of 64) on the
first ``--train`` CIFAR-10 training images for ``--steps`` steps, and prints:

- ``grad ratio``: the first conv layer's weight-gradient norm on the first batch, relative
  to the first algorithm listed (BP by default; docs/your-own-model.md has the figures);
- ``step``: the median seconds of a training step, and its ratio to BP's (autograd's);
- the training loss of the last 20 steps and the test accuracy on ``--test`` test images.

``--direct-maps`` sets ``convert(direct_maps=...)`` for srbp (default ``auto``: kernel-shaped
maps at conv layers; ``dense`` trains this net faster, measured in the docs).

Install torchvision's CPU build beside ``torch==2.13.0`` (docs/your-own-model.md)::

    pip install --no-deps torchvision==0.28.0 --index-url https://download.pytorch.org/whl/cpu
    OMP_NUM_THREADS=1 LCHANNEL_DATA_DIR=../shared/datasets python examples/torchvision_resnet18.py

``--model-code-only`` imports torchvision's model definitions without its compiled
operators, for a machine whose only torchvision wheel is the CUDA one (it fails at import
with "operator torchvision::nms does not exist" beside the CPU torch); ResNet-18 uses none
of those operators.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import types

import torch
from torch import nn

import lchannel.torch as lct
from lchannel.data import load_cifar10


def import_torchvision(model_code_only: bool):
    if model_code_only:
        import importlib.util

        spec = importlib.util.find_spec("torchvision")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("--model-code-only: torchvision is not installed")
        pkg = types.ModuleType("torchvision")  # skip torchvision/__init__ (it loads the compiled operators)
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["torchvision"] = pkg
    import torchvision.models

    return torchvision.models


def cifar(n_train: int, n_test: int):
    train, test = load_cifar10(download_missing=True)
    mean = train.X.mean(0)
    std = train.X.std(0)

    def images(X):
        return ((X - mean) / std).reshape(-1, 3, 32, 32)

    return images(train.X[:n_train]), train.labels[:n_train], images(test.X[:n_test]), test.labels[:n_test]


def first_conv_grad(model, x, y) -> float:
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    g = model.conv1.weight.grad.norm().item()
    model.zero_grad()
    return g


def run(name: str, base: nn.Module, data, steps: int, seed: int, **options) -> dict:
    X, y, Xt, yt = data
    model = copy.deepcopy(base) if name == "bp" else lct.convert(copy.deepcopy(base), name, seed=seed, warn=False,
                                                                 **options)
    model.train()
    g = torch.Generator().manual_seed(seed)
    grad = first_conv_grad(model, X[:64], y[:64])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times, losses = [], []
    for step in range(steps):
        idx = torch.randint(0, len(X), (64,), generator=g)
        t = time.perf_counter()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        correct = sum((model(Xt[i:i + 500]).argmax(1) == yt[i:i + 500]).sum().item() for i in range(0, len(Xt), 500))
    return {"grad": grad, "step": statistics.median(times[1:]), "loss": statistics.mean(losses[-20:]),
            "acc": 100.0 * correct / len(Xt), "finite": all(torch.isfinite(torch.tensor(losses)))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algorithms", default="bp,rbp,srbp", help="converter names (default: bp,rbp,srbp)")
    p.add_argument("--steps", type=int, default=200, help="SGD steps per algorithm (default: 200)")
    p.add_argument("--train", type=int, default=10000, help="training images used (default: 10000)")
    p.add_argument("--test", type=int, default=2000, help="test images (default: 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--direct-maps", default="auto", help="convert()'s direct_maps for srbp (default: auto)")
    p.add_argument("--model-code-only", action="store_true", help="see the module doc (default: off)")
    args = p.parse_args()
    if args.steps < 2 or args.train < 64 or args.test < 1:
        p.error("--steps must be >= 2, --train >= 64, --test >= 1")
    models = import_torchvision(args.model_code_only)
    torch.manual_seed(args.seed)
    base = models.resnet18(num_classes=10)
    data = cifar(args.train, args.test)
    print(f"torchvision ResNet-18, CIFAR-10 ({args.train} train / {args.test} test images), SGD lr 0.01 momentum "
          f"0.9, batch 64, {args.steps} steps, seed {args.seed}, direct_maps {args.direct_maps}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'algorithm':>9} {'grad ratio':>10} {'step s':>7} {'x BP':>5} {'loss (last 20)':>14} {'test %':>7}")
    bp = None
    for name in args.algorithms.split(","):
        r = run(name, base, data, args.steps, args.seed, direct_maps=args.direct_maps)
        bp = bp or r
        print(f"{name:>9} {r['grad'] / bp['grad']:>10.2f} {r['step']:>7.3f} {r['step'] / bp['step']:>5.2f} "
              f"{r['loss']:>14.3f} {r['acc']:>7.2f}{'' if r['finite'] else '  (non-finite loss)'}", flush=True)


if __name__ == "__main__":
    main()
