"""Small shared pieces for the tests: one learning step, measured as weight changes."""

import importlib.util
from pathlib import Path

import torch

from lchannel.channels import REGISTRY, build_channel, split_name
from lchannel.engine.nets import Network
from lchannel.engine.plasticity import SGD


def small_net(sizes=(5, 7, 6, 4), hidden="tanh", output="softmax", seeds=(0, 1)):
    return Network(list(sizes), hidden=hidden, output=output, seeds=list(seeds))


def batch(sizes, output="softmax", B=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(B, sizes[0], generator=g)
    n = sizes[-1]
    if output == "softmax":
        y = torch.randint(0, n, (B,), generator=g)
        T = torch.nn.functional.one_hot(y, n).float()
    elif output == "logistic":
        T = (torch.rand(B, n, generator=g) > 0.5).float()
    else:
        T = torch.randn(B, n, generator=g)
    return X, T


def one_step_updates(net, channel, X, T, lr=1.0, e_override=None):
    """ΔW^h and Δb^h of one SGD step (lr, no decay, no momentum), without changing ``net``."""
    if channel.net is not net:
        channel.bind(net)
    before = [w.clone() for w in net.weights] + [b.clone() for b in net.biases]
    opt = SGD(lr=lr).bind(net)
    rec = net.forward(X)
    e = net.output_loss.error(T, rec.output) if e_override is None else e_override
    signals = channel.signals(rec, e)
    opt.step(rec, signals)
    after = [w.clone() for w in net.weights] + [b.clone() for b in net.biases]
    for p, q in zip(net.weights + net.biases, before):
        p.copy_(q)
    return [a - b for a, b in zip(after, before)]


def example_options(name) -> dict:
    """The registry's example options of an algorithm name (``mixed`` needs skip_layers)."""
    return dict(REGISTRY[split_name(name)[0]].example)


def updates_for(name, X, T, sizes=(5, 7, 6, 4), hidden="tanh", output="softmax", **opts):
    net = small_net(sizes, hidden, output)
    return one_step_updates(net, build_channel(name, **{**example_options(name), **opts}), X, T)


def store_copy(db, dest):
    """A copy of the results store ``db`` at ``dest`` (opening a store may write to it:
    WAL, migrations), with whatever a running sweep still holds in its write-ahead log."""
    import sqlite3

    src, dst = sqlite3.connect(f"file:{db}?mode=ro", uri=True), sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return dest


def load_benchmark(name: str):
    """The module of ``benchmarks/<name>.py`` (benchmarks are scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
