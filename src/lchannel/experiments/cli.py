"""``lchannel run``, ``lchannel report`` and ``lchannel experiments list``.

    lchannel experiments list
    lchannel run table1 --epochs 1 --seeds 0,1 --subset 6000     # a quick look
    lchannel run figure9                                         # the paper's protocol
    lchannel run my-spec.toml --executor ray --ray-address auto
    lchannel report table1 --out results/table1

Every option is validated before any work starts; a bad value exits with status 2 and a
message naming the option and the accepted values.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..data import DataError
from ..engine.divergence import divergence_summary, divergence_text
from ..run.cliutil import DefaultsHelpFormatter, PathError, finite_float, writable_dir
from ..run.cliutil import int_list as _int_list
from ..run.tables import pm, single_run_note, text_table
from .executors import require_ray
from .planning import pack
from .results import collect
from .runner import DEFAULT_DB, DEFAULT_LEASE_TTL, EXECUTORS, resolve_device, run_sweep
from .settings import shared_settings
from .spec import Overrides, SpecError, load_spec, shipped_specs
from .store import ResultsStore, StoreError, run_id


DEVICES = "auto, cpu, cuda or cuda:N"
# What the shipped specs cover (`lchannel --help`, `lchannel experiments --help`).
SPECS_HELP = ("the shipped experiment specs: the experimental tables and figures of both papers (paper 1: MNIST, "
              "CIFAR-10; paper 2: MNIST, f_k, HIGGS)")


def _where_item(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected AXIS=LABEL like variant=Sparse-8, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v.strip()


def _where(args) -> dict:
    out: dict = {}
    for k, v in getattr(args, "where", None) or []:
        out.setdefault(k, []).append(v)
    return out


def _command_line() -> str:
    """This process's command line as typed (recorded in the store and quoted in reports)."""
    return "lchannel " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""


def _add_where(p: argparse.ArgumentParser) -> None:
    p.add_argument("--where", type=_where_item, action="append", default=[], metavar="AXIS=LABEL",
                   help="only the cells with this label on this axis (repeat for several), e.g. --where variant=Sparse-8")


