"""Minimum time of one engine step (forward, learning-channel signals, SGD step), per member.

The minimum over many steps is the steadiest figure on a noisy VM (interference only adds
time).  To compare two versions of the engine in the same run, name the older one:

    python benchmarks/bench_step.py --against 7d9143b --rounds 3

which checks that commit out into a temporary folder, then times each contender with the
old and the new tree on the path, alternating (old, new, old, new, ...), and prints the
best time of each side and the ratio new/old (below 1: the new tree is faster).  A
ratio within about ±5% is noise on this kind of machine.

Network: paper 1's A[784,100,100,100,100,10], tanh, softmax, minibatch 100, one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(algorithms: list[str], members: list[int], steps: int) -> dict[str, float]:
    """``{"<alg> E=<E>": best seconds per member-step}`` with the lchannel on the path."""
    import torch

    from lchannel import SGD, Network, build_channel

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(100, 784, generator=g)
    T = torch.nn.functional.one_hot(torch.randint(0, 10, (100,), generator=g), 10).float()
    out = {}
    for alg in algorithms:
        for E in members:
            net = Network([784, 100, 100, 100, 100, 10], seeds=list(range(E)))
            ch = build_channel(alg).bind(net)
            opt = SGD(lr=0.1).bind(net)
            best = float("inf")
            for _ in range(steps):
                t = time.perf_counter()
                rec = net.forward(X)
                I = ch.signals(rec, net.output_loss.error(T, rec.output))
                opt.step(rec, I)
                best = min(best, time.perf_counter() - t)
            out[f"{alg} E={E}"] = best / E
    return out


def _side(src: Path, args) -> dict[str, float]:
    """One measurement in a fresh interpreter with ``src`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--json", "--steps", str(args.steps), "--algorithms", args.algorithms,
           "--members", args.members]
    return json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)


def against(rev: str, args) -> None:
    """Old (``rev``) against new (this tree), alternating, in one run."""
    with tempfile.TemporaryDirectory(prefix="lchannel-bench-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        best: dict[str, dict[str, float]] = {"old": {}, "new": {}}
        for _ in range(args.rounds):
            for side, src in (("old", Path(tmp) / "src"), ("new", ROOT / "src")):
                for key, t in _side(src, args).items():
                    best[side][key] = min(best[side].get(key, float("inf")), t)
    print(f"{'contender':<14} {'old µs/member-step':>19} {'new µs/member-step':>19} {'new/old':>8}")
    for key in best["new"]:
        old, new = best["old"][key], best["new"][key]
        print(f"{key:<14} {old * 1e6:>19.0f} {new * 1e6:>19.0f} {new / old:>8.3f}")
    print(f"(best of {args.rounds} alternating rounds x {args.steps} steps; old = {rev}, new = the working tree)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60, help="steps timed per contender (default: 60)")
    p.add_argument("--algorithms", default="bp,rbp,srbp", help="comma-separated (default: bp,rbp,srbp)")
    p.add_argument("--members", default="1,8", help="population sizes E (default: 1,8)")
    p.add_argument("--against", metavar="REV", help="also time git revision REV, alternating (default: this tree only)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds with --against (default: 3)")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one side of --against
    args = p.parse_args()
    if args.steps < 1 or args.rounds < 1:
        p.error("--steps and --rounds must be >= 1")
    if args.against:
        against(args.against, args)
        return
    res = measure(args.algorithms.split(","), [int(e) for e in args.members.split(",")], args.steps)
    if args.json:
        print(json.dumps(res))
    else:
        print(" | ".join(f"{k}: {v * 1e6:.0f} µs/member-step" for k, v in res.items()))


if __name__ == "__main__":
    main()
