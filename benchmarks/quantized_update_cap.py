"""Why Figure 8's quantized updates lose 1.2-2.7 points at any number of bits (issue 26).

Paper 1, section 5.2, quantizes each example's update I_b O_bᵀ with eq. 19 (α = 2⁻⁶; our
reading: η outside, a zero level, the minibatch mean; docs/channels.md, "Which reading").
Eq. 19 does three things to a term x: it caps |x| at the largest level α, rounds what is
below to a power of two α 2ᵏ, and (with the zero level) sends what is below the lowest
level α 2^{1/2−bits} to 0.  This script separates them, for each algorithm, one seed:

1. trains ``lchannel train`` runs that differ only in the quantizer (float; 10 bits at
   α = 2⁻⁶, the figure's cell; 16 bits at α = 2⁻⁶, the same cap with a floor 2⁶ lower;
   16 bits at α = 1, the cell's floor α 2⁻¹⁵ with no cap in effect) and prints their test
   accuracy by epoch;
2. keeps the per-example signals I_b and inputs O_b that the library's own update (eq. 13
   under eq. 19) receives in the last ten minibatches of the 10-bit and the α = 1 runs, and
   compares the quantized minibatch update (1, 2, 5, 10 bits at α = 2⁻⁶; 16 bits at α = 1)
   with the float one, (1/B) Σ_b I_b O_bᵀ, per layer: cosine, norm ratio, and the share of
   the non-zero per-example terms above α = 2⁻⁶ (those the cap changes).

    OMP_NUM_THREADS=1 LCHANNEL_DATA_DIR=../shared/datasets python benchmarks/quantized_update_cap.py

The runs go to ``--out`` (default runs/quantized-update-cap) and resume there; each
quantized run's probe is kept beside it (``probe.json``).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import deque
from pathlib import Path

import torch

from lchannel import cli
from lchannel.engine.quantize import Quantizer
from lchannel.engine.quantize_levels import quantize

FIGURE8_ALPHA = 2.0 ** -6


def label(bits: int, alpha: float) -> str:
    return f"{bits} bit{'s' * (bits > 1)}, alpha " + ("2^-6" if alpha == FIGURE8_ALPHA else f"{alpha:g}")


# (name, update_bits, update_alpha); None bits: the float run
RUNS = [("float", None, None)] + [(label(b, a), b, a) for b, a in ((10, FIGURE8_ALPHA), (16, FIGURE8_ALPHA), (16, 1.0))]
PROBED = (label(10, FIGURE8_ALPHA), label(16, 1.0))
PROBES = [(1, FIGURE8_ALPHA), (2, FIGURE8_ALPHA), (5, FIGURE8_ALPHA), (10, FIGURE8_ALPHA), (16, 1.0)]
KEPT_STEPS = 10


class Spy:
    """Keeps the ``(I, O)`` of the last calls of :meth:`Quantizer.outer_direction`, the
    per-example weight update's factors of every dense layer (one call per layer a step)."""

    def __init__(self, keep: int):
        self.calls: deque = deque(maxlen=keep)
        self.original = Quantizer.outer_direction

    def __enter__(self):
        spy = self

        def outer_direction(quantizer, I, O, lr):
            spy.calls.append((I[0].detach().double().clone(), O[0].detach().double().clone()))
            return spy.original(quantizer, I, O, lr)

        Quantizer.outer_direction = outer_direction
        return self

    def __exit__(self, *exc):
        Quantizer.outer_direction = self.original


def train(out: Path, algorithm: str, bits, alpha, epochs: int, seed: int) -> Path:
    """One run at Figure 8's settings (lr 0.1, no decay, no momentum, batch 100); a
    quantized run in ``PROBED`` trained here also writes its ``probe.json``."""
    folder = out / algorithm / ("float" if bits is None else f"bits{bits}-alpha{alpha:g}")
    cmd = ["train", "--algorithm", algorithm, "--lr", "0.1", "--decay", "0", "--momentum", "0",
           "--batch-size", "100", "--epochs", str(epochs), "--seeds", str(seed), "--out", str(folder), "--quiet"]
    if bits is not None:
        cmd += ["--update-bits", str(bits), "--update-alpha", repr(alpha), "--update-lr", "outside",
                "--update-below", "zero", "--update-reduce", "mean"]
    with Spy(keep=5 * KEPT_STEPS) as spy:  # five dense layers, one call each per step
        if cli.main(cmd) != 0:
            raise SystemExit(f"lchannel {' '.join(cmd)} failed")
    if bits is not None and spy.calls:
        (folder / "probe.json").write_text(json.dumps(probe(list(spy.calls))))
    return folder


