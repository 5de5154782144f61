"""Why Figure 8's quantized updates lose 1.2-2.7 points at any number of bits (issue 26).

Paper 1, section 5.2, quantizes each example's update I_b O_bᵀ with eq. 19 (α = 2⁻⁶; our
reading: η outside, a zero level, the minibatch mean; docs/channels.md, "Which reading").
Eq. 19 does three things to a term x: it caps |x| at the largest level α, rounds what is
below to a power of two α 2ᵏ, and (with the zero level) sends what is below the lowest
level α 2^{1/2−bits} to 0.  This script separates them on BP, one seed:

1. trains ``lchannel train`` runs that differ only in the quantizer (float; 10 bits at
   α = 2⁻⁶, the figure's cell; 16 bits at α = 2⁻⁶, the same cap with a floor 2⁶ lower;
   16 bits at α = 1, the cell's floor α 2⁻¹⁵ with no cap in effect) and prints their test
   accuracy by epoch;
2. on each trained net, compares the quantized minibatch update (1, 2, 5, 10 bits at
   α = 2⁻⁶, 16 bits at α = 1) with the float one: cosine and norm ratio per layer, the mean
   over ten minibatches of 100 training images.  The float update is checked against
   autograd's gradient of the mean cross-entropy first.

    OMP_NUM_THREADS=1 LCHANNEL_DATA_DIR=../shared/datasets python benchmarks/quantized_update_cap.py

The runs go to ``--out`` (default runs/quantized-update-cap) and resume there.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from lchannel import cli
from lchannel.data.mnist import load_mnist
from lchannel.engine.quantize_levels import quantize

FIGURE8_ALPHA = 2.0 ** -6
# (name, update_bits, update_alpha); None bits: the float run
RUNS = [("float", None, None), ("10 bits, alpha 2^-6", 10, FIGURE8_ALPHA),
        ("16 bits, alpha 2^-6", 16, FIGURE8_ALPHA), ("16 bits, alpha 1", 16, 1.0)]
PROBES = [(1, FIGURE8_ALPHA), (2, FIGURE8_ALPHA), (5, FIGURE8_ALPHA), (10, FIGURE8_ALPHA), (16, 1.0)]


def train(out: Path, bits, alpha, epochs: int, seed: int) -> Path:
    """One BP run at Figure 8's settings (lr 0.1, no decay, no momentum, batch 100)."""
    folder = out / ("float" if bits is None else f"bits{bits}-alpha{alpha:g}")
    cmd = ["train", "--algorithm", "bp", "--lr", "0.1", "--decay", "0",
           "--momentum", "0", "--batch-size", "100", "--epochs", str(epochs), "--seeds", str(seed),
           "--out", str(folder), "--quiet"]
    if bits is not None:
        cmd += ["--update-bits", str(bits), "--update-alpha", repr(alpha), "--update-lr", "outside",
                "--update-below", "zero", "--update-reduce", "mean"]
    if cli.main(cmd) != 0:
        raise SystemExit(f"lchannel {' '.join(cmd)} failed")
    return folder


def test_accuracy(folder: Path) -> list[float]:
    with open(folder / "metrics.csv") as f:
        return [100 * float(r["test_acc"]) for r in csv.DictReader(f)]


def per_example_updates(params, x, t):
    """I_b O_bᵀ of every layer for each example (eq. 19's input), by hand: δ^L = T − O
    (softmax + cross-entropy), δ^h = (W^{h+1})ᵀ δ^{h+1} ⊙ f'(S^h), tanh hidden units."""
    outs, pre = [x], []
    for i, (W, b) in enumerate(params):
        a = outs[-1] @ W.T + b
        pre.append(a)
        outs.append(torch.tanh(a) if i < len(params) - 1 else torch.softmax(a, 1))
    d = [None] * len(params)
    d[-1] = t - outs[-1]
    for i in range(len(params) - 2, -1, -1):
        d[i] = (d[i + 1] @ params[i + 1][0]) * (1 - torch.tanh(pre[i]) ** 2)
    return [d[i][:, :, None] * outs[i][:, None, :] for i in range(len(params))]


def check_against_autograd(params, x, t) -> None:
    """The float mean update must be −∂(mean cross-entropy)/∂W (independent truth)."""
    Ws = [W.clone().requires_grad_() for W, _ in params]
    h = x
    for i, W in enumerate(Ws):
        h = h @ W.T + params[i][1]
        h = torch.tanh(h) if i < len(Ws) - 1 else h
    loss = torch.nn.functional.cross_entropy(h, t.argmax(1))
    grads = torch.autograd.grad(loss, Ws)
    for g, u in zip(grads, per_example_updates(params, x, t)):
        torch.testing.assert_close(-g, u.mean(0), rtol=1e-9, atol=1e-12)


def probe(folder: Path, X, T):
    net = torch.load(folder / "checkpoint.pt", weights_only=False)["net"]
    n = sum(1 for k in net if k.endswith(".weight"))
    params = [(net[f"blocks.{i}.weight"][0].double(), net[f"blocks.{i}.bias"][0].double()) for i in range(n)]
    check_against_autograd(params, X[:100], T[:100])
    cos = {p: torch.zeros(n) for p in PROBES}
    ratio = {p: torch.zeros(n) for p in PROBES}
    batches = len(X) // 100
    for b in range(batches):
        per = per_example_updates(params, X[b * 100:(b + 1) * 100], T[b * 100:(b + 1) * 100])
        for i, u in enumerate(per):
            exact = u.mean(0)
            for bits, alpha in PROBES:
                q = quantize(u, alpha, bits, zero=True).mean(0)
                cosine = torch.nn.functional.cosine_similarity(q.flatten(), exact.flatten(), 0)
                cos[(bits, alpha)][i] += cosine / batches
                ratio[(bits, alpha)][i] += q.norm() / exact.norm() / batches
    return cos, ratio


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/quantized-update-cap")
    args = ap.parse_args(argv)
    out = Path(args.out)
    folders = {name: train(out, bits, alpha, args.epochs, args.seed) for name, bits, alpha in RUNS}

    print(f"\nBP, seed {args.seed}, test accuracy (%) by epoch (Figure 8's settings, eq. 19 outside/zero/mean)")
    print(f"{'run':<22}" + "".join(f"{e:>8}" for e in range(1, args.epochs + 1)))
    for name in folders:
        print(f"{name:<22}" + "".join(f"{a:8.2f}" for a in test_accuracy(folders[name])))

    train_set, _ = load_mnist()
    idx = torch.randperm(len(train_set.X), generator=torch.Generator().manual_seed(0))[:1000]
    X, T = train_set.X[idx].double(), train_set.T[idx].double()
    for name in ("10 bits, alpha 2^-6", "16 bits, alpha 1"):
        cos, ratio = probe(folders[name], X, T)
        print(f"\non the net trained with {name} ({args.epochs} epochs): quantized minibatch update against "
              f"the float one, per layer (1 = input layer), mean of 10 minibatches of 100")
        print(f"{'quantizer':<22}{'cosine':<40}norm ratio")
        for bits, alpha in PROBES:
            label = f"{bits} bit{'s' * (bits > 1)}, alpha " + ("2^-6" if alpha == FIGURE8_ALPHA else f"{alpha:g}")
            print(f"{label:<22}" + " ".join(f"{c:.3f}" for c in cos[(bits, alpha)])
                  + "      " + " ".join(f"{r:.3f}" for r in ratio[(bits, alpha)]))


if __name__ == "__main__":
    main()
