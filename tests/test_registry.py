"""One registry: every spelling of a run resolves to one canonical (name, options)."""

import pytest
import torch

from lchannel.channels import REGISTRY, algorithm_names, build_channel, canonicalize, label, named_form
from lchannel.run.config import TrainConfig
from lchannel.run.single import train_config

from helpers import batch, small_net

SIZES = (5, 7, 6, 4)

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.kernels]

SAME = [  # pairs of spellings of one run
    (("rbp-nof", {}), ("rbp", {"derivative": "none"})),
    (("arbp", {}), ("rbp", {"adaptive": True, "adapt_rate": 0.1})),  # Figure 2's 0.1
    (("asrbp", {}), ("srbp", {"adaptive": True})),
    (("asrbp", {}), ("srbp", {"adaptive": True, "adapt_rate": 1.0})),
    (("asrbp-nof", {}), ("srbp", {"adaptive": True, "derivative": "none"})),
    (("mixed", {"topology": "skip"}), ("srbp", {"derivative": "all"})),
    (("srbp", {"feedback": "normal", "lc_dropout": 0}), ("srbp", {"derivative": "local"})),
    (("rbp", {"quantize_bits": 3, "quantize_alpha": 2.0 ** -3}), ("rbp", {"quantize_bits": 3})),
]

DIFFERENT = [
    (("arbp", {}), ("rbp", {"adaptive": True})),  # adapt_rate 0.1 vs 1.0
    (("rbp", {}), ("rbp-nof", {})),
    (("srbp", {}), ("srbp", {"derivative": "all"})),
    (("mixed", {"skip_layers": [1]}), ("mixed", {"skip_layers": [2]})),
]

QUICK = dict(dataset="synthetic", synthetic_k=0, n_train=300, n_test=100, architecture=[2, 16, 16, 1],
             lr=0.5, decay=1e-4, batch_size=10, epochs=2, seeds=[0, 1])


@pytest.mark.parametrize("a,b", SAME)
def test_spellings_of_one_run_have_one_canonical_form_and_the_same_numbers(a, b):
    assert canonicalize(*a) == canonicalize(*b)
    runs = [train_config(TrainConfig.from_dict({**QUICK, "algorithm": n, "channel": o}), progress=False)
            for n, o in (a, b)]
    assert runs[0].history.metrics == runs[1].history.metrics
    for x, y in zip(runs[0].trainer.net.weights, runs[1].trainer.net.weights):
        assert torch.equal(x, y)


@pytest.mark.parametrize("a,b", DIFFERENT)
def test_different_runs_have_different_canonical_forms(a, b):
    assert canonicalize(*a) != canonicalize(*b)


@pytest.mark.parametrize("name", algorithm_names())
def test_every_name_canonicalizes_to_a_registered_name_that_builds(name):
    opts = dict(REGISTRY[name.removesuffix("-nof")].example)
    cname, copts = canonicalize(name, opts)
    assert cname in REGISTRY and canonicalize(cname, copts) == (cname, copts)  # idempotent
    X, T = batch(SIZES)
    signals = []
    for n, o in ((name, opts), (cname, copts)):  # the canonical channel sends the same signals
        net = small_net(SIZES)
        rec = net.forward(X)
        signals.append(build_channel(n, **o).bind(net).signals(rec, net.output_loss.error(T, rec.output)))
    for a, b in zip(*signals):
        assert (a is None and b is None) or torch.equal(a, b)


def test_canonicalize_refuses_what_build_channel_refuses():
    with pytest.raises(ValueError, match="does not accept"):
        canonicalize("bp", {"feedback": "sign"})
    with pytest.raises(ValueError, match="algorithm must be one of"):
        canonicalize("feedback-alignment", {})
    with pytest.raises(ValueError, match="'wm' .WM. is not available in the explicit engine.*noise"):
        canonicalize("wm", {})


def test_aliases_and_the_literature_s_relatives_are_spellings_of_the_engine_s_runs():
    # fa/dfa are rbp/srbp: one run, one key; brSF is paper 1's sign-concordant resampling
    assert canonicalize("fa", {}) == canonicalize("rbp", {}) and canonicalize("dfa-nof") == canonicalize("srbp-nof")
    assert canonicalize("brsf") == ("rbp", {"resample": "sign_concordant"}) == named_form("brsf")
    assert named_form("rbp", {"resample": "sign_concordant"}) == ("rbp", {"resample": "sign_concordant"})
    # DRTP is new: its runs are named by it
    assert canonicalize("drtp") == ("srbp", {"projected": "target"}) and named_form("drtp") == ("drtp", {})
    with pytest.raises(ValueError, match="means resample='signs'"):
        build_channel("frsf", resample="zero_mean")
    with pytest.raises(ValueError, match="projected='target'.*skip topology"):
        build_channel("rbp", projected="target")
    with pytest.raises(ValueError, match="projected must be one of"):
        build_channel("srbp", projected="both")