def probe(calls) -> dict:
    """Per layer (input layer first), the mean over the kept steps of each probe's cosine
    and norm ratio against the float update, and the share of non-zero terms above α."""
    per_step = len(calls) // KEPT_STEPS  # one call per layer a step, in the engine's order
    by_layer = [calls[j::per_step] for j in range(per_step)]
    if by_layer[0][0][1].shape[1] < by_layer[-1][0][1].shape[1]:
        by_layer.reverse()  # the engine updates top-down: put the input layer (widest O) first
    result = {"cosine": {}, "norm_ratio": {}, "above_alpha": []}
    for steps in by_layer:
        above, cos, ratio = 0.0, {p: 0.0 for p in PROBES}, {p: 0.0 for p in PROBES}
        for I, O in steps:
            u = I[:, :, None] * O[:, None, :]  # I_b O_bᵀ, (B, N_h, N_{h-1})
            exact = u.mean(0)
            nonzero = u != 0
            capped = ((u.abs() > FIGURE8_ALPHA) & nonzero).sum().item()
            above += capped / max(nonzero.sum().item(), 1) / len(steps)
            for bits, alpha in PROBES:
                q = quantize(u, alpha, bits, zero=True).mean(0)
                cosine = torch.nn.functional.cosine_similarity(q.flatten(), exact.flatten(), 0)
                cos[(bits, alpha)] += cosine.item() / len(steps)
                ratio[(bits, alpha)] += (q.norm() / exact.norm()).item() / len(steps)
        result["above_alpha"].append(above)
        for p in PROBES:
            result["cosine"].setdefault(label(*p), []).append(cos[p])
            result["norm_ratio"].setdefault(label(*p), []).append(ratio[p])
    return result


def test_accuracy(folder: Path) -> list[float]:
    with open(folder / "metrics.csv") as f:
        return [100 * float(r["test_acc"]) for r in csv.DictReader(f)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--algorithms", nargs="+", default=["bp", "rbp", "srbp"])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/quantized-update-cap")
    args = ap.parse_args(argv)
    out = Path(args.out)
    folders = {(a, name): train(out, a, bits, alpha, args.epochs, args.seed)
               for a in args.algorithms for name, bits, alpha in RUNS}

    print(f"\nseed {args.seed}, test accuracy (%) by epoch (Figure 8's settings, eq. 19 outside/zero/mean)")
    print(f"{'run':<28}" + "".join(f"{e:>8}" for e in range(1, args.epochs + 1)))
    for (a, name), folder in folders.items():
        print(f"{a.upper() + ', ' + name:<28}" + "".join(f"{v:8.2f}" for v in test_accuracy(folder)))

    for (a, name), folder in folders.items():
        if name not in PROBED:
            continue
        if not (folder / "probe.json").is_file():
            print(f"\n{a.upper()}, {name}: no probe.json (trained before this script kept one); "
                  f"rerun with --out pointing elsewhere to train and probe it")
            continue
        p = json.loads((folder / "probe.json").read_text())
        print(f"\n{a.upper()}, trained with {name} ({args.epochs} epochs), its last {KEPT_STEPS} minibatches: "
              f"quantized update against the float one, per layer (input layer first)")
        print("share of non-zero per-example terms above alpha 2^-6: " + " ".join(f"{v:.3f}" for v in p["above_alpha"]))
        print(f"{'quantizer':<22}{'cosine':<36}norm ratio")
        for key in p["cosine"]:
            print(f"{key:<22}" + " ".join(f"{c:.3f}" for c in p["cosine"][key])
                  + "     " + " ".join(f"{r:.3f}" for r in p["norm_ratio"][key]))


if __name__ == "__main__":
    main()
