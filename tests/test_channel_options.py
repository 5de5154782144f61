"""The learning channel's options are declared once (lchannel.channels.options): every
keyword a channel accepts has a declaration, the command line's flags come from them and
land where they say, and ``per_member`` agrees with the population protocol."""

import pytest

from lchannel.channels.options import OPTIONS, ChannelOption
from lchannel.cli import build_parser, config_from_args
from lchannel.run.options_cli import CHANNEL_FLAGS
from lchannel.experiments.spec_checks import channel_option_names
from lchannel.population.packing import PER_MEMBER


def test_every_accepted_keyword_is_declared_and_every_declaration_is_accepted():
    declared = {o.path[0] for o in OPTIONS}
    assert declared == set(channel_option_names())


def test_per_member_agrees_with_the_population_protocol():
    assert {"channel." + o.path[0] for o in OPTIONS if o.per_member} == {
        p.field for p in PER_MEMBER if p.field.startswith("channel.")}


def test_flags_are_generated_from_the_declarations():
    assert list(CHANNEL_FLAGS) == [o.cli_flag for o in OPTIONS]
    assert len(set(CHANNEL_FLAGS)) == len(OPTIONS)
    assert CHANNEL_FLAGS["--sparse-n"][0] == ("feedback", "n") and CHANNEL_FLAGS["--lc-dropout"][0] == ("lc_dropout",)
    with pytest.raises(ValueError, match="kind 'complex' is not one of"):
        ChannelOption(("x",), "complex", "0", "")


# One valid command line per option (the algorithm that accepts it, the flag's value, any
# other flags it needs) and the value the channel table must then hold at its path.
SAMPLES = {
    "derivative": ("rbp", "local", [], "local"),
    "feedback.distribution": ("rbp", "sparse", ["--sparse-n", "2"], "sparse"),
    "feedback.mean": ("rbp", "0.5", [], 0.5), "feedback.n": ("rbp", "8", ["--feedback", "sparse"], 8.0),
    "feedback.congruent": ("rbp", None, [], True), "resample": ("rbp", "zero_mean", [], "zero_mean"),
    "feedback_samples": ("rbp", "3", [], 3), "per_synapse": ("rbp", None, [], True),
    "topology": ("mixed", "skip", [], "skip"), "skip_layers": ("mixed", "1,3", [], [1, 3]),
    "projected": ("srbp", "target", [], "target"), "adapt_rate": ("arbp", "0.5", [], 0.5),
    "rule": ("arbp", "stdp", [], "stdp"), "stdp_form": ("arbp", "target", ["--rule", "stdp"], "target"),
    "stdp_scale": ("arbp", "0.2", ["--rule", "stdp"], 0.2),
    "adapt_derivative": ("arbp", None, ["--lc-activation", "tanh"], True),
    "sign_only": ("rbp", None, [], True), "magnitude_only": ("rbp", None, [], True),
    "quantize_bits": ("rbp", "3", [], 3), "quantize_alpha": ("rbp", "0.25", ["--quantize-bits", "3"], 0.25),
    "lc_dropout": ("rbp", "0.2", [], 0.2), "lc_activation": ("rbp", "tanh", [], "tanh"),
    "lc_width": ("distinct-rbp", "100,10,10,1", [], [100, 10, 10, 1]),
    "lc_init": ("distinct-rbp", "small", [], "small"), "lateral": ("distinct-rbp", "identity", [], "identity"),
    "forward_maps": ("distinct-rbp", None, [], True), "adaptive": ("distinct-rbp", None, ["--forward-maps"], True),
}


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.key)
def test_each_flag_lands_at_its_path(option):
    algorithm, text, others, want = SAMPLES[option.key]
    argv = ["train", "--algorithm", algorithm, option.cli_flag] + ([] if text is None else [text]) + others
    args = build_parser().parse_args(argv)
    table = config_from_args(args, algorithm).channel
    for part in option.path:
        table = table[part]
    assert table == want
