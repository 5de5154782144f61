"""Step time of models converted by lchannel.torch, as ratios to plain autograd.

Two models, each trained with ``torch.optim.SGD`` and cross-entropy in an ordinary loop
(zero_grad, forward, loss, backward, step):

- ``mlp``: paper 1's MNIST network A[784,100,100,100,100,10], tanh, softmax, batch 100;
- ``conv``: a small all-convolutional net on 3x32x32 inputs (conv 16 stride 2 - relu -
  conv 32 stride 2 - relu - linear 10), batch 64.  Strided convolutions rather than max
  pooling: CPU max pooling costs as much as the convolutions here and its time swings
  with the machine's load, which hides the differences being measured.

Contenders: ``autograd`` (the model as it is), lchannel's ``rbp`` and ``srbp`` (with the
compiled autograd nodes when they could be built, and then also ``rbp (python)`` and
``srbp (python)`` with the Python autograd functions, see lchannel.torch.native), and, when
``biotorch`` can be imported, its ``fa`` and ``dfa`` on the same models.  Each line also
gives the floating-point operations of one backward pass (products and convolutions).  Inputs are random
(step time does not depend on the values).  A round gives every contender ``--steps``
steps, one contender after the other; each ratio is taken *within* a round against
autograd's time in that round (the machine's speed drifts), and the median and
interquartile range over rounds are printed.

    PYTHONPATH=src python benchmarks/bench_convert.py                    # 15 rounds x 30 steps
    PYTHONPATH=src /tmp/btvenv/bin/python benchmarks/bench_convert.py    # with biotorch
    PYTHONPATH=src python benchmarks/bench_convert.py --device cuda      # on a GPU
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import lchannel.torch as lct
from lchannel.torch import native


def mlp() -> nn.Module:
    sizes = [784, 100, 100, 100, 100, 10]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def convnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 10))


MODELS = {"mlp": (mlp, (100, 784)), "conv": (convnet, (64, 3, 32, 32))}


class Contender:
    """One model and its training step; ``run(n)`` returns the seconds of n steps."""

    def __init__(self, make, shape, convert=None, biotorch_mode=None, device="cpu", python_nodes=False):
        torch.manual_seed(0)
        self.device = torch.device(device)
        self.X = torch.randn(*shape).to(self.device)
        self.y = torch.randint(0, 10, (shape[0],)).to(self.device)
        model = make().to(self.device)
        self.dfa = biotorch_mode == "dfa"
        if biotorch_mode is not None:
            from biotorch.module.biomodule import BioModule
            model = BioModule(model, mode=biotorch_mode, output_dim=10 if self.dfa else None)
        elif convert is not None:
            model = lct.convert(model, convert, seed=0,
                                **({"example_input": self.X[:2]} if "srbp" in convert else {}))
            if python_nodes:  # the Python autograd functions instead of the compiled nodes
                lct.channel_of(model).native = None
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01)
        self.loss_fn = nn.CrossEntropyLoss()

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        if self.dfa:  # biotorch's DFA takes the targets and the loss in its forward pass
            out = self.model(self.X, targets=self.y, loss_function=self.loss_fn)
        else:
            out = self.model(self.X)
        self.loss_fn(out, self.y).backward()
        self.opt.step()

    def backward_flops(self) -> int:
        """Floating-point operations of one backward pass (matrix products and convolutions,
        counted by torch.utils.flop_counter): what SRBP saves by sending nothing through Wᵀ."""
        from torch.utils.flop_counter import FlopCounterMode
        kw = {"targets": self.y, "loss_function": self.loss_fn} if self.dfa else {}
        loss = self.loss_fn(self.model(self.X, **kw), self.y)
        with FlopCounterMode(display=False) as counter:
            loss.backward()
        self.opt.zero_grad(set_to_none=True)
        return counter.get_total_flops()

    def run(self, n: int) -> float:
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(n):
            self.step()
        _sync(self.device)
        return time.perf_counter() - t0


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def contenders(model: str, device: str = "cpu") -> dict[str, Contender]:
    make, shape = MODELS[model]
    out = {"autograd": Contender(make, shape, device=device)}
    for name in ("rbp", "srbp"):
        out[name] = Contender(make, shape, name, device=device)
        if lct.channel_of(out[name].model).native is not None:
            out[f"{name} (python)"] = Contender(make, shape, name, device=device, python_nodes=True)
    try:
        import biotorch  # noqa: F401
        out["biotorch fa"] = Contender(make, shape, biotorch_mode="fa", device=device)
        out["biotorch dfa"] = Contender(make, shape, biotorch_mode="dfa", device=device)
    except ImportError as err:
        print(f"biotorch not importable here ({err}); run with a Python that has it to compare")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=30, help="steps per contender per round")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: stable on shared CPUs)")
    ap.add_argument("--models", default="mlp,conv")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} rounds x {args.steps} steps, {args.device}")
    print(f"autograd nodes: {native.status()}")
    for model in args.models.split(","):
        cs = contenders(model, args.device)
        for c in cs.values():
            c.run(3)  # warm-up (allocator, lazy init)
        ratios: dict[str, list[float]] = {k: [] for k in cs if k != "autograd"}
        base_times = []
        for _ in range(args.rounds):
            times = {k: c.run(args.steps) for k, c in cs.items()}
            base_times.append(times["autograd"] / args.steps)
            for k in ratios:
                ratios[k].append(times[k] / times["autograd"])
        print(f"\n{model}: autograd step {statistics.median(base_times) * 1e3:.2f} ms (median)")
        flops = {k: c.backward_flops() for k, c in cs.items()}
        print(f"  {'contender':<14} {'ratio median':>12} {'IQR':>16} {'backward MFLOP':>15}")
        print(f"  {'autograd':<14} {1.0:>12.3f} {'':>16} {flops['autograd'] / 1e6:>15.1f}")
        for k, r in ratios.items():
            q = statistics.quantiles(r, n=4)
            print(f"  {k:<14} {statistics.median(r):>12.3f}   [{q[0]:.3f}, {q[2]:.3f}] {flops[k] / 1e6:>15.1f}")


if __name__ == "__main__":
    main()
