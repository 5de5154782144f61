"""The ``lchannel`` command line: train, compare, theory (and experiments).

Every option is validated before any work starts; a bad value exits with status 2 and a
message naming the option and the accepted values.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from .cliutil import finite_float, int_list, int_list_or_empty, key_value
from .channels import algorithm_names, label
from .config import Param, TrainConfig
from .experiments import cli as experiments_cli
from .params import Interval, IntList, Type
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


# The learning channel's command-line spellings: flag -> (path in the channel table,
# value parser (None: a switch), stated default, help).  The values are validated by the
# channel pieces themselves (lchannel.channels), with messages naming the option.
CHANNEL_FLAGS: dict[str, tuple[tuple[str, ...], object, str, str]] = {
    "--derivative": (("derivative",), str, "per algorithm", "all | local | none: where f' multiplies the signal"),
    "--feedback": (("feedback", "distribution"), str, "normal",
                   "feedback distribution: normal | uniform | sign | sparse"),
    "--feedback-mean": (("feedback", "mean"), finite_float, "0", "non-zero mean of normal/uniform feedback"),
    "--sparse-n": (("feedback", "n"), finite_float, "none",
                   "Sparse-n: expected non-zeros per source neuron (density n / fan-in)"),
    "--congruent": (("feedback", "congruent"), None, "off",
                    "feedback with the signs of the forward weights (section 3, Fact 4)"),
    "--resample": (("resample",), str, "off",
                   "zero_mean | sign_concordant: redraw the feedback before every minibatch (section 4.2 items 1-2)"),
    "--feedback-samples": (("feedback_samples",), int, "1",
                           "average the signals of K independent feedback channels (section 6.1)"),
    "--per-synapse": (("per_synapse",), None, "off",
                      "a different random feedback weight for every synapse (section 4.2 item 7)"),
    "--topology": (("topology",), _topology, "per algorithm",
                   "mixed channel: chain | skip | cascade | JSON mapping {h: [k, ...]} of the layers feeding "
                   "each hidden layer h"),
    "--skip-layers": (("skip_layers",), int_list, "none",
                      "mixed channel: hidden layers fed directly by the output error (SRBP), e.g. 1,3"),
    "--adapt-rate": (("adapt_rate",), finite_float, "0.1 for arbp, 1 for asrbp",
                     "adaptive channels: learning-rate factor of the feedback"),
    "--rule": (("rule",), str, "hebbian",
               "adaptive channels: hebbian | stdp, the STDP-like rule of paper 2 section 3.6 (eq. 13-19)"),
    "--stdp-form": (("stdp_form",), str, "output",
                    "rule stdp: the channel's update, output (eq. 32, ΔC = η O ΔO) | target (eq. 19, ΔC = η T ΔO)"),
    "--stdp-scale": (("stdp_scale",), finite_float, "0.1",
                     "rule stdp: feedback strength ε during the two phases (feedback weights εC)"),
    "--adapt-derivative": (("adapt_derivative",), None, "off",
                           "Hebbian adaptation times the derivative of the channel's own transfer function "
                           "(needs --lc-activation; paper 2 section 4.1.3)"),
    "--sign-only": (("sign_only",), None, "off", "send only the sign of the signal (section 4.2 item 5)"),
    "--magnitude-only": (("magnitude_only",), None, "off",
                         "send only the magnitude of the signal (section 4.2 item 6)"),
    "--quantize-bits": (("quantize_bits",), int, "off", "quantize the error signal (eq. 19) to this many bits"),
    "--quantize-alpha": (("quantize_alpha",), finite_float, "2^-3, the paper's",
                         "scale α of the error quantizer (needs --quantize-bits)"),
    "--lc-dropout": (("lc_dropout",), finite_float, "0", "dropout probability inside the learning channel"),
    "--lc-activation": (("lc_activation",), str, "identity",
                        "transfer function in the learning channel: identity | tanh | logistic | relu (paper 2, "
                        "Figure 7 'lc-tanh'; Distinct channels: their neurons' transfer function)"),
    "--lc-width": (("lc_width",), _widths, "the forward widths",
                   "Distinct channels: neurons per channel layer, one number or one per hidden layer, e.g. 10 or "
                   "100,10,10,1 (paper 2, Figure 8)"),
    "--lc-init": (("lc_init",), str, "glorot_normal",
                  "Distinct channels: their weights' init, glorot_normal | small (std sqrt(1/(fan_in+fan_out)), "
                  "paper 2 Figure 14)"),
    "--lateral": (("lateral",), str, "random",
                  "Distinct channels: random lateral maps C' (and A') | identity (one-to-one neurons)"),
    "--forward-maps": (("forward_maps",), None, "off",
                       "Distinct channels: maps A' from forward to channel neurons (paper 2, Figure 5), needed "
                       "for adaptive=true"),
}


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
    declarations (:func:`lchannel.config.param`), plus the channel flags.  Options left out
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


def config_from_args(args, algorithm: str) -> TrainConfig:
    """The validated TrainConfig the parsed options describe.  Raises ValueError naming the
    option for a bad value, or for an option that does not apply to this run."""
    given = {name: getattr(args, name) for name in TrainConfig.fields() if hasattr(args, name)}
    channel: dict = {}
    for flag, (path, _, _, _) in CHANNEL_FLAGS.items():
        dest = _channel_dest(flag)
        if hasattr(args, dest):
            table = channel
            for part in path[:-1]:
                table = table.setdefault(part, {})
            table[path[-1]] = getattr(args, dest)
    for key, v in args.channel_opt:
        if key == "feedback" and isinstance(v, dict):
            channel.setdefault("feedback", {}).update(v)
        elif key == "feedback" and isinstance(v, str):
            channel.setdefault("feedback", {})["distribution"] = v
        else:
            channel[key] = v
    if args.num_seeds < 1:
        raise ValueError(f"--num-seeds: {args.num_seeds} is not accepted; expected an integer >= 1")
    if "seeds" not in given:
        given["seeds"] = list(range(args.num_seeds))
    params = TrainConfig.params()
    try:
        cfg = TrainConfig.from_dict({**given, "algorithm": algorithm, "channel": channel})
    except ValueError as err:
        # Messages name the config field; on the command line, name the flag the user typed.
        field, sep, rest = str(err).partition(": ")
        flag = params[field][1].cli if field in params and params[field][1].cli else None
        raise ValueError(f"{flag}{sep}{rest}" if flag and sep else str(err)) from None
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
    from .run import load_data

    try:
        return load_data(cfg)
    except DataError as err:
        _fail(parser, err)


def _open_folder(parser, out: Path, cfg: TrainConfig, restart: bool):
    """Check ``out`` before any work (:func:`lchannel.run.open_run_folder`) and return what
    ``train_config(opened=...)`` should take.  With ``--restart`` a complaint about the run
    the folder holds does not matter: ``train_config`` discards that run itself (only once
    the data has loaded, so a failed start never costs the old run)."""
    from .run import CHECK_FOLDER, RunFolderError, open_run_folder

    try:
        state = open_run_folder(out, cfg)
    except RunFolderError as err:
        if not restart:
            _fail(parser, err)
        return CHECK_FOLDER
    return CHECK_FOLDER if restart else state


def _train(parser, cfg: TrainConfig, out: Path, data, args, opened):
    """train_config with the command line's options; a folder problem is a usage error."""
    from .run import RunFolderError, train_config

    try:
        return train_config(cfg, out, progress=not args.quiet, data=data, restart=args.restart, desc=cfg.label,
                            opened=opened)
    except RunFolderError as err:
        _fail(parser, err)


def _say_complete(out: Path, epochs: int) -> None:
    print(f"{out}: already complete ({epochs} epochs); nothing was trained. Ask for more --epochs to "
          f"continue it, or pass --restart to train it again.")


def cmd_train(args, parser) -> int:
    from .accounting import channel_cost
    from .run import RESULT_HEADER, format_table, result_row, run_id

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
    print(format_table([result_row(cfg.label, res.history)], RESULT_HEADER))
    return 0


def cmd_compare(args, parser) -> int:
    from .plots import describe_runs, plot_accuracy
    from .run import RESULT_HEADER, format_table, result_row, run_id

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
    for cfg, state in zip(cfgs, opened):
        res = _train(parser, cfg, out / cfg.algorithm, data, args, state)
        complete += res.already_complete
        curves[cfg.label] = res.history
        rows.append(result_row(cfg.label, res.history))
    if complete == len(cfgs):
        _say_complete(out, c0.epochs)
    table = format_table(rows, RESULT_HEADER)
    print(table)
    (out / "comparison.txt").write_text(table + "\n")
    png = plot_accuracy(curves, out / "comparison.png", title=f"{c0.dataset}: learning channels (paper 1, Figure 1)",
                        caption=describe_runs(cfgs))
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
