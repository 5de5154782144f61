"""Run a :class:`TrainConfig`: build the population, train it, write its results.

An output folder holds ``config.json``, ``metrics.csv`` and ``metrics.json`` (one row per
epoch and member) and ``checkpoint.pt``.  Metrics and checkpoint are rewritten after
every epoch, so an interrupted run keeps every finished epoch and ``resume=True``
continues it from the checkpoint with identical numbers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..channels import build_channel
from ..channels.adaptive import Adaptive
from ..channels.transforms import Chain, ChannelDropout, Quantize
from ..data import REGISTRY, Dataset, RandomTranslateFlip, dataset_entry, load_dataset
from ..engine.divergence import divergence_summary, divergence_text
from ..engine.nets import Network
from ..engine.plasticity import SGD
from ..engine.train import History, Trainer
from .cliutil import writable_dir
from .config import TrainConfig
from .tables import mean_sd, pm, text_table


RESUME_EXCLUDE = ("seeds", "data_dir", "device", "epochs")
# What a run folder holds (removed by --restart).
RUN_FILES = ("config.json", "checkpoint.pt", "checkpoint.pt.tmp", "metrics.csv", "metrics.json", "timings.json")


class RunFolderError(ValueError):
    """An output folder that cannot hold this run; the message says what to do."""


def run_id(cfg: TrainConfig) -> str:
    """A short id of the run: everything that defines it, seeds included, epochs not (a
    longer schedule continues the same run).  Default output folders are named by it."""
    text = json.dumps([cfg.key(("epochs",)), cfg.seeds])
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def open_run_folder(out: str | os.PathLike, cfg: TrainConfig, restart: bool = False,
                    resume: bool = True) -> dict | None:
    """Check, before any work, that ``out`` can hold ``cfg``'s run; return the checkpoint
    state to resume from (None: start from scratch).

    A folder holding a different run, or a corrupt ``config.json``/``checkpoint.pt``, is a
    :class:`RunFolderError` that says how to go on (another ``--out``, or ``restart=True``,
    which discards the run files the folder holds)."""
    out = writable_dir(out, "--out")
    if not out.exists():
        return None
    cfg_path, ckpt = out / "config.json", out / "checkpoint.pt"
    way_out = f"pass --restart to discard the run in {out} and start over"
    if restart:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        return None
    if not cfg_path.exists():
        if ckpt.exists():
            raise RunFolderError(f"--out: {out} holds checkpoint.pt but no config.json; {way_out}")
        return None
    try:
        old = TrainConfig(**json.loads(cfg_path.read_text()))
        old_key = old.key(RESUME_EXCLUDE)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as err:
        raise RunFolderError(f"{cfg_path} is corrupt or unreadable ({err}); {way_out}") from None
    if old_key != cfg.key(RESUME_EXCLUDE) or old.seeds != cfg.seeds:
        a, b = old.to_dict(), cfg.to_dict()
        diff = [f"{k} {a[k]!r} there, {b[k]!r} here" for k in a if k not in RESUME_EXCLUDE[1:] and a[k] != b[k]]
        raise RunFolderError(f"--out: {out} holds a different run ({'; '.join(diff)}); choose another --out, "
                             f"or {way_out}")
    if not resume or not ckpt.exists():
        return None
    try:
        state = torch.load(ckpt, weights_only=False)
    except Exception as err:  # noqa: BLE001 - torch.load raises many types for a damaged file
        raise RunFolderError(f"{ckpt} is corrupt or unreadable ({type(err).__name__}: {err}); {way_out}") from None
    if not isinstance(state, dict) or "epoch" not in state or "net" not in state:
        raise RunFolderError(f"{ckpt} is not an lchannel checkpoint; {way_out}")
    return state


def load_data(cfg: TrainConfig) -> tuple[Dataset, Dataset]:
    train, test = load_dataset(cfg.dataset, cfg.data_dir, k=cfg.synthetic_k,
                               n_train=cfg.n_train, n_test=cfg.n_test, seed=cfg.data_seed,
                               features=cfg.higgs_features, standardize=cfg.standardize, normalize=cfg.normalize)
    if cfg.subset is not None:
        train = train.subset(cfg.subset)
    return train.to(cfg.device), test.to(cfg.device)


def fit_options(cfg: TrainConfig, train: Dataset) -> dict:
    """``Trainer.fit``'s ``stream`` and ``valid`` for ``cfg``: with ``epoch_iterations``, the
    data set's stream (f_k: fresh points; else the training set is sampled); with
    ``early_stop``, the fixed validation sample, which for a streamed data set is its
    training split (never trained on then: minibatches come from the stream)."""
    if cfg.epoch_iterations is None:
        return {}
    entry = REGISTRY[cfg.dataset]
    stream = entry.stream(cfg.to_dict()) if entry.stream is not None else None
    return {"stream": stream, "valid": train if cfg.early_stop is not None else None}


def build_trainer(cfg: TrainConfig, progress: bool = True, desc: str = "train", lr: list[float] | None = None,
                  feedback: list | None = None, lc_dropout: list[float] | None = None,
                  update_bits: list[int] | None = None, quantize_bits: list[int] | None = None,
                  dropout: list[float] | None = None, adapt_rate: list[float] | None = None,
                  validate: bool = True, dtype: torch.dtype = torch.float32) -> Trainer:
    """The network population, channel and optimizer a config describes.

    ``lr`` (one η_0 per member), ``feedback`` (one feedback distribution per member) and
    ``lc_dropout`` (one learning-channel dropout p per member), ``update_bits`` (one
    number of bits of the quantized updates per member) and ``quantize_bits`` (of the
    quantized error signal, eq. 16-19), ``dropout`` (one forward-channel dropout p per
    member) and ``adapt_rate`` (one adaptation rate per member) override the config's for populations across variants
    (:func:`lchannel.population.packing.build_packed_trainer`, which passes ``validate=False``
    because its members' seeds may repeat).  ``dtype``: the network's floating type (its
    weights are drawn in it; float64 for reference runs such as tests/test_pinned_metrics.py)."""
    if validate:
        cfg.validate()
    # A conv architecture string is built on the data set's image shape (lchannel.engine.nets).
    arch, shape = (cfg.arch, {"input_shape": cfg.input_shape}) if cfg.is_conv else (cfg.sizes, {})
    net = Network(arch, hidden=cfg.hidden, output=cfg.output_pair, seeds=cfg.seeds,
                  init=cfg.init, dropout=cfg.dropout if dropout is None else dropout, device=cfg.device,
                  dtype=dtype, **shape)
    channel = build_channel(cfg.algorithm, **cfg.channel)
    if feedback is not None:
        channel.set_member_feedback(feedback)
    t = channel.transform
    transforms = t.transforms if isinstance(t, Chain) else [t]
    if lc_dropout is not None:
        drops = [x for x in transforms if isinstance(x, ChannelDropout)]
        if len(drops) != 1:
            raise ValueError("lc_dropout: per-member probabilities need a channel with learning-channel dropout")
        drops[0].p = ChannelDropout(lc_dropout).p
    if adapt_rate is not None:
        piece = channel.source.find(Adaptive) if hasattr(channel, "source") else None
        if piece is None:
            raise ValueError("adapt_rate: per-member rates need an adaptive channel (arbp, asrbp)")
        piece.set_member_rates(adapt_rate)
    if quantize_bits is not None:
        qs = [x for x in transforms if isinstance(x, Quantize)]
        if len(qs) != 1:
            raise ValueError("quantize_bits: per-member bits need a channel with a quantized error signal")
        qs[0].set_member_bits(quantize_bits)
    opt = SGD(lr=cfg.lr if lr is None else lr, decay=cfg.decay, momentum=cfg.momentum, frozen=cfg.frozen,
              update_bits=cfg.update_bits if update_bits is None else update_bits, update_alpha=cfg.update_alpha,
              update_reading=cfg.update_reading)
    augment = RandomTranslateFlip(dataset_entry(cfg.dataset).input_shape) if cfg.augment else None
    return Trainer(net, channel, opt, batch_size=cfg.batch_size, batch_order=cfg.batch_order,
                   data_seed=cfg.data_seed, train_metrics=cfg.train_metrics, progress=progress, desc=desc,
                   epoch_iterations=cfg.epoch_iterations, early_stop=cfg.early_stop, augment=augment)


@dataclass
class RunResult:
    config: TrainConfig
    history: History
    trainer: Trainer
    out_dir: Path | None = None
    already_complete: bool = False  # the folder held this run, finished: nothing was trained


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_metrics(history: History, out_dir: Path) -> None:
    """``metrics.csv``/``metrics.json`` (identical bytes for identical runs) and
    ``timings.json`` (seconds per epoch, which vary from run to run)."""
    rows = history.rows()
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["epoch"])
    w.writeheader()
    w.writerows(rows)
    _write_atomic(out_dir / "metrics.csv", buf.getvalue())
    d = history.to_dict()
    seconds = d.pop("seconds")
    _write_atomic(out_dir / "metrics.json", json.dumps(d, indent=1, default=_nan_safe))
    _write_atomic(out_dir / "timings.json", json.dumps({"epochs": history.epochs, "seconds": seconds}, indent=1))


def _nan_safe(x):
    return None if isinstance(x, float) and math.isnan(x) else x


# train_config's default: it checks the run folder itself (see its ``opened``).
CHECK_FOLDER = object()


def train_config(cfg: TrainConfig, out_dir: str | os.PathLike | None = None, progress: bool = True,
                 resume: bool = True, data: tuple[Dataset, Dataset] | None = None, restart: bool = False,
                 desc: str = "train", opened=CHECK_FOLDER) -> RunResult:
    """Train ``cfg``; with ``out_dir`` write results there after every epoch and resume
    from its checkpoint when the same config was already started (``restart=True``
    discards it instead).  Folder problems raise :class:`RunFolderError` before any work.

    ``opened``: what :func:`open_run_folder` returned for ``out_dir`` when the caller has
    already checked it (before loading data, or for several runs at once), so that the
    folder is not checked and its checkpoint not read a second time."""
    cfg.validate()
    if out_dir is None:
        state = None
    elif opened is CHECK_FOLDER:
        state = open_run_folder(out_dir, cfg, restart, resume)
    else:
        state = opened
    train, test = data if data is not None else load_data(cfg)
    trainer = build_trainer(cfg, progress, desc)
    ckpt = None
    if out_dir is not None:
        out = Path(out_dir)  # checked by open_run_folder
        out.mkdir(parents=True, exist_ok=True)
        ckpt = out / "checkpoint.pt"
        if state is not None:
            try:
                trainer.load_state_dict(state)
            except (KeyError, ValueError, RuntimeError, TypeError) as err:
                raise RunFolderError(f"{ckpt} does not fit this run ({err}); pass --restart to discard the run "
                                     f"in {out} and start over") from None
        _write_atomic(out / "config.json", json.dumps(cfg.to_dict(), indent=1))
    complete = state is not None and trainer.epoch >= cfg.epochs

    def on_epoch(t: Trainer) -> None:
        if out_dir is not None:
            write_metrics(t.history, Path(out_dir))

    history = trainer.fit(train, test, epochs=cfg.epochs, checkpoint=ckpt, on_epoch=on_epoch,
                          **fit_options(cfg, train))
    return RunResult(cfg, history, trainer, None if out_dir is None else Path(out_dir), complete)


def summarize(history: History, metric: str) -> tuple[float, float, int]:
    """(mean, sample std, n) of the final ``metric`` over members that did not diverge;
    the sd is NaN for a single member (:func:`lchannel.run.tables.mean_sd`)."""
    return mean_sd(v for v, d in zip(history.final(metric), history.diverged_at) if d is None)


# The CLI's result tables (kept under this name for callers of lchannel.run.single).
format_table = text_table


def pct(mean: float, sd: float) -> str:
    """``97.12 ± 0.31`` (percent), ``97.12 ± —`` for a single run (no sample sd), or
    ``diverged``."""
    return pm(mean, sd, lambda x: f"{100 * x:.2f}", missing="diverged")


def result_row(label: str, history: History) -> list[str]:
    """A row of the final table: the last column names the seeds that diverged, with the
    epoch and the first non-finite quantity (``seed 1 at epoch 7 (W^2)``), or ``0``."""
    tr = summarize(history, "train_acc")
    te = summarize(history, "test_acc")
    loss = summarize(history, "test_loss")
    div = divergence_summary((s, c) for _, s, c in history.diverged())
    return [label, pct(*tr[:2]), pct(*te[:2]), "—" if math.isnan(loss[0]) else f"{loss[0]:.4f}",
            f"{len(history.seeds)}", div or "0"]


def divergence_notes(label: str, history: History) -> list[str]:
    """One line per diverged seed for under the final table: the epoch, the update (over
    the run and within the epoch) and the first non-finite quantity of that step."""
    return [f"{label}, seed {s}: diverged at {divergence_text(c)}" for _, s, c in history.diverged()]


RESULT_HEADER = ["run", "train acc %", "test acc %", "test loss", "seeds", "diverged"]
