"""The ``lchannel`` command line: train, compare, theory (and experiments).

Every option is validated before any work starts; a bad value exits with status 2 and a
message naming the option and the accepted values.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import torch

from .channels import algorithm_names
from .data import DataError
from .experiments import cli as experiments_cli
from .experiments import planning
from .report.accounting import channel_cost
from .run import algorithms_cli
from .run.config import TrainConfig
from .run.options_cli import add_run_options, config_from_args
from .run.single import (
    CHECK_FOLDER,
    RESULT_HEADER,
    RunFolderError,
    divergence_notes,
    format_table,
    load_data,
    open_run_folder,
    result_row,
    run_id,
    train_config,
)
from .run.tables import single_run_note
from .theory import cli as theory_cli

FIGURE1 = ["bp", "sbp", "rbp", "srbp", "bp-nof", "sbp-nof", "rbp-nof", "srbp-nof", "top"]


def _fail(parser: argparse.ArgumentParser, err: Exception) -> None:
    """Exit with status 2 and the message alone (a user error, not a program error)."""
    parser.error(str(err))


def _load_data_or_fail(parser, cfg):
    try:
        return load_data(cfg)
    except DataError as err:
        _fail(parser, err)


def _open_folder(parser, out: Path, cfg: TrainConfig, restart: bool):
    """Check ``out`` before any work (:func:`lchannel.run.single.open_run_folder`) and return what
    ``train_config(opened=...)`` should take.  With ``--restart`` a complaint about the run
    the folder holds does not matter: ``train_config`` discards that run itself (only once
    the data has loaded, so a failed start never costs the old run)."""

    try:
        state = open_run_folder(out, cfg)
    except RunFolderError as err:
        if not restart:
            _fail(parser, err)
        return CHECK_FOLDER
    return CHECK_FOLDER if restart else state


def _train(parser, cfg: TrainConfig, out: Path, data, args, opened):
    """train_config with the command line's options; a folder problem is a usage error."""

    try:
        return train_config(cfg, out, progress=not args.quiet, data=data, restart=args.restart, desc=cfg.label,
                            opened=opened)
    except RunFolderError as err:
        _fail(parser, err)


def _say_complete(out: Path, epochs: int) -> None:
    print(f"{out}: already complete ({epochs} epochs); nothing was trained. Ask for more --epochs to "
          f"continue it, or pass --restart to train it again.")


def cmd_train(args, parser) -> int:
    try:
        cfg = config_from_args(args, args.algorithm)
        out = Path(args.out or f"runs/train-{cfg.algorithm}-{run_id(cfg)}")
        opened = _open_folder(parser, out, cfg, args.restart)  # folder problems before any work
    except ValueError as err:
        _fail(parser, err)
    data = _load_data_or_fail(parser, cfg)
    cost = channel_cost(cfg.sizes, cfg.algorithm, cfg.channel)  # conv nets: LayerSizes know their routes
    print(f"{cfg.label} on {cfg.dataset}, {cfg.arch_text}, seeds {cfg.seeds}, {cfg.epochs} epochs -> {out}")
    print(f"learning-channel cost: {cost.describe()}")
    res = _train(parser, cfg, out, data, args, opened)
    if res.already_complete:
        _say_complete(out, cfg.epochs)
    rows = [result_row(cfg.label, res.history)]
    print("\n".join(t for t in (format_table(rows, RESULT_HEADER), single_run_note(rows),
                                *divergence_notes(cfg.label, res.history)) if t))
    return 0


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1.5:
        return "about a minute" if minutes >= 0.75 else "under a minute"
    if minutes < 10:
        return f"about {round(2 * minutes) / 2:g} min"
    if minutes < 90:
        return f"about {int(minutes + 0.5)} min"
    hours = minutes / 60
    return f"about {hours:.1f} h" if hours < 48 else f"about {hours / 24:.1f} days"


