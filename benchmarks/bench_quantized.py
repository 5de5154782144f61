"""Quantized per-example weight updates (paper 1, section 5.2) against plain steps.

Three populations of the same shape train side by side on the same MNIST minibatches
(paper 1's A[784,100,100,100,100,10], tanh, softmax, minibatch 100, lr 0.1, no decay,
RBP): plain SGD, SGD with eq. 19 on every example's update summed by the factored method
(``lchannel.engine.quantize.outer_sum_factored``, the default), and the same with the
per-example reference loop (``--loop-every``: timed on every k-th minibatch only, it is
slow).  Contenders alternate within each round, so drift of the machine's speed hits them
alike; the printed ratios are of the minimum step time over all rounds (interference only
adds time) and the median of the per-round ratios.

The cost of the factored sum depends on how many examples' updates leave eq. 19's floor
level, which falls as training goes on: ``--warmup`` steps are trained (untimed) first.

    python benchmarks/bench_quantized.py --data-dir ../shared/datasets
    python benchmarks/bench_quantized.py --bits 1,3,5 --members 5 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import lchannel.engine.plasticity as plasticity
from lchannel import SGD, Network, build_channel
from lchannel.experiments.worker import tune_malloc


def load(data_dir):
    if data_dir:
        from lchannel.data import load_mnist

        train, _ = load_mnist(data_dir)
        return train.X, train.T
    print("no --data-dir: random inputs in [0, 1] (the floor fractions differ from MNIST's)")
    g = torch.Generator().manual_seed(0)
    X = torch.rand(6000, 784, generator=g)
    T = torch.nn.functional.one_hot(torch.randint(0, 10, (6000,), generator=g), 10).float()
    return X, T


class Contender:
    def __init__(self, name, E, bits, method, alg):
        self.name, self.method = name, method
        self.net = Network([784, 100, 100, 100, 100, 10], seeds=list(range(E)))
        self.ch = build_channel(alg).bind(self.net)
        self.opt = SGD(lr=0.1, decay=0.0, update_bits=bits).bind(self.net)
        self.times = []

    def step(self, x, t):
        plasticity.QUANTIZED_UPDATE_METHOD = self.method or "factored"
        t0 = time.perf_counter()
        rec = self.net.forward(x)
        I = self.ch.signals(rec, self.net.output_loss.error(t, rec.output))
        self.opt.step(rec, I)
        dt = time.perf_counter() - t0
        self.times.append(dt)
        return dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: random inputs)")
    p.add_argument("--members", type=int, default=5, help="population size E (default: 5)")
    p.add_argument("--bits", default="3", help="comma-separated bit widths (default: 3)")
    p.add_argument("--rounds", type=int, default=100, help="timed minibatches (default: 100)")
    p.add_argument("--warmup", type=int, default=200, help="untimed training steps first (default: 200)")
    p.add_argument("--loop-every", type=int, default=10, help="time the reference loop every k-th round (0: never)")
    p.add_argument("--algorithm", default="rbp")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tune_malloc()  # as in the runner's workers: the loop's large temporaries stay mapped
    X, T = load(args.data_dir)
    g = torch.Generator().manual_seed(1)
    for bits in [int(b) for b in args.bits.split(",")]:
        plain = Contender("plain", args.members, None, None, args.algorithm)
        fact = Contender("factored", args.members, bits, "factored", args.algorithm)
        loop = Contender("loop", args.members, bits, "loop", args.algorithm)
        batches = [torch.randint(0, X.shape[0], (100,), generator=g) for _ in range(args.warmup + args.rounds)]
        for idx in batches[:args.warmup]:
            for c in (plain, fact):
                c.step(X[idx], T[idx])
        # the loop contender starts from the factored one's state: same weights, same floors
        loop.net.load_state_dict(fact.net.state_dict())
        plain.times.clear(), fact.times.clear()
        ratios = []
        for r, idx in enumerate(batches[args.warmup:]):
            x, t = X[idx], T[idx]
            tp = plain.step(x, t)
            tf = fact.step(x, t)
            ratios.append(tf / tp)
            if args.loop_every and r % args.loop_every == 0:
                loop.net.load_state_dict(fact.net.state_dict())
                loop.step(x, t)
        bp, bf = min(plain.times), min(fact.times)
        line = (f"bits={bits} E={args.members} threads={torch.get_num_threads()}: plain {bp * 1e3:.2f} ms, "
                f"factored {bf * 1e3:.2f} ms ({bf / bp:.1f}x plain by minima, per-round median "
                f"{statistics.median(ratios):.1f}x, IQR {statistics.quantiles(ratios, n=4)[0]:.1f}-"
                f"{statistics.quantiles(ratios, n=4)[2]:.1f}x)")
        if loop.times:
            bl = min(loop.times)
            line += f", loop {bl * 1e3:.1f} ms ({bl / bp:.1f}x plain, {bl / bf:.1f}x factored)"
        print(line, flush=True)
    plasticity.QUANTIZED_UPDATE_METHOD = "factored"


if __name__ == "__main__":
    main()
