"""Run a :class:`TrainConfig`: build the population, train it, write its results.

An output folder holds ``config.json``, ``metrics.csv`` and ``metrics.json`` (one row per
epoch and member) and ``checkpoint.pt``.  Metrics and checkpoint are rewritten after
every epoch, so an interrupted run keeps every finished epoch and ``resume=True``
continues it from the checkpoint with identical numbers.
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from .channels import build_channel
from .config import TrainConfig
from .data import Dataset, load_dataset
from .nets import Network
from .plasticity import SGD
from .train import History, Trainer


RESUME_EXCLUDE = ("seeds", "data_dir", "device", "epochs")


def load_data(cfg: TrainConfig) -> tuple[Dataset, Dataset]:
    train, test = load_dataset(cfg.dataset, cfg.data_dir, k=cfg.synthetic_k,
                               n_train=cfg.n_train, n_test=cfg.n_test, seed=cfg.data_seed)
    if cfg.subset is not None:
        train = train.subset(cfg.subset)
    return train.to(cfg.device), test.to(cfg.device)


def build_trainer(cfg: TrainConfig, progress: bool = True) -> Trainer:
    """The network population, channel and optimizer a config describes."""
    cfg.validate()
    net = Network(cfg.sizes, hidden=cfg.hidden, output=cfg.output_pair, seeds=cfg.seeds,
                  init=cfg.init, dropout=cfg.dropout, device=cfg.device)
    channel = build_channel(cfg.algorithm, **cfg.channel)
    opt = SGD(lr=cfg.lr, decay=cfg.decay, momentum=cfg.momentum, frozen=cfg.frozen,
              update_bits=cfg.update_bits, update_alpha=cfg.update_alpha)
    return Trainer(net, channel, opt, batch_size=cfg.batch_size, batch_order=cfg.batch_order,
                   data_seed=cfg.data_seed, train_metrics=cfg.train_metrics, progress=progress)


@dataclass
class RunResult:
    config: TrainConfig
    history: History
    trainer: Trainer
    out_dir: Path | None = None


def write_metrics(history: History, out_dir: Path) -> None:
    rows = history.rows()
    tmp = out_dir / "metrics.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["epoch"])
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, out_dir / "metrics.csv")
    tmp = out_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(history.to_dict(), indent=1, default=_nan_safe))
    os.replace(tmp, out_dir / "metrics.json")


def _nan_safe(x):
    return None if isinstance(x, float) and math.isnan(x) else x


def train_config(cfg: TrainConfig, out_dir: str | os.PathLike | None = None, progress: bool = True,
                 resume: bool = True, data: tuple[Dataset, Dataset] | None = None) -> RunResult:
    """Train ``cfg``; with ``out_dir`` write results there after every epoch and resume
    from its checkpoint when the same config was already started."""
    cfg.validate()
    train, test = data if data is not None else load_data(cfg)
    trainer = build_trainer(cfg, progress)
    ckpt = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        ckpt = out / "checkpoint.pt"
        cfg_path = out / "config.json"
        if cfg_path.exists() and ckpt.exists() and resume:
            old = json.loads(cfg_path.read_text())
            # Same run = same config up to the number of epochs (a longer schedule resumes).
            same = TrainConfig.from_dict(old).key(RESUME_EXCLUDE) == cfg.key(RESUME_EXCLUDE)
            if not same or old.get("seeds") != cfg.seeds:
                raise ValueError(f"{out} holds a different run; choose another --out or remove it")
            trainer.load(ckpt)
        cfg_path.write_text(json.dumps(cfg.to_dict(), indent=1))

    def on_epoch(t: Trainer) -> None:
        if out_dir is not None:
            write_metrics(t.history, Path(out_dir))

    history = trainer.fit(train, test, epochs=cfg.epochs, checkpoint=ckpt, on_epoch=on_epoch)
    return RunResult(cfg, history, trainer, None if out_dir is None else Path(out_dir))


def summarize(history: History, metric: str) -> tuple[float, float, int]:
    """(mean, sample std, n) of the final ``metric`` over members that did not diverge."""
    vals = [v for v, d in zip(history.final(metric), history.diverged_at) if d is None and not math.isnan(v)]
    if not vals:
        return math.nan, math.nan, 0
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return statistics.fmean(vals), sd, len(vals)


def format_table(rows: list[list[str]], header: list[str]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(r, widths)))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def pct(mean: float, sd: float) -> str:
    return "diverged" if math.isnan(mean) else f"{100 * mean:.2f} ± {100 * sd:.2f}"


def result_row(label: str, history: History) -> list[str]:
    tr = summarize(history, "train_acc")
    te = summarize(history, "test_acc")
    loss = summarize(history, "test_loss")
    div = sum(d is not None for d in history.diverged_at)
    return [label, pct(*tr[:2]), pct(*te[:2]), "—" if math.isnan(loss[0]) else f"{loss[0]:.4f}",
            f"{len(history.seeds)}", str(div)]


RESULT_HEADER = ["run", "train acc %", "test acc %", "test loss", "seeds", "diverged"]


def torch_threads_note() -> str:
    return f"torch {torch.__version__}, {torch.get_num_threads()} threads"
