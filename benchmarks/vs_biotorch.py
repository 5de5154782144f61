"""lchannel's converter against biotorch on the same conv net, seeds and data (issue 27).

A small conv net (Conv(1,32,5)-ReLU-MaxPool-Conv(32,64,5)-ReLU-MaxPool-Linear(1024,128)-
ReLU-Linear(128,10)) learns MNIST with Adam (lr 1e-3, minibatches of 128, the same order
for every run of a seed) under each algorithm both libraries have, by the names users know:
bp, fa (our rbp), dfa (our srbp), usf, brsf, frsf.  For each it prints the test accuracy
after epoch 1 and after ``--epochs``, lchannel (the converter's defaults, ``scaling="match"``)
beside biotorch (``BioModule(model, mode=...)`` with its defaults), from the same
initial weights.

``--same-feedback`` (fa, dfa) gives our converted model biotorch's own drawn feedback
(its ``weight_backward``; DFA with ``direct_maps="kernel"``, biotorch's map for
convolutions) so that the two libraries run the same algorithm on the same numbers: what
is left between them is the order of floating-point sums.

biotorch is not a dependency: the script imports it, or installs its source distribution
with ``pip install --no-deps --target`` into a cache folder (``--biotorch-dir``, default
``~/.cache/lchannel/biotorch``), or, offline without it, runs lchannel alone and says so.

    OMP_NUM_THREADS=1 LCHANNEL_DATA_DIR=../shared/datasets python benchmarks/vs_biotorch.py --epochs 5
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

import lchannel.torch as lct
from lchannel.torch.direct import kernel_map

PAIRS = {"bp": "backpropagation", "fa": "fa", "dfa": "dfa", "usf": "usf", "brsf": "brsf", "frsf": "frsf"}


def net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 10))


def biotorch(folder: Path):
    try:
        import biotorch.module.biomodule as bm
        return bm
    except ImportError:
        pass
    if not (folder / "biotorch").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(folder),
                            "biotorch"], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"biotorch could not be installed ({r.stderr.strip().splitlines()[-1:]}); lchannel alone")
            return None
    sys.path.insert(0, str(folder))
    import biotorch.module.biomodule as bm
    return bm


def mnist():
    from lchannel.data import load_mnist
    d = Path(os.environ.get("LCHANNEL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    train, test = load_mnist(d, download_missing=False)
    shape = (-1, 1, 28, 28)
    mean, std = train.X.mean(), train.X.std()
    return ((train.X.reshape(shape) - mean) / std, train.labels, (test.X.reshape(shape) - mean) / std, test.labels)


def accuracy(model, X, y):
    model.eval()
    with torch.no_grad():
        acc = sum((model(X[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item() for i in range(0, len(X), 1000))
    model.train()
    return 100.0 * acc / len(X)


def train(model, data, epochs, seed, step):
    X, y, Xt, yt = data
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            step(model, X[idx], y[idx])
            opt.step()
        out.append(accuracy(model, Xt, yt))
    return out


def share_feedback(ours, bio, name, x):
    """Copy biotorch's drawn feedback into our converted model (``--same-feedback``): FA's
    B of each layer; DFA's map of each receiving layer (a conv's kernel K through
    :func:`kernel_map`, a Linear's B transposed to our (inputs × outputs) C_p)."""
    mine = [m for m in ours.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    theirs = [m for m in bio.modules() if hasattr(m, "weight_backward")]
    shapes = {}

    def keep(module, args):  # returns None: the input passes unchanged
        shapes[module] = args[0].shape

    hooks = [m.register_forward_pre_hook(keep) for m in mine]
    with torch.no_grad():
        ours(x)
        for h in hooks:
            h.remove()
        for a, b in zip(mine, theirs, strict=True):
            if name == "fa":
                a.feedback.copy_(b.weight_backward)
            elif "skip_kernel" in a._buffers:
                a.skip_kernel.copy_(b.weight_backward)
                a.skip_feedback.copy_(kernel_map(a, a.skip_kernel, shapes[a]))
            elif "skip_feedback" in a._buffers:
                a.skip_feedback.copy_(b.weight_backward.t())


def ours_step(model, x, y):
    nn.functional.cross_entropy(model(x), y).backward()


def bio_step(model, x, y):
    if model.mode == "dfa":
        out = model(x, targets=y, loss_function=nn.functional.cross_entropy)
    else:
        out = model(x)
    nn.functional.cross_entropy(out, y).backward()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seeds", default="0", help="comma-separated (default 0)")
    p.add_argument("--algorithms", default=",".join(PAIRS), help=f"among {list(PAIRS)}")
    p.add_argument("--subset", type=int, help="train on the first N images (default: all 60,000)")
    p.add_argument("--feedback", help="lchannel's feedback distribution (default: the converter's)")
    p.add_argument("--scaling", help="lchannel's feedback scaling (default: the converter's)")
    p.add_argument("--direct-maps", help="lchannel's direct_maps for dfa (default: the converter's)")
    p.add_argument("--same-feedback", action="store_true",
                   help="fa, dfa: train ours with biotorch's drawn feedback (DFA with direct_maps='kernel')")
    p.add_argument("--lchannel-only", action="store_true", help="skip biotorch (e.g. to try lchannel's options)")
    p.add_argument("--biotorch-dir", default=str(Path.home() / ".cache" / "lchannel" / "biotorch"))
    args = p.parse_args()
    algos = args.algorithms.split(",")
    bad = [a for a in algos if a not in PAIRS]
    if bad:
        raise SystemExit(f"--algorithms: {bad} not among {list(PAIRS)}")
    if args.same_feedback and (args.lchannel_only or set(algos) - {"fa", "dfa"}):
        raise SystemExit("--same-feedback: biotorch's feedback is shared for --algorithms fa and dfa only, "
                         "and needs biotorch (not --lchannel-only)")
    if args.same_feedback and (args.feedback or args.scaling or args.direct_maps):
        raise SystemExit("--same-feedback sets the feedback itself: leave out --feedback, --scaling and --direct-maps")
    bm = None if args.lchannel_only else biotorch(Path(args.biotorch_dir))
    if args.same_feedback and bm is None:
        raise SystemExit("--same-feedback: biotorch is not available")
    X, y, Xt, yt = mnist()
    if args.subset:
        X, y = X[:args.subset], y[:args.subset]
    data = (X, y, Xt, yt)
    print(f"MNIST{'' if not args.subset else f' (first {args.subset})'}, Adam 1e-3, batch 128; test accuracy % "
          f"after epoch 1 and {args.epochs}")
    ours_label = "lchannel" + (" (bt's feedback)" if args.same_feedback else "")
    print(f"{'algorithm':>9} {'seed':>4}  {ours_label:>17}  {'biotorch':>17}")
    for name in algos:
        for seed in (int(s) for s in args.seeds.split(",")):
            base = net(seed)
            kw = {k: v for k, v in (("feedback", args.feedback), ("scaling", args.scaling),
                                    ("direct_maps", args.direct_maps)) if v}
            if args.same_feedback:  # the size is biotorch's: no calibration
                kw = {"scaling": "distribution", **({"direct_maps": "kernel"} if name == "dfa" else {})}
            ours = base if name == "bp" else lct.convert(copy.deepcopy(base), name, seed=seed, warn=False,
                                                         example_input=X[:2], **kw)
            bio = None
            if bm is not None:
                torch.manual_seed(seed)
                bio_kw = {"output_dim": 10} if name == "dfa" else {}
                bio = bm.BioModule(copy.deepcopy(base), mode=PAIRS[name], **bio_kw)
            if args.same_feedback:
                share_feedback(ours, bio, name, X[:2])
            a = train(ours if name != "bp" else copy.deepcopy(base), data, args.epochs, seed, ours_step)
            b = None if bio is None else train(bio, data, args.epochs, seed, bio_step)
            fmt = lambda r: f"{r[0]:6.2f} -> {r[-1]:6.2f}" if r else "-"  # noqa: E731
            print(f"{name:>9} {seed:>4}  {fmt(a):>17}  {fmt(b):>17}", flush=True)


if __name__ == "__main__":
    main()
