"""The run options on the command line (``lchannel train`` and ``compare``): flags generated
from :class:`~lchannel.run.config.TrainConfig`'s field declarations and from the channel
options declared once in :mod:`lchannel.channels.options`, read back into a validated
config; a config's error message is re-worded to name the flag the user typed.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ..channels import TRANSFORM_OPTIONS, split_name
from ..channels.options import OPTIONS
from .cliutil import finite_float, int_list, int_list_or_empty, key_value
from .config import Param, TrainConfig
from .params import Interval, IntList, Type


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