def _add_overrides(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_argument_group(f"quick-look overrides ({what})")
    g.add_argument("--epochs", type=int, default=None, help="train this many epochs instead of the spec's")
    g.add_argument("--seeds", type=_int_list, default=None, help="comma-separated seeds instead of the spec's, e.g. 0,1")
    g.add_argument("--subset", type=int, default=None, help="use only the first N training examples")
    g.add_argument("--dataset", default=None, metavar="NAME",
                   help="train on this data set instead of the spec's, e.g. higgs16k (the shipped HIGGS subset) "
                        "for the HIGGS figures without the 2.6 GB file")


def _overrides(args) -> Overrides:
    return Overrides(args.epochs, tuple(args.seeds) if args.seeds is not None else None, args.subset,
                     args.dataset).validate()


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``run``, ``report`` and ``experiments`` to the main parser's sub-commands."""
    p = sub.add_parser("run", help="run an experiment spec (a shipped name or a .toml file) into the results store",
                       formatter_class=DefaultsHelpFormatter,
                       description="Expand SPEC's grid into runs (one per cell and seed), pack runs that differ only "
                                   "in seed into populations, train them in parallel and store every result in an "
                                   "SQLite database. Rerunning skips finished runs and resumes the others; "
                                   "several runners on one database share the work (leases).")
    p.add_argument("spec", metavar="SPEC", help="a shipped spec (see `lchannel experiments list`) or a path to a .toml spec")
    p.add_argument("--db", default=DEFAULT_DB, help="results database (created with its folder when missing)")
    p.add_argument("--executor", default="local", help=f"one of {', '.join(EXECUTORS)}")
    p.add_argument("--workers", type=int, default=None,
                   help="populations trained at once (default: CPU cores, capped by the populations; 1 on CUDA)")
    p.add_argument("--device", default="auto", help=f"{DEVICES} (auto: CUDA when available)")
    p.add_argument("--data-dir", default=None, help="data folder (else $LCHANNEL_DATA_DIR, else ~/.cache/lchannel)")
    p.add_argument("--no-pack", action="store_true", help="train every run alone instead of packing seeds into populations")
    p.add_argument("--no-pack-variants", action="store_true",
                   help="pack only the seeds of one cell, not cells that differ only in lr or feedback distribution")
    p.add_argument("--max-members", type=int, default=None, help="at most N seeds per population (memory limits)")
    p.add_argument("--no-alignment", action="store_true", help="do not record alignment angles")
    p.add_argument("--ray-address", default=None, help="Ray cluster address for --executor ray (default: start a local Ray)")
    p.add_argument("--checkpoints", default=None, help="checkpoint folder (default: next to the database)")
    p.add_argument("--lease-ttl", type=finite_float, default=DEFAULT_LEASE_TTL, metavar="SECONDS",
                   help="how long this runner's claim on its runs outlives its last heartbeat: another runner "
                        "takes over the runs of one that stopped after this long")
    p.add_argument("--dry-run", action="store_true", help="print the cells, runs and populations, run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_where(p)
    _add_overrides(p, "recorded with the results")
    p.set_defaults(func=cmd_run, parser=p)

    p = sub.add_parser("report", help="Markdown/CSV tables and PNG plots of a spec's stored results",
                       formatter_class=DefaultsHelpFormatter,
                       description="Render SPEC's results as report.md and report.csv (the layout of paper 1's "
                                   "Table 1: mean (sd) [seeds × epochs]) and PNG plots (accuracy per epoch and "
                                   "alignment angles, mean with a band).")
    p.add_argument("spec", metavar="SPEC", help="a shipped spec or a path to a .toml spec")
    p.add_argument("--db", default=DEFAULT_DB, help="results database")
    p.add_argument("--out", default=None, help="output folder (default results/report-SPEC)")
    p.add_argument("--metric", default=None, help="test_acc | train_acc | test_loss | train_loss (default: the spec's)")
    p.add_argument("--no-plots", action="store_true", help="tables only")
    _add_where(p)
    _add_overrides(p, "report exactly the runs made with these overrides")
    p.set_defaults(func=cmd_report, parser=p)

    p = sub.add_parser("experiments", help=SPECS_HELP, description=f"{SPECS_HELP[0].upper()}{SPECS_HELP[1:]}.",
                       formatter_class=DefaultsHelpFormatter)
    esub = p.add_subparsers(dest="experiments_command", metavar="{list,show}")
    lp = esub.add_parser("list", help="name, description, runs and epochs of every shipped spec",
                         formatter_class=DefaultsHelpFormatter)
    lp.set_defaults(func=cmd_list, parser=lp)
    sp = esub.add_parser("show", help="the settings shared by a spec's cells, and its cells with their own "
                                      "settings, config hashes, seeds and epochs",
                         formatter_class=DefaultsHelpFormatter)
    sp.add_argument("spec", metavar="SPEC", help="a shipped spec or a path to a .toml spec")
    _add_where(sp)
    _add_overrides(sp, "as `lchannel run` would apply them")
    sp.set_defaults(func=cmd_show, parser=sp)
    p.set_defaults(func=lambda args, parser: (parser.print_help(), 2)[1], parser=p)


def cmd_list(args, parser) -> int:
    rows = []
    for name in shipped_specs():
        spec = load_spec(name)
        cells = spec.cells()
        epochs = sorted({c.config.epochs for c in cells})
        rows.append([name, str(len(cells)), str(sum(len(c.config.seeds) for c in cells)),
                     "/".join(map(str, epochs)), spec.description])
    print(text_table(rows, ["name", "cells", "runs", "epochs", "description"], numbers_right=False))
    print("\nRun one: lchannel run NAME [--epochs N --seeds 0,1 --subset N]; "
          "its cells: lchannel experiments show NAME")
    return 0


def cmd_show(args, parser) -> int:
    spec = _load(parser, args.spec)
    try:
        cells = spec.cells(_overrides(args), _where(args))
    except SpecError as err:
        parser.error(str(err))
    print(f"{spec.name}: {spec.description}")
    if spec.source:
        print(f"source: {spec.source}")
    return _dry_run(spec, cells, args)


def _load(parser, text):
    try:
        return load_spec(text)
    except SpecError as err:
        parser.error(str(err))


def cmd_run(args, parser) -> int:
    spec = _load(parser, args.spec)
    if args.executor not in EXECUTORS:
        parser.error(f"--executor: {args.executor!r} is not accepted; expected one of {list(EXECUTORS)}")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers: {args.workers} is not accepted; expected an integer >= 1")
    if args.max_members is not None and args.max_members < 1:
        parser.error(f"--max-members: {args.max_members} is not accepted; expected an integer >= 1")
    if args.data_dir is not None and not args.data_dir.strip():
        # an unset shell variable ("--data-dir $DATA") would silently mean the default folder
        parser.error("--data-dir: an empty path is not accepted; omit the option to use $LCHANNEL_DATA_DIR "
                     "or ~/.cache/lchannel")
    if args.ray_address is not None and args.executor != "ray":
        parser.error(f"--ray-address: applies only to --executor ray (this run uses --executor {args.executor})")
    if not args.lease_ttl > 0:
        parser.error(f"--lease-ttl: {args.lease_ttl:g} is not accepted; expected a number of seconds > 0")
    if args.executor == "ray":
        try:
            require_ray()
        except SpecError as err:
            parser.error(str(err))
    try:
        overrides = _overrides(args)
        where = _where(args)
        cells = spec.cells(overrides, where)
        device = resolve_device(args.device)
    except SpecError as err:
        parser.error(str(err))
    if args.dry_run:
        return _dry_run(spec, cells, args)
    command = _command_line()
    try:
        res = run_sweep(spec, args.db, executor=args.executor, workers=args.workers, overrides=overrides,
                        device=device, data_dir=args.data_dir, packed=not args.no_pack,
                        pack_variants=not args.no_pack_variants,
                        alignment=False if args.no_alignment else None, progress=not args.quiet,
                        ray_address=args.ray_address, command=command, checkpoints=args.checkpoints,
                        where=where, max_members=args.max_members, malloc_tuning=True,
                        lease_ttl=args.lease_ttl)
    except (SpecError, DataError, PathError) as err:
        parser.error(str(err))
    except StoreError as err:
        parser.error(f"--db: {err}")
    _print_summary(spec, args, overrides, where)
    busy = f", {res.busy} being trained by another runner" if res.busy else ""
    print(f"{res.ran} runs computed, {res.skipped} already finished, {res.failed} failed{busy}, "
          f"{res.seconds:.1f} s -> {args.db}")
    if res.member_epochs:
        print(f"throughput: {res.throughput:.3g} member-epochs/s ({res.member_epochs} member-epochs, "
              f"{res.workers} worker{'s' if res.workers != 1 else ''} x {res.threads} thread"
              f"{'s' if res.threads != 1 else ''})")
    return 1 if res.failed else 0


def _dry_run(spec, cells, args) -> int:
    shared, differing = shared_settings(cells)
    if shared:
        print("settings shared by all cells (the others are TrainConfig's defaults, `lchannel train --help`):")
        width = max(map(len, shared))
        for k, v in shared.items():
            print(f"  {k:<{width}} = {v}")
    # Epochs have their own column.
    rows = [[c.title, ", ".join(f"{k}={v}" for k, v in sorted(d.items(), key=lambda kv: kv[0] != "algorithm")
                                if k != "epochs") or "—", c.key,
             ",".join(map(str, c.config.seeds)), str(c.config.epochs), "shortened" if c.shortened else "full"]
            for c, d in zip(cells, differing)]
    print(text_table(rows, ["cell", "settings of this cell", "config hash", "seeds", "epochs", "protocol"],
                     numbers_right=False))
    ids = {run_id(c.key, s) for c in cells for s in c.config.seeds}
    variants = not getattr(args, "no_pack_variants", False)  # `experiments show` has no such flag
    n_pop = len(pack(cells, ids, True, variants))
    print(f"{len(cells)} cells, {sum(len(c.config.seeds) for c in cells)} runs, {n_pop} populations when packed"
          + (f" ({len({c.key for c in cells})} without packing across variants)" if variants else ""))
    return 0


def _print_summary(spec, args, overrides, where) -> None:
    with ResultsStore(args.db) as store:
        results = collect(spec, store, overrides, where)
        rows, diverged = [], []
        for r in results:
            te = r.stats("test_acc")
            tr = r.stats("train_acc")
            fmt = lambda s: pm(s[0], s[1], lambda x: f"{100 * x:.2f}")  # "± —": one seed, no sd
            # diverged: which seeds, at which epoch, the first non-finite quantity ("0": none)
            rows.append([r.cell.title, fmt(tr), fmt(te), f"{len(r.done)}/{r.planned}", str(r.epochs),
                         divergence_summary(r.diverged()) or "0", str(r.count("failed"))])
            diverged += [f"  {r.cell.title}, seed {s}: {divergence_text(c)}" for s, c in r.diverged()]
    print(text_table(rows, ["cell", "train acc %", "test acc %", "seeds", "epochs", "diverged", "failed"]))
    note = single_run_note(rows)
    if note:
        print(note)
    if diverged:
        print("diverged (the first NaN/inf quantity of the training step):")
        print("\n".join(diverged))


def cmd_report(args, parser) -> int:
    from .report import write_report  # lazy: the report writer loads matplotlib
    spec = _load(parser, args.spec)
    if args.metric is not None and args.metric not in ("test_acc", "train_acc", "test_loss", "train_loss"):
        parser.error(f"--metric: {args.metric!r} is not accepted; "
                     "expected one of test_acc, train_acc, test_loss, train_loss")
    try:
        overrides = _overrides(args)
        where = _where(args)
        spec.cells(overrides, where)
    except SpecError as err:
        parser.error(str(err))
    if not args.db.strip():
        parser.error("--db: an empty path is not accepted; expected a results database file")
    if not Path(args.db).exists():
        parser.error(f"--db: {args.db!r} does not exist; run `lchannel run {args.spec} --db {args.db}` first")
    try:
        ResultsStore(args.db).close()  # a folder, a text file, another schema: say so before any work
        out = writable_dir(f"results/report-{spec.name}" if args.out is None else args.out, "--out")
    except StoreError as err:
        parser.error(f"--db: {err}")
    except PathError as err:
        parser.error(str(err))
    command = _command_line()
    rep = write_report(spec, args.db, out, overrides, args.metric, plots=not args.no_plots, where=where,
                       command=command)
    print(text_table(rep.rows, rep.header))
    print(f"wrote {rep.markdown}, {rep.csv} and {len(rep.pngs)} PNG{'s' if len(rep.pngs) != 1 else ''} in {out}")
    return 0
