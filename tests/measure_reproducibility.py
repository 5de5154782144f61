"""Measure what docs/experiments.md "What is exact" states (not collected by pytest).

    PYTHONPATH=src python tests/measure_reproducibility.py tiny 3        # the test spec, 3 epochs
    PYTHONPATH=src python tests/measure_reproducibility.py tiny 25
    LCHANNEL_DATA_DIR=... PYTHONPATH=src python tests/measure_reproducibility.py mnist 5 6000

For every cell: a rerun (bit-identical?), 1 vs 2 torch threads, and each member of the
population against the run with its seed alone: the largest weight difference and the
largest relative difference of any per-epoch metric.
"""

import pathlib
import sys
import tempfile

import torch

from lchannel.experiments import Overrides, load_spec
from lchannel.run.single import build_trainer, load_data


def train(cfg, threads):
    torch.set_num_threads(threads)
    t = build_trainer(cfg, progress=False)
    tr, te = load_data(cfg)
    t.fit(tr, te, epochs=cfg.epochs)
    return [w.clone() for w in t.net.weights], t.history


def rel(h1, e1, h2, e2) -> float:
    return max(abs(r1[e1] - r2[e2]) / max(abs(r2[e2]), 1e-30)
               for k in h1.metrics for r1, r2 in zip(h1.metrics[k], h2.metrics[k]))


def wdiff(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def main(kind: str, epochs: int, subset: int | None = None) -> None:
    if kind == "tiny":
        sys.path.insert(0, str(pathlib.Path(__file__).parent))
        from test_experiments_runner import TINY
        p = pathlib.Path(tempfile.mkdtemp()) / "tiny.toml"
        p.write_text(TINY.format(epochs=epochs, n_train=300))
        cells = load_spec(p).cells()
    else:
        cells = [c for c in load_spec("figure1").cells(Overrides(epochs=epochs, subset=subset))
                 if c.labels["algorithm"] in ("BP", "SRBP")]
    for cell in cells:
        cfg = cell.config
        W1, H1 = train(cfg, 1)
        W1b, _ = train(cfg, 1)
        W2, H2 = train(cfg, 2)
        E = len(cfg.seeds)
        print(f"{cell.title} (E={E}, {epochs} epochs): rerun identical={all(torch.equal(a, b) for a, b in zip(W1, W1b))}; "
              f"1 vs 2 threads max|dW|={wdiff(W1, W2):.3g}, metrics rel={max(rel(H1, e, H2, e) for e in range(E)):.3g}")
        for e, s in enumerate(cfg.seeds):
            Ws, Hs = train(cfg.replace(seeds=[s]), 1)
            print(f"   seed {s}: member vs alone max|dW|={wdiff([w[e:e + 1] for w in W1], Ws):.3g}, "
                  f"metrics rel={rel(H1, e, Hs, 0):.3g}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