def test_labels_come_from_the_registry():
    assert label("arbp") == "ARBP" and label("rbp-nof") == "RBP (no f')"
    assert label("srbp", {"derivative": "none"}) == "SRBP (no f')"
    assert [label(n) for n in REGISTRY] == [a.label for a in REGISTRY.values()]


def test_a_rate_without_adaptation_changes_nothing_and_a_config_refuses_it():
    # Canonically the same run; a TrainConfig says the option would be silently ignored.
    assert canonicalize("rbp", {"adapt_rate": 0.5}) == canonicalize("rbp", {})
    with pytest.raises(ValueError, match="adapt_rate applies only to adaptive channels"):
        TrainConfig.from_dict({**QUICK, "algorithm": "rbp", "channel": {"adapt_rate": 0.5}})


@pytest.mark.parametrize("options", [{}, {"quantize_bits": 3}, {"lc_dropout": 0.3}, {"sign_only": True}])
def test_declared_coincidences_hold_bp_nof_is_sbp_nof(options):
    """BP (no f') and SBP (no f') are different names (and cache keys) for one channel: with
    no derivative anywhere, BP's chained signal (W^{h+1})ᵀ⋯(W^L)ᵀ(T − O) is SBP's skipped
    product.  The registry declares it (COINCIDES), figures and tables say it; the
    signals and the training runs really are identical, for every option both accept."""
    from lchannel.channels.canonical import COINCIDES, coincidence_reason, coincident_form

    assert set(COINCIDES) == {"sbp-nof"} and COINCIDES["sbp-nof"][0] == "bp-nof"
    assert canonicalize("bp-nof", options) != canonicalize("sbp-nof", options)  # stored keys stay apart
    assert coincident_form("sbp-nof", options) == coincident_form("bp", {**options, "derivative": "none"})
    assert coincident_form("sbp", options) != coincident_form("bp", options)  # with f' they differ
    assert "no f'" in coincidence_reason({"bp-nof", "sbp-nof"})
    X, T = batch(SIZES)
    signals = []
    for name in ("bp-nof", "sbp-nof"):
        net = small_net(SIZES)
        rec = net.forward(X)
        signals.append(build_channel(name, **options).bind(net).signals(rec, net.output_loss.error(T, rec.output)))
    for a, b in zip(*signals):
        assert (a is None and b is None) or torch.equal(a, b)
    runs = [train_config(TrainConfig.from_dict({**QUICK, "algorithm": n, "channel": options}), progress=False)
            for n in ("bp-nof", "sbp-nof")]
    assert runs[0].history.metrics == runs[1].history.metrics


def test_lchannel_algorithms_lists_the_registry(capsys):
    from lchannel.cli import main
    assert main(["algorithms"]) == 0
    out = capsys.readouterr().out
    for name, entry in REGISTRY.items():
        assert any(line.split()[0] == name and entry.label in line for line in out.splitlines()[2:] if line.strip())
    assert main(["algorithms", "--name", "dfa"]) == 0  # an alias shows its entry
    out = capsys.readouterr().out
    assert out.startswith("srbp: SRBP") and "converter: yes (mode 'dfa'" in out
    assert main(["algorithms", "--name", "wm"]) == 0
    assert "explicit engine: no: weight mirroring" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--name: algorithm must be one of"):
        main(["algorithms", "--name", "nope"])


def test_a_run_accepts_every_alias_and_says_why_a_converter_only_name_is_refused():
    assert TrainConfig(algorithm="fa").key() == TrainConfig(algorithm="rbp").key()
    assert TrainConfig(algorithm="dfa-nof").named() == ("srbp-nof", {})
    with pytest.raises(ValueError, match=r"algorithm: 'kp' is not accepted \(KP runs only in lchannel.torch.convert: "
                                         r"Kolen-Pollack decays"):
        TrainConfig(algorithm="kp").validate()
