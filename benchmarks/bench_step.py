"""Minimum time of one engine step (forward, learning-channel signals, SGD step), per member.

The minimum over many steps is the steadiest figure on a noisy VM (interference only adds
time).  To compare two versions of the engine, run this file with each tree on the path,
alternating, and compare the best of several runs:

    for i in 1 2 3; do
      PYTHONPATH=/path/to/old/src python benchmarks/bench_step.py
      PYTHONPATH=src python benchmarks/bench_step.py
    done

Network: paper 1's A[784,100,100,100,100,10], tanh, softmax, minibatch 100, one thread.
"""

from __future__ import annotations

import argparse
import time

import torch

from lchannel import SGD, Network, build_channel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60, help="steps timed per contender (default: 60)")
    p.add_argument("--algorithms", default="bp,rbp,srbp", help="comma-separated (default: bp,rbp,srbp)")
    p.add_argument("--members", default="1,8", help="population sizes E (default: 1,8)")
    args = p.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(100, 784, generator=g)
    T = torch.nn.functional.one_hot(torch.randint(0, 10, (100,), generator=g), 10).float()
    out = []
    for alg in args.algorithms.split(","):
        for E in (int(e) for e in args.members.split(",")):
            net = Network([784, 100, 100, 100, 100, 10], seeds=list(range(E)))
            ch = build_channel(alg).bind(net)
            opt = SGD(lr=0.1).bind(net)
            best = float("inf")
            for _ in range(args.steps):
                t = time.perf_counter()
                rec = net.forward(X)
                I = ch.signals(rec, net.output_loss.error(T, rec.output))
                opt.step(rec, I)
                best = min(best, time.perf_counter() - t)
            out.append(f"{alg} E={E}: {best * 1e6 / E:.0f} µs/member-step")
    print(" | ".join(out))


if __name__ == "__main__":
    main()