def estimate_line(cfgs: list[TrainConfig], test_examples: int, opened: list | None = None) -> str | None:
    """One line saying roughly how long training ``cfgs`` one after another takes
    (:func:`lchannel.experiments.planning.estimate_seconds`: constants measured on a 2-core
    CPU, scaled by examples, epochs, seeds and multiply-adds); runs resumed from a
    checkpoint (``opened``: what :func:`_open_folder` returned) count their epochs left.
    None when nothing is left to train."""



    done = [s["epoch"] if isinstance(s, dict) else 0 for s in (opened or [None] * len(cfgs))]
    threads = torch.get_num_threads()
    seconds = sum(planning.estimate_seconds(c, test_examples, d, threads) for c, d in zip(cfgs, done))
    if seconds <= 0:
        return None
    seconds += planning.SECONDS_AT_START
    c0 = cfgs[0]
    n, seeds = len(cfgs), len(c0.seeds)
    what = f"{n} channel{'s' if n != 1 else ''} x {c0.epochs} epochs x {seeds} seed{'s' if seeds != 1 else ''}"
    if c0.subset is not None:
        what += f" on {c0.train_size:,} examples"
    if any(done):
        left = sum(max(0, c.epochs - d) for c, d in zip(cfgs, done))
        what += f" ({left} of {sum(c.epochs for c in cfgs)} channel-epochs left)"
    madds = planning.forward_multiply_adds(c0)
    scaled = "" if madds == planning.REFERENCE_MULTIPLY_ADDS else f", scaled to {madds:,} multiply-adds per example"
    two = f", {planning.TWO_THREAD_SPEEDUP:g}x less on {threads} threads" if threads >= 2 else ""
    basis = (f"estimate: {planning.SECONDS_PER_TRAINED_EXAMPLE * 1e6:.1f} µs per training example, epoch and seed "
             f"on one thread for A[784,100,100,100,100,10]{scaled}{two}")
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load >= cores:
        busy = f"; the machine is busy (load {load:.1f} on {cores} cores): expect longer"
        if threads > 1:
            # Measured: `compare --epochs 1` at load ~4.5 took 386 s with 2 threads, 69 s with one.
            busy += ", or set OMP_NUM_THREADS=1"
    else:
        busy = "; longer on a busy machine"
    return f"{what}: {_duration(seconds)} on a quiet 2-core CPU ({basis}{busy})"


def cmd_compare(args, parser) -> int:
    # lazy: report.plots loads matplotlib; only figure-drawing calls pay for it
    from .report.plots import (
        coincidence_note,
        coincident_lines,
        coinciding_runs,
        describe_runs,
        plot_accuracy,
    )

    algorithms = [a.strip() for a in args.algorithms.split(",")] if args.algorithms else FIGURE1
    bad = [a for a in algorithms if a not in algorithm_names()]
    if bad:
        parser.error(f"--algorithms: {bad} not accepted; choose from {algorithm_names()}")
    twice = sorted({a for a in algorithms if algorithms.count(a) > 1})
    if twice:
        parser.error(f"--algorithms: {twice} named more than once; name each learning channel once")
    try:
        cfgs = [config_from_args(args, a) for a in algorithms]
        ident = hashlib.sha256(",".join(run_id(c) for c in cfgs).encode()).hexdigest()[:10]
        out = Path(args.out or f"runs/compare-{ident}")
        # Every channel's folder is checked before the first one trains.
        opened = [_open_folder(parser, out / cfg.algorithm, cfg, args.restart) for cfg in cfgs]
    except ValueError as err:
        _fail(parser, err)
    data = _load_data_or_fail(parser, cfgs[0])
    curves, rows, complete = {}, [], 0
    c0 = cfgs[0]
    print(f"comparing {len(cfgs)} learning channels on {c0.dataset}, {c0.arch_text}, "
          f"seeds {c0.seeds}, {c0.epochs} epochs -> {out}")
    estimate = estimate_line(cfgs, len(data[1]), opened)
    if estimate:
        print(estimate, flush=True)
    for cfg, state in zip(cfgs, opened):
        res = _train(parser, cfg, out / cfg.algorithm, data, args, state)
        complete += res.already_complete
        curves[cfg.label] = res.history
        rows.append(result_row(cfg.label, res.history))
    if complete == len(cfgs):
        _say_complete(out, c0.epochs)
    # Channels that coincide by construction (BP (no f') and SBP (no f')), said where the
    # recorded numbers are identical too.
    coincide = coinciding_runs({cfg.label: cfg for cfg in cfgs})
    notes = [single_run_note(rows), coincidence_note(coincident_lines(curves, coincide), drawn=False),
             *(n for label, h in curves.items() for n in divergence_notes(label, h))]
    table = "\n".join([format_table(rows, RESULT_HEADER), *(n for n in notes if n)])
    print(table)
    (out / "comparison.txt").write_text(table + "\n")
    png = plot_accuracy(curves, out / "comparison.png", title=f"{c0.dataset}: learning channels (paper 1, Figure 1)",
                        caption=describe_runs(cfgs), coincide=coincide)
    print(f"wrote {png} and {out / 'comparison.txt'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lchannel", description="The deep learning channel toolkit.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train one algorithm on one data set over E seeds")
    p.add_argument("--algorithm", default="bp", help=f"one of {algorithm_names()} (default: bp)")
    add_run_options(p, default_seeds=1)
    p.set_defaults(func=cmd_train, parser=p)

    p = sub.add_parser("compare", help="BP, SBP, RBP, SRBP, their no-f' variants and top-layer-only (paper 1, Figure 1)")
    p.add_argument("--algorithms", default=None, help=f"comma-separated, each once (default: {','.join(FIGURE1)})")
    add_run_options(p, default_seeds=5)
    p.set_defaults(func=cmd_compare, parser=p)

    algorithms_cli.register(sub)  # the algorithm registry
    theory_cli.register(sub)  # theory vector-field / trajectory
    experiments_cli.register(sub)  # run, report, experiments
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "parser", None) is not None:
        return int(args.func(args, args.parser) or 0)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
