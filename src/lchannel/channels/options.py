"""The learning channel's options, declared once: where each lives in a config's channel
table, what kind of value it takes, its default as people read it, its help, and whether
the members of one population may differ in it.

The command line's channel flags (``lchannel train --feedback sparse --sparse-n 8``) are
generated from :data:`OPTIONS`; the values are validated by the channel pieces that use
them (:func:`lchannel.channels.build_channel`, with messages naming the option), and a
spec's ``channel`` table accepts the same keys.  ``tests/test_channel_options.py`` checks
that every keyword a channel class accepts is declared here and that ``per_member`` agrees
with the population protocol (:data:`lchannel.population.packing.PER_MEMBER`).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The value kinds an option may take (the command line maps each to a parser).
KINDS = ("switch", "str", "int", "float", "int_list", "widths", "topology")


@dataclass(frozen=True)
class ChannelOption:
    """One option of the learning channel.

    path: its place in the channel table (``("feedback", "n")`` is ``channel.feedback.n``).
    kind: one of :data:`KINDS` (``switch``: true when given).
    default: the default as a reader sees it (``"per algorithm"``, ``"2^-3, the paper's"``).
    help: one line, citing the paper where the option comes from.
    flag: the command-line spelling when it is not ``--`` + the last path element with
        dashes (``--feedback`` sets ``feedback.distribution``).
    per_member: members of one population may differ in it (populations across variants).
    """

    path: tuple[str, ...]
    kind: str
    default: str
    help: str
    flag: str | None = None
    per_member: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"ChannelOption {self.key}: kind {self.kind!r} is not one of {KINDS}")

    @property
    def key(self) -> str:
        """The dotted name a spec and the results use (``feedback.n``)."""
        return ".".join(self.path)

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.path[-1].replace("_", "-")


_O = ChannelOption
OPTIONS: tuple[ChannelOption, ...] = (
    _O(("derivative",), "str", "per algorithm", "all | local | none: where f' multiplies the signal"),
    _O(("feedback", "distribution"), "str", "normal", "feedback distribution: normal | uniform | sign | sparse",
       flag="--feedback", per_member=True),
    _O(("feedback", "mean"), "float", "0", "non-zero mean of normal/uniform feedback", flag="--feedback-mean",
       per_member=True),
    _O(("feedback", "n"), "float", "none", "Sparse-n: expected non-zeros per source neuron (density n / fan-in)",
       flag="--sparse-n", per_member=True),
    _O(("feedback", "congruent"), "switch", "off", "feedback with the signs of the forward weights (section 3, Fact 4)"),
    _O(("resample",), "str", "off",
       "zero_mean | sign_concordant: redraw the feedback before every minibatch (section 4.2 items 1-2); signs: keep "
       "the magnitudes, take the forward weights' current signs (frSF)"),
    _O(("feedback_samples",), "int", "1", "average the signals of K independent feedback channels (section 6.1)"),
    _O(("per_synapse",), "switch", "off", "a different random feedback weight for every synapse (section 4.2 item 7)"),
    _O(("topology",), "topology", "per algorithm",
       "mixed channel: chain | skip | cascade | JSON mapping {h: [k, ...]} of the layers feeding each hidden layer h"),
    _O(("skip_layers",), "int_list", "none", "mixed channel: hidden layers fed directly by the output error (SRBP), "
       "e.g. 1,3"),
    _O(("projected",), "str", "error", "skip channels: what the output sends, error (SRBP) | target (DRTP, "
       "direct random target projection)"),
    _O(("adapt_rate",), "float", "0.1 for arbp, 1 for asrbp", "adaptive channels: learning-rate factor of the feedback",
       per_member=True),
    _O(("rule",), "str", "hebbian", "adaptive channels: hebbian | stdp, the STDP-like rule of paper 2 section 3.6 "
       "(eq. 13-19)"),
    _O(("stdp_form",), "str", "output",
       "rule stdp: the channel's update, output (eq. 32, ΔC = η O ΔO) | target (eq. 19, ΔC = η T ΔO)"),
    _O(("stdp_scale",), "float", "0.1", "rule stdp: feedback strength ε during the two phases (feedback weights εC)"),
    _O(("adapt_derivative",), "switch", "off", "Hebbian adaptation times the derivative of the channel's own transfer "
       "function (needs --lc-activation; paper 2 section 4.1.3)"),
    _O(("sign_only",), "switch", "off", "send only the sign of the signal (section 4.2 item 5)"),
    _O(("magnitude_only",), "switch", "off", "send only the magnitude of the signal (section 4.2 item 6)"),
    _O(("quantize_bits",), "int", "off", "quantize the error signal (eq. 19) to this many bits", per_member=True),
    _O(("quantize_alpha",), "float", "2^-3, the paper's", "scale α of the error quantizer (needs --quantize-bits)"),
    _O(("lc_dropout",), "float", "0", "dropout probability inside the learning channel", per_member=True),
    _O(("lc_activation",), "str", "identity", "transfer function in the learning channel: identity | tanh | logistic "
       "| relu (paper 2, Figure 7 'lc-tanh'; Distinct channels: their neurons' transfer function)"),
    _O(("lc_width",), "widths", "the forward widths", "Distinct channels: neurons per channel layer, one number or "
       "one per hidden layer, e.g. 10 or 100,10,10,1 (paper 2, Figure 8)"),
    _O(("lc_init",), "str", "glorot_normal", "Distinct channels: their weights' init, glorot_normal | small "
       "(std sqrt(1/(fan_in+fan_out)), paper 2 Figure 14)"),
    _O(("lateral",), "str", "random", "Distinct channels: random lateral maps C' (and A') | identity (one-to-one "
       "neurons)"),
    _O(("forward_maps",), "switch", "off", "Distinct channels: maps A' from forward to channel neurons (paper 2, "
       "Figure 5), needed for adaptive"),
    _O(("adaptive",), "switch", "off", "Distinct channels: the channel's own weights learn with the forward rule "
       "(paper 2 eq. 12; needs --forward-maps)"),
)
