"""The ``lchannel`` command line: train, compare, theory (and experiments).

Every option is validated before any work starts; a bad value exits with status 2 and a
message naming the option and the accepted values.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

from .run.cliutil import finite_float, int_list, int_list_or_empty, key_value
from .channels import algorithm_names, label
from .channels.options import OPTIONS
from .run.config import Param, TrainConfig
from .experiments import cli as experiments_cli
from .run.params import Interval, IntList, Type
from .run import algorithms_cli
from .theory import cli as theory_cli

FIGURE1 = ["bp", "sbp", "rbp", "srbp", "bp-nof", "sbp-nof", "rbp-nof", "srbp-nof", "top"]


def _topology(text: str):
    if text.strip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise argparse.ArgumentTypeError(f"--topology: invalid JSON mapping {text!r} ({err})") from None
    return text


def _widths(text: str):
    """``"10"`` -> 10 (every hidden layer), ``"100,10,10,1"`` -> a list (one per hidden layer)."""
    widths = int_list(text)
    return widths[0] if len(widths) == 1 else widths


# The value parser of each kind of channel option (None: a switch); the options themselves,
# with their defaults and help, are declared once in lchannel.channels.options.  The values
# are validated by the channel pieces (lchannel.channels), with messages naming the option.
_PARSERS = {"switch": None, "str": str, "int": int, "float": finite_float, "int_list": int_list,
            "widths": _widths, "topology": _topology}
# flag -> (path in the channel table, value parser, stated default, help)
CHANNEL_FLAGS: dict[str, tuple[tuple[str, ...], object, str, str]] = {
    o.cli_flag: (o.path, _PARSERS[o.kind], o.default, o.help) for o in OPTIONS}


def _channel_dest(flag: str) -> str:
    """The namespace attribute of a channel flag (kept apart from TrainConfig's fields)."""
    return "ch_" + flag[2:].replace("-", "_")


def architecture_arg(text: str) -> list[int] | str:
    """``--arch``: layer sizes ``784,100,10`` (or ``A[784,100,10]``) as a list, anything
    with letters (a conv architecture such as ``conv64k5-pool3s2-dense10``) as the string,
    checked by the config against the data set's image shape."""
    s = text.strip()
    inner = s[2:-1] if s.startswith("A[") and s.endswith("]") else s
    if any(ch.isalpha() for ch in inner):
        return s
    return int_list(inner)


def _parser_for(p: Param):
    """The argparse type that reads a field's value, from its first non-null constraint."""
    c = next(c for c in p.constraints if c is not None)
    if p.cli == "--arch":
        return architecture_arg
    if isinstance(c, IntList):
        return int_list_or_empty if c.min_len == 0 else int_list
    if isinstance(c, Interval):
        return int if c.kind is int else finite_float
    if isinstance(c, Type) and c.type_ is bool:
        return true_false
    return str


def true_false(text: str) -> bool:
    """``true``/``false`` (also yes/no, 1/0) for a boolean option."""
    v = text.strip().lower()
    if v in ("true", "yes", "1"):
        return True
    if v in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _default_text(name: str, p: Param) -> str:
    if p.default_text is not None:
        return p.default_text
    return str(TrainConfig.default(name))


def add_run_options(parser: argparse.ArgumentParser, default_seeds: int) -> None:
    """Options shared by ``train`` and ``compare``, generated from TrainConfig's field
    declarations (:func:`lchannel.run.config.param`), plus the channel flags.  Options left out
    stay out of the namespace (argparse.SUPPRESS), so the config knows what was given."""
    groups: dict[str, argparse._ArgumentGroup] = {}

    def group(name):
        if name not in groups:
            groups[name] = parser.add_argument_group(name)
        return groups[name]

    for name, (_, p) in TrainConfig.params().items():
        if p.cli is None:
            continue
        if any(isinstance(c, Type) and c.type_ is bool for c in p.constraints):
            # A switch: --augment / --no-augment.
            group(p.group).add_argument(p.cli, dest=name, action=argparse.BooleanOptionalAction,
                                        default=argparse.SUPPRESS, help=f"{p.help} (default: {_default_text(name, p)})")
            continue
        group(p.group).add_argument(p.cli, dest=name, type=_parser_for(p), default=argparse.SUPPRESS,
                                    metavar=p.metavar, help=f"{p.help} (default: {_default_text(name, p)})")
    c = group("learning channel")
    for flag, (path, parse, default, help_) in CHANNEL_FLAGS.items():
        dest = _channel_dest(flag)
        if parse is None:
            c.add_argument(flag, dest=dest, action="store_true", default=argparse.SUPPRESS,
                           help=f"{help_} (default: {default})")
        else:
            c.add_argument(flag, dest=dest, type=parse, default=argparse.SUPPRESS, help=f"{help_} (default: {default})")
    c.add_argument("--channel-opt", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="any other channel option (JSON value), e.g. feedback={\"scale\":0.5}; "
                        "a feedback mapping is merged with the feedback flags (default: none)")
    s = group("seeds and output")
    s.add_argument("--num-seeds", type=int, default=default_seeds,
                   help=f"seeds 0..N-1 when --seeds is not given (default: {default_seeds})")
    s.add_argument("--out", default=None,
                   help="output folder (default: runs/<command>-<algorithm>-<run id>, a folder per run)")
    s.add_argument("--restart", action="store_true",
                   help="discard what --out holds (a different, unfinished or corrupt run) and start over "
                        "(default: resume the run it holds)")
    s.add_argument("--quiet", action="store_true", help="no progress bar (default: off)")


def _channel_options(args) -> list[tuple[str, tuple[str, ...], object]]:
    """``(what the user typed, path in the channel table, value)`` of every channel option
    given: the channel flags, then each ``--channel-opt KEY=VALUE`` (a feedback mapping
    merges with the feedback flags, a feedback string is the distribution)."""
    out = []
    for flag, (path, _, _, _) in CHANNEL_FLAGS.items():
        if hasattr(args, _channel_dest(flag)):
            out.append((flag, path, getattr(args, _channel_dest(flag))))
    for key, v in args.channel_opt:
        path = ("feedback", "distribution") if key == "feedback" and isinstance(v, str) else (key,)
        out.append((f"--channel-opt {key}", path, v))
    return out


def _channel_table(options) -> dict:
    """The config's channel table from :func:`_channel_options`' entries."""
    channel: dict = {}
    for _, path, v in options:
        table = channel
        for part in path[:-1]:
            table = table.setdefault(part, {})
        if path == ("feedback",) and isinstance(v, dict):
            table.setdefault("feedback", {}).update(v)
        else:
            table[path[-1]] = v
    return channel


# A list of channel option names in a message, e.g. "['feedback']" or "['quantize_bits', 'lc_dropout']".
_OPTION_LIST = re.compile(r"\[('[A-Za-z_]+'(?:, '[A-Za-z_]+')*)?\]")
_UNKNOWN_OPTIONS = re.compile(r"^algorithm '([^']+)' does not accept the option\(s\) (\[[^]]*\]); accepted: (\[[^]]*\])$")


def _names(listed: str) -> list[str]:
    return re.findall(r"'([A-Za-z_]+)'", listed)


def _flags_for_keys(keys, options) -> list[str]:
    """The options given (flags as typed) that set one of the channel table's ``keys``;
    the shortcut options (sign_only, quantize_bits, ...) stand for ``transforms``."""
    from .channels import TRANSFORM_OPTIONS

    keys = set(keys)
    return [label for label, path, _ in options
            if path[0] in keys or ("transforms" in keys and path[0] in TRANSFORM_OPTIONS)]


def _cause(message: str, options, attempt) -> list[str]:
    """The channel options given that cause ``message``: those a listed option name in the
    message stands for, else a smallest set whose options still raise the same message
    when every other channel option is left out (``attempt(options)``: the message of the
    ValueError the config raises with these options, or None)."""
    listed = _OPTION_LIST.search(message)
    if listed:
        flags = _flags_for_keys(_names(listed.group(0)), options)
        if flags:
            return flags
    if attempt([]) == message:
        return []  # not a channel option's doing
    keep = list(options)
    for option in list(keep):
        rest = [o for o in keep if o is not option]
        if attempt(rest) == message:
            keep = rest
    return [label for label, _, _ in keep]


def _flag_text(message: str, flags: list[str], options) -> str:
    """``message`` (a channel's, naming config keys) as the command line says it: naming
    the flags the user typed (``flags``, its cause) and the flags for other options."""
    from .channels import split_name

    text = message.removeprefix("channel: ")
    if all(f.startswith("--channel-opt ") for f in flags):
        return f"{', '.join(flags)}: {text}"  # the user typed the channel table's own keys
    unknown = _UNKNOWN_OPTIONS.match(text)
    if unknown:
        name, _, accepted = unknown.groups()
        verb = "does" if len(flags) == 1 else "do"
        if split_name(name)[0] == "top":
            return (f"{' and '.join(flags)} {verb} not apply to algorithm {name!r}: only the output layer learns, "
                    f"and no channel option applies")
        names = [k for k in _names(accepted) if k != "transforms"]
        accepts = [flag for flag, (path, _, _, _) in CHANNEL_FLAGS.items() if path[0] in names]
        others = [k for k in names if not any(CHANNEL_FLAGS[f][0][0] == k for f in accepts)]
        accepts += [f"--channel-opt {k}=..." for k in others]
        return f"{' and '.join(flags)} {verb} not apply to algorithm {name!r}; it takes {', '.join(accepts)}"
    listed = _OPTION_LIST.search(text)
    if listed and _flags_for_keys(_names(listed.group(0)), options):
        text = text.replace(listed.group(0), " and ".join(flags), 1)
        if len(flags) == 1:
            text = text.replace(" do not apply", " does not apply", 1)
    # Config names -> flags: "quantize_alpha needs quantize_bits", "feedback n applies ...",
    # "quantize bits must be ...".  A plain word (rule, derivative) only where the message
    # starts with it and that flag is the cause.
    for flag, (path, _, _, _) in sorted(CHANNEL_FLAGS.items(), key=lambda kv: -len(" ".join(kv[1][0]))):
        spoken = " ".join(p.replace("_", " ") for p in path)
        written = "_".join(path)
        for name in dict.fromkeys((written, spoken, " ".join(path))):
            if " " in name or "_" in name:
                text = re.sub(rf"(?<![\w'-]){re.escape(name)}(?![\w'-])", flag, text)
            elif flag in flags and re.match(rf"{re.escape(name)}\b", text):
                text = flag + text[len(name):]
    if not any(f in text for f in flags):
        text = f"{', '.join(flags)}: {text}"
    return text


def config_from_args(args, algorithm: str) -> TrainConfig:
    """The validated TrainConfig the parsed options describe.  Raises ValueError naming the
    option for a bad value, or for an option that does not apply to this run."""
    given = {name: getattr(args, name) for name in TrainConfig.fields() if hasattr(args, name)}
    options = _channel_options(args)
    if args.num_seeds < 1:
        raise ValueError(f"--num-seeds: {args.num_seeds} is not accepted; expected an integer >= 1")
    if "seeds" not in given:
        given["seeds"] = list(range(args.num_seeds))
    params = TrainConfig.params()

    def attempt(opts) -> str | None:
        try:
            TrainConfig.from_dict({**given, "algorithm": algorithm, "channel": _channel_table(opts)})
        except ValueError as err:
            return str(err)
        return None

    try:
        cfg = TrainConfig.from_dict({**given, "algorithm": algorithm, "channel": _channel_table(options)})
    except ValueError as err:
        # Messages name the config field; on the command line, name the flag the user typed.
        message = str(err)
        field, sep, rest = message.partition(": ")
        flag = params[field][1].cli if field in params and params[field][1].cli else None
        if flag and sep:
            raise ValueError(f"{flag}{sep}{rest}") from None
        # A channel option's message names its key in the channel table (feedback,
        # quantize_bits, ...): find the options given that cause it, and name their flags.
        cause = _cause(message, options, attempt) if options else []
        raise ValueError(_flag_text(message, cause, options) if cause else message) from None
    for name in given:
        p = params[name][1]
        if p.applies is not None and not p.applies[0](cfg):
            raise ValueError(f"{p.cli}: does not apply here: {p.applies[1]}")
    if cfg.batch_size > cfg.train_size:
        # A quick-look subset inside a spec may be smaller than its minibatch (one batch per
        # epoch); on the command line both numbers are the user's own, so say it.
        raise ValueError(f"--batch-size: {cfg.batch_size} is larger than the {cfg.train_size} training examples "
                         f"(--subset {cfg.subset}); choose a smaller --batch-size or a larger --subset")
    if cfg.data_dir is not None and not Path(cfg.data_dir).expanduser().is_dir():
        raise ValueError(f"--data-dir: folder {cfg.data_dir!r} does not exist")
    return cfg


def _fail(parser: argparse.ArgumentParser, err: Exception) -> None:
    """Exit with status 2 and the message alone (a user error, not a program error)."""
    parser.error(str(err))


def _load_data_or_fail(parser, cfg):
    from .data import DataError
    from .run.single import load_data

    try:
        return load_data(cfg)
    except DataError as err:
        _fail(parser, err)


def _open_folder(parser, out: Path, cfg: TrainConfig, restart: bool):
    """Check ``out`` before any work (:func:`lchannel.run.single.open_run_folder`) and return what
    ``train_config(opened=...)`` should take.  With ``--restart`` a complaint about the run
    the folder holds does not matter: ``train_config`` discards that run itself (only once
    the data has loaded, so a failed start never costs the old run)."""
    from .run.single import CHECK_FOLDER, RunFolderError, open_run_folder

    try:
        state = open_run_folder(out, cfg)
    except RunFolderError as err:
        if not restart:
            _fail(parser, err)
        return CHECK_FOLDER
    return CHECK_FOLDER if restart else state


def _train(parser, cfg: TrainConfig, out: Path, data, args, opened):
    """train_config with the command line's options; a folder problem is a usage error."""
    from .run.single import RunFolderError, train_config

    try:
        return train_config(cfg, out, progress=not args.quiet, data=data, restart=args.restart, desc=cfg.label,
                            opened=opened)
    except RunFolderError as err:
        _fail(parser, err)


def _say_complete(out: Path, epochs: int) -> None:
    print(f"{out}: already complete ({epochs} epochs); nothing was trained. Ask for more --epochs to "
          f"continue it, or pass --restart to train it again.")


def cmd_train(args, parser) -> int:
    from .report.accounting import channel_cost
    from .run.single import RESULT_HEADER, divergence_notes, format_table, result_row, run_id
    from .run.tables import single_run_note

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
    import os

    import torch

    from .experiments import planning

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
    from .report.plots import coincidence_note, coincident_lines, coinciding_runs, describe_runs, plot_accuracy
    from .run.single import RESULT_HEADER, divergence_notes, format_table, result_row, run_id
    from .run.tables import single_run_note

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
