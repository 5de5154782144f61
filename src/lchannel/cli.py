"""The ``lchannel`` command line: train, compare, theory (and experiments).

Every option is validated before any work starts; a bad value exits with status 2 and a
message naming the option and the accepted values.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .channels import algorithm_names, label
from .config import TrainConfig
from .experiments import cli as experiments_cli
from .theory import cli as theory_cli

FIGURE1 = ["bp", "sbp", "rbp", "srbp", "bp-nof", "sbp-nof", "rbp-nof", "srbp-nof", "top"]


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _key_value(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        return k.strip(), json.loads(v)
    except json.JSONDecodeError:
        return k.strip(), v


def _topology(text: str):
    if text.strip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise argparse.ArgumentTypeError(f"--topology: invalid JSON mapping {text!r} ({err})") from None
    return text


def add_run_options(p: argparse.ArgumentParser, default_seeds: int) -> None:
    """Options shared by ``train`` and ``compare`` (they map onto TrainConfig fields)."""
    d = p.add_argument_group("data")
    d.add_argument("--dataset", default="mnist", help="mnist | synthetic (paper 2's f_k on the plane)")
    d.add_argument("--data-dir", default=None, help="folder with the data files (else $LCHANNEL_DATA_DIR, else ~/.cache/lchannel)")
    d.add_argument("--k", dest="synthetic_k", type=int, default=1, help="synthetic: k of f_k")
    d.add_argument("--n-train", type=int, default=4000, help="synthetic: training examples")
    d.add_argument("--n-test", type=int, default=1000, help="synthetic: test examples")
    d.add_argument("--subset", type=int, default=None, help="use only the first N training examples")
    n = p.add_argument_group("network")
    n.add_argument("--arch", type=_int_list, default=None, help="layer sizes, e.g. 784,100,100,100,100,10 (default per data set)")
    n.add_argument("--hidden", default="tanh", help="identity | logistic | tanh | relu")
    n.add_argument("--output", default=None, help="softmax | logistic | identity (default per data set)")
    n.add_argument("--init", default="glorot_normal", help="glorot_normal (the papers' scaled normal) | glorot_uniform")
    n.add_argument("--dropout", type=float, default=0.0, help="forward-channel dropout probability")
    c = p.add_argument_group("learning channel")
    c.add_argument("--derivative", default=None, help="all | local | none (default per algorithm)")
    c.add_argument("--feedback", default=None, help="feedback distribution: normal | uniform | sign | sparse")
    c.add_argument("--feedback-mean", type=float, default=None, help="non-zero mean of normal/uniform feedback")
    c.add_argument("--sparse-n", type=float, default=None, help="Sparse-n: expected non-zeros per source neuron")
    c.add_argument("--congruent", action="store_true", default=None,
                   help="feedback with the signs of the forward weights (section 3, Fact 4)")
    c.add_argument("--resample", default=None, choices=["zero_mean", "sign_concordant"],
                   help="redraw the feedback before every minibatch (section 4.2 items 1-2)")
    c.add_argument("--feedback-samples", type=int, default=None, metavar="K",
                   help="average the signals of K independent feedback channels (section 6.1)")
    c.add_argument("--per-synapse", action="store_true", default=None,
                   help="a different random feedback weight for every synapse (section 4.2 item 7)")
    c.add_argument("--topology", type=_topology, default=None,
                   help="mixed channel: chain | skip | cascade | JSON mapping {h: [k, ...]} of the layers feeding each hidden layer h")
    c.add_argument("--skip-layers", type=_int_list, default=None,
                   help="mixed channel: hidden layers fed directly by the output error (SRBP), e.g. 1,3")
    c.add_argument("--adapt-rate", type=float, default=None,
                   help="adaptive channels: learning-rate factor of the feedback (default 0.1 for arbp, 1 for asrbp)")
    c.add_argument("--sign-only", action="store_true", default=None, help="send only the sign of the signal (section 4.2 item 5)")
    c.add_argument("--magnitude-only", action="store_true", default=None,
                   help="send only the magnitude of the signal (section 4.2 item 6)")
    c.add_argument("--quantize-bits", type=int, default=None, help="quantize the error signal (eq. 19) to this many bits")
    c.add_argument("--quantize-alpha", type=float, default=None, help="scale α of the error quantizer (default 2^-3)")
    c.add_argument("--lc-dropout", type=float, default=None, help="dropout probability inside the learning channel")
    c.add_argument("--channel-opt", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="any other channel option (JSON value), e.g. feedback={\"scale\":0.5}; "
                        "a feedback mapping is merged with the feedback flags")
    o = p.add_argument_group("optimisation")
    o.add_argument("--lr", type=float, default=0.1)
    o.add_argument("--decay", type=float, default=1e-6, help="lr_t = lr / (1 + decay·t)")
    o.add_argument("--momentum", type=float, default=0.0)
    o.add_argument("--batch-size", type=int, default=100)
    o.add_argument("--epochs", type=int, default=100)
    o.add_argument("--frozen", type=_int_list, default=[], help="layers (1-based) that never change")
    o.add_argument("--update-bits", type=int, default=None, help="quantize each example's weight update (section 5.2)")
    o.add_argument("--update-alpha", type=float, default=2.0 ** -6)
    s = p.add_argument_group("seeds and output")
    s.add_argument("--seeds", type=_int_list, default=None, help="comma-separated seeds (one member each)")
    s.add_argument("--num-seeds", type=int, default=default_seeds, help="seeds 0..N-1 when --seeds is not given")
    s.add_argument("--data-seed", type=int, default=0, help="seed of the minibatch order")
    s.add_argument("--batch-order", default="shared", help="shared | per_member")
    s.add_argument("--train-metrics", default="running", help="running (during the epoch) | full (separate pass)")
    s.add_argument("--device", default="cpu")
    s.add_argument("--out", default=None, help="output folder")
    s.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(args, algorithm: str) -> TrainConfig:
    channel = {}
    fb = {}
    if args.feedback is not None:
        fb["distribution"] = args.feedback
    if args.feedback_mean is not None:
        fb["mean"] = args.feedback_mean
    if args.sparse_n is not None:
        fb["n"] = args.sparse_n
    if args.congruent:
        fb["congruent"] = True
    for key in ("derivative", "adapt_rate", "quantize_bits", "quantize_alpha", "lc_dropout", "resample",
                "feedback_samples", "per_synapse", "topology", "skip_layers", "sign_only", "magnitude_only"):
        v = getattr(args, key)
        if v is not None:
            channel[key] = v
    for key, v in args.channel_opt:
        if key == "feedback" and isinstance(v, dict):
            fb.update(v)
        elif key == "feedback" and isinstance(v, str):
            fb["distribution"] = v
        else:
            channel[key] = v
    if fb:
        channel["feedback"] = fb
    if args.num_seeds < 1:
        raise ValueError(f"--num-seeds must be >= 1, got {args.num_seeds}")
    seeds = args.seeds if args.seeds is not None else list(range(args.num_seeds))
    return TrainConfig.from_dict(dict(
        dataset=args.dataset, data_dir=args.data_dir, synthetic_k=args.synthetic_k, n_train=args.n_train,
        n_test=args.n_test, subset=args.subset, architecture=args.arch, hidden=args.hidden,
        output=args.output, init=args.init, algorithm=algorithm, channel=channel, lr=args.lr,
        decay=args.decay, momentum=args.momentum, batch_size=args.batch_size, epochs=args.epochs,
        seeds=seeds, data_seed=args.data_seed, batch_order=args.batch_order, dropout=args.dropout,
        frozen=args.frozen, update_bits=args.update_bits, update_alpha=args.update_alpha,
        train_metrics=args.train_metrics, device=args.device))


def _option_error(parser: argparse.ArgumentParser, err: Exception) -> None:
    parser.error(str(err))


def cmd_train(args, parser) -> int:
    from .accounting import channel_cost
    from .run import RESULT_HEADER, format_table, load_data, result_row, train_config

    try:
        cfg = config_from_args(args, args.algorithm)
    except ValueError as err:
        _option_error(parser, err)
    out = Path(args.out or f"runs/train-{cfg.algorithm}-{cfg.key()[:8]}")
    data = load_data(cfg)
    cost = channel_cost(cfg.sizes, cfg.algorithm, cfg.channel)
    print(f"{label(cfg.algorithm)} on {cfg.dataset}, A{cfg.sizes}, seeds {cfg.seeds}, {cfg.epochs} epochs -> {out}")
    print(f"learning-channel cost: {cost.describe()}")
    res = train_config(cfg, out, progress=not args.quiet, data=data)
    print(format_table([result_row(label(cfg.algorithm), res.history)], RESULT_HEADER))
    return 0


def cmd_compare(args, parser) -> int:
    from .plots import plot_accuracy
    from .run import RESULT_HEADER, format_table, load_data, result_row, train_config

    algorithms = args.algorithms.split(",") if args.algorithms else FIGURE1
    bad = [a for a in algorithms if a not in algorithm_names()]
    if bad:
        parser.error(f"--algorithms: {bad} not accepted; choose from {algorithm_names()}")
    try:
        cfgs = [config_from_args(args, a) for a in algorithms]
    except ValueError as err:
        _option_error(parser, err)
    out = Path(args.out or "runs/compare")
    data = load_data(cfgs[0])
    curves, rows = {}, []
    print(f"comparing {len(cfgs)} learning channels on {cfgs[0].dataset}, A{cfgs[0].sizes}, "
          f"seeds {cfgs[0].seeds}, {cfgs[0].epochs} epochs -> {out}")
    for cfg in cfgs:
        res = train_config(cfg, out / cfg.algorithm, progress=not args.quiet, data=data)
        curves[label(cfg.algorithm)] = res.history
        rows.append(result_row(label(cfg.algorithm), res.history))
    table = format_table(rows, RESULT_HEADER)
    print(table)
    (out / "comparison.txt").write_text(table + "\n")
    png = plot_accuracy(curves, out / "comparison.png",
                        title=f"{cfgs[0].dataset}: A{cfgs[0].sizes}, mean ± sd over {len(cfgs[0].seeds)} seeds")
    print(f"wrote {png} and {out / 'comparison.txt'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lchannel", description="The deep learning channel toolkit.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train one algorithm on one data set over E seeds")
    p.add_argument("--algorithm", default="bp", help=f"one of {algorithm_names()}")
    add_run_options(p, default_seeds=1)
    p.set_defaults(func=cmd_train, parser=p)

    p = sub.add_parser("compare", help="BP, SBP, RBP, SRBP, their no-f' variants and top-layer-only (paper 1, Figure 1)")
    p.add_argument("--algorithms", default=None, help=f"comma-separated (default: {','.join(FIGURE1)})")
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
