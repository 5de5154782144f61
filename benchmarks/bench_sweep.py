"""Sweep throughput: how many worker processes x torch threads per worker train most
member-epochs per second on this machine.

Each configuration ``P x T`` starts P processes (``spawn``, as the runner's pool does),
each with T torch threads and the runner's malloc tuning, each training its own
population (E members of paper 1's MNIST net A[784,100,100,100,100,10], minibatch 100,
the given algorithm and options) on random MNIST-shaped data for ``--steps`` steps.  A
process reports the minimum and the median of its step times and the median CPU time
of a step (process time: with one thread, a step that only waits for a core costs wall
time, not CPU time; one slowed by memory bandwidth or shared caches costs both); the configuration's
throughput is P·E / (median step time), in member-steps per second.  Configurations
alternate over ``--rounds`` rounds, and the best round of each is printed with its ratio
to ``1 x 1`` (one process, one thread: the step "alone"), so that what the ratios say
about oversubscription or memory bandwidth is measured in one run.

    python benchmarks/bench_sweep.py                          # 1x1, 1x2, 2x1 on 2 cores
    python benchmarks/bench_sweep.py --configs 1x1,2x1,4x1 --update-bits 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time


def worker(args, threads, start, out):
    import torch

    from lchannel import SGD, Network, build_channel
    from lchannel.experiments.worker import tune_malloc

    torch.set_num_threads(threads)
    tune_malloc()
    g = torch.Generator().manual_seed(os.getpid())
    X = torch.rand(2000, 784, generator=g) * (torch.rand(2000, 784, generator=g) > 0.8)
    T = torch.nn.functional.one_hot(torch.randint(0, 10, (2000,), generator=g), 10).float()
    net = Network([784, 100, 100, 100, 100, 10], seeds=list(range(args.members)))
    ch = build_channel(args.algorithm).bind(net)
    opt = SGD(lr=0.1, decay=0.0, update_bits=args.update_bits).bind(net)
    times, cpu = [], []
    start.wait()
    for s in range(args.steps):
        idx = torch.randint(0, 2000, (100,), generator=g)
        t0, c0 = time.perf_counter(), time.process_time()
        rec = net.forward(X[idx])
        opt.step(rec, ch.signals(rec, net.output_loss.error(T[idx], rec.output)))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    out.put((min(times), statistics.median(times), statistics.median(cpu)))


def run_config(args, procs, threads):
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    ps = [ctx.Process(target=worker, args=(args, threads, start, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    time.sleep(args.startup)  # imports and data, untimed
    start.set()
    res = [out.get() for _ in ps]
    for p in ps:
        p.join()
    median = statistics.mean(r[1] for r in res)
    return {"min": statistics.mean(r[0] for r in res), "median": median, "cpu": statistics.mean(r[2] for r in res),
            "throughput": procs * args.members / median}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="1x1,1x2,2x1", help="processes x threads, comma-separated (default: 1x1,1x2,2x1)")
    p.add_argument("--members", type=int, default=5, help="members per population (default: 5)")
    p.add_argument("--steps", type=int, default=150, help="steps per process (default: 150)")
    p.add_argument("--rounds", type=int, default=3, help="alternations of all configurations (default: 3)")
    p.add_argument("--algorithm", default="rbp")
    p.add_argument("--update-bits", type=int, default=None, help="quantized per-example updates (eq. 19)")
    p.add_argument("--startup", type=float, default=6.0, help="seconds given to workers to import (default: 6)")
    args = p.parse_args()
    configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")]
    best: dict = {}
    for r in range(args.rounds):
        for c in configs:
            res = run_config(args, *c)
            print(f"round {r + 1} {c[0]}x{c[1]}: step min {res['min'] * 1e3:.1f} ms, median {res['median'] * 1e3:.1f} ms, "
                  f"CPU {res['cpu'] * 1e3:.1f} ms, "
                  f"{res['throughput']:.0f} member-steps/s", flush=True)
            if c not in best or res["throughput"] > best[c]["throughput"]:
                best[c] = res
    base = best.get((1, 1)) or best[configs[0]]
    print(f"cores: {os.cpu_count()}, E={args.members}, {args.algorithm}"
          f"{'' if args.update_bits is None else f', update_bits={args.update_bits}'}; best round of {args.rounds}:")
    for c in configs:
        b = best[c]
        print(f"  {c[0]} process(es) x {c[1]} thread(s): median step {b['median'] * 1e3:.1f} ms "
              f"({b['median'] / base['median']:.2f}x the 1x1 step; CPU {b['cpu'] * 1e3:.1f} ms, "
              f"{b['cpu'] / base['cpu']:.2f}x), throughput {b['throughput']:.0f} member-steps/s "
              f"({b['throughput'] / base['throughput']:.2f}x 1x1)")


if __name__ == "__main__":
    main()
