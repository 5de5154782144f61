"""Populations across variants: the speed of one population packed across cells against
one population per cell, measured in the same run.

The cells are the RBP rows of paper 1's Table 1 that differ only in the feedback
distribution (Baseline, Sparse-8, Sparse-2, Sparse-1), optionally with a learning rate of
their own (``--lr-variants``: every other cell at half the rate, which exercises the
per-member rate path), each with ``--seeds`` seeds, on paper 1's MNIST net
A[784,100,100,100,100,10], minibatch 100, random MNIST-shaped data.  ``per cell`` trains
one population per cell (E = seeds), one after the other, as the runner does with
``--no-pack-variants``; ``packed`` trains all cells' members as one population
(E = cells x seeds, :func:`lchannel.population.packing.build_packed_trainer`'s engine path).
Both run ``--steps`` steps per round, alternating over ``--rounds`` rounds in this one
process; the best round of each is printed with the ratio, per-cell time / packed time
(> 1: packing is faster).

    OMP_NUM_THREADS=1 python benchmarks/bench_variants.py --threads 1
    python benchmarks/bench_variants.py --seeds 5 --steps 100 --rounds 3 --lr-variants
"""

from __future__ import annotations

import argparse
import time

CELLS = [("Baseline", "normal"), ("Sparse-8", {"distribution": "sparse", "n": 8}),
         ("Sparse-2", {"distribution": "sparse", "n": 2}), ("Sparse-1", {"distribution": "sparse", "n": 1})]


def population(seeds, lrs, feedbacks, algorithm, device):
    from lchannel import SGD, Network, build_channel
    net = Network([784, 100, 100, 100, 100, 10], seeds=seeds, device=device)
    ch = build_channel(algorithm)
    if len({str(f) for f in feedbacks}) > 1:
        ch.set_member_feedback(feedbacks)
    else:
        ch = build_channel(algorithm, feedback=feedbacks[0])
    ch.bind(net)
    opt = SGD(lr=lrs if len(set(lrs)) > 1 else lrs[0], decay=1e-6).bind(net)
    return net, ch, opt


def steps(pop, X, T, idx):
    net, ch, opt = pop
    for i in idx:
        rec = net.forward(X[i])
        opt.step(rec, ch.signals(rec, net.output_loss.error(T[i], rec.output)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5, help="seeds per cell (Table 1: 5)")
    ap.add_argument("--cells", type=int, default=4, help=f"cells packed together (1..{len(CELLS)})")
    ap.add_argument("--steps", type=int, default=60, help="steps per population per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--algorithm", default="rbp", help="a random-feedback channel: rbp or srbp")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--lr-variants", action="store_true", help="every other cell at half the learning rate")
    args = ap.parse_args()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    cells = CELLS[:args.cells]
    g = torch.Generator().manual_seed(0)
    X = torch.rand(2000, 784, generator=g) * (torch.rand(2000, 784, generator=g) > 0.8)
    T = torch.nn.functional.one_hot(torch.randint(0, 10, (2000,), generator=g), 10).float()
    idx = [torch.randint(0, 2000, (100,), generator=g).to(args.device) for _ in range(args.steps)]
    X, T = X.to(args.device), T.to(args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    seeds = list(range(args.seeds))
    lr = [0.1 if not args.lr_variants or c % 2 == 0 else 0.05 for c in range(len(cells))]
    per_cell = [population(seeds, [lr[c]] * len(seeds), [fb] * len(seeds), args.algorithm, args.device)
                for c, (_, fb) in enumerate(cells)]
    packed = population(seeds * len(cells), [lr[c] for c in range(len(cells)) for _ in seeds],
                        [fb for _, fb in cells for _ in seeds], args.algorithm, args.device)
    best = {"per cell": float("inf"), "packed": float("inf")}
    for r in range(args.rounds):
        sync()
        t0 = time.perf_counter()
        for pop in per_cell:
            steps(pop, X, T, idx)
        sync()
        t1 = time.perf_counter()
        steps(packed, X, T, idx)
        sync()
        t2 = time.perf_counter()
        best["per cell"] = min(best["per cell"], t1 - t0)
        best["packed"] = min(best["packed"], t2 - t1)
        print(f"round {r + 1}: per cell {t1 - t0:.3f} s, packed {t2 - t1:.3f} s")
    n = len(cells) * len(seeds) * args.steps
    print(f"{len(cells)} cells x {len(seeds)} seeds, {args.algorithm}, {args.steps} steps, "
          f"{torch.get_num_threads()} thread(s), {args.device}, lr variants: {args.lr_variants}")
    for k, v in best.items():
        print(f"  {k:9s} best {v:.3f} s  ({n / v:.0f} member-steps/s)")
    print(f"  packed across variants / per-cell populations: {best['per cell'] / best['packed']:.2f}x throughput")


if __name__ == "__main__":
    main()
