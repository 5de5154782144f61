"""Paper 2, sections 2-4.1: non-linear (lc-tanh), Distinct and dropped-out learning
channels (Figures 4-9).  Closed forms, the equivalences with BP/RBP/SRBP, eq. 12's
adaptation with the forward rule object, state, CLI and specs."""

import pytest
import torch

from lchannel.report.alignment import alignment_angles
from lchannel.channels import build_channel, canonicalize
from lchannel.cli import build_parser, config_from_args
from lchannel.run.config import TrainConfig
from lchannel.experiments import load_spec
from lchannel.engine.nets import Network
from lchannel.engine.plasticity import HEBBIAN, SGD
from lchannel.run.single import train_config

from helpers import batch, one_step_updates

SIZES = [5, 7, 6, 4]  # L = 3 weight layers: hidden layers 1 and 2


def net64(sizes=SIZES, seeds=(0, 1), hidden="tanh"):
    return Network(sizes, hidden=hidden, seeds=list(seeds), dtype=torch.float64)


def data64(sizes=SIZES, B=8):
    X, T = batch(sizes, B=B)
    return X.double(), T.double()


def signals(net, ch, X, T):
    rec = net.forward(X)
    e = net.output_loss.error(T, rec.output)
    return rec, e, ch.signals(rec, e)


# -- lc-tanh: a non-linear Conjoined channel (section 4.1.1, Figure 7) ----------------------
def test_lc_tanh_goes_through_tanh_before_the_local_derivative_and_travels_on():
    X, T = data64()
    net = net64()
    rec, e, I = signals(net, build_channel("bp", lc_activation="tanh").bind(net), X, T)
    I2 = torch.tanh(e @ net.W(3)) * rec.fprime(2)  # f'(S^2) ⊙ tanh(J^2)
    torch.testing.assert_close(I[2], I2)
    torch.testing.assert_close(I[1], torch.tanh(I2 @ net.W(2)) * rec.fprime(1))  # BP: I^2 travels on
    ch = build_channel("srbp", lc_activation="tanh").bind(net)
    _, _, I = signals(net, ch, X, T)
    for h in (1, 2):
        torch.testing.assert_close(I[h], torch.tanh(e @ ch.C[(h, 3)].transpose(1, 2)) * rec.fprime(h))
    ch = build_channel("rbp", lc_activation="logistic").bind(net)
    _, _, I = signals(net, ch, X, T)
    J2 = torch.sigmoid(e @ ch.C[(2, 3)].transpose(1, 2))
    torch.testing.assert_close(I[1], torch.sigmoid((J2 * rec.fprime(2)) @ ch.C[(1, 2)].transpose(1, 2)) * rec.fprime(1))


def test_lc_activation_identity_is_the_linear_channel_and_bad_names_are_refused():
    assert canonicalize("rbp", {"lc_activation": "identity"}) == canonicalize("rbp", {})
    for name in ("rbp", "distinct-rbp"):
        with pytest.raises(ValueError, match="lc_activation must be one of"):
            build_channel(name, lc_activation="swish")


# -- Distinct channels (Figures 4-6, 8) --------------------------------------------------------
def test_distinct_closed_form_with_random_lateral_maps_and_tanh_neurons():
    X, T = data64()
    net = net64()
    for name, chained in (("distinct-rbp", True), ("distinct-srbp", False)):
        ch = build_channel(name, lc_width=[3, 2], lc_activation="tanh").bind(net)
        rec, e, I = signals(net, ch, X, T)
        L2 = torch.tanh(e @ ch.D(2, 3).transpose(1, 2))  # (E, B, 2)
        torch.testing.assert_close(I[2], (L2 @ ch.lateral_map(2).transpose(1, 2)) * rec.fprime(2))
        U1 = L2 @ ch.D(1, 2).transpose(1, 2) if chained else e @ ch.D(1, 3).transpose(1, 2)
        torch.testing.assert_close(I[1], (torch.tanh(U1) @ ch.lateral_map(1).transpose(1, 2)) * rec.fprime(1))
        assert ch.lateral_map(1).shape == (2, 7, 3) and ch.D(2, 3).shape == (2, 2, 4)
        assert I[1].shape == (2, 8, 7)


def _copy_transposed_forward(ch, net):
    for h in range(1, net.L):
        ch.D(h, h + 1).copy_(net.W(h + 1).transpose(1, 2))


def test_distinct_with_transposed_forward_weights_and_identity_maps_is_bp_or_sbp():
    """Identity C′, linear channel neurons, widths = forward widths, D^{h,h+1} = (W^{h+1})ᵀ:
    BP's updates when the derivatives travel (the Twin case), SBP's with only the local one."""
    X, T = data64()
    ref = {n: one_step_updates(net64(), build_channel(n), X, T) for n in ("bp", "sbp")}
    for derivative, want in (("all", "bp"), ("local", "sbp")):
        net = net64()
        ch = build_channel("distinct-rbp", lateral="identity", derivative=derivative).bind(net)
        _copy_transposed_forward(ch, net)
        for a, b in zip(one_step_updates(net, ch, X, T), ref[want]):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,conjoined,derivative", [("distinct-rbp", "rbp", "all"),
                                                        ("distinct-rbp", "rbp", "local"),
                                                        ("distinct-srbp", "srbp", "local"),
                                                        ("distinct-rbp", "rbp", "none")])
def test_distinct_with_identity_lateral_maps_is_rbp_or_srbp(name, conjoined, derivative):
    X, T = data64()
    net_c, net_d = net64(), net64()
    conj = build_channel(conjoined, derivative=derivative).bind(net_c)
    dist = build_channel(name, lateral="identity", derivative=derivative).bind(net_d)
    for (h, k), C in conj.C.items():
        dist.D(h, k).copy_(C)
    for a, b in zip(one_step_updates(net_d, dist, X, T), one_step_updates(net_c, conj, X, T)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_distinct_weights_are_scaled_normal_or_small():
    net = Network([100, 300, 300, 10], seeds=[0])
    glorot = build_channel("distinct-rbp", lc_width=300).bind(net).D(1, 2)
    small = build_channel("distinct-rbp", lc_width=300, lc_init="small").bind(Network([100, 300, 300, 10], seeds=[0]))
    std = (2.0 / 600) ** 0.5
    assert abs(glorot.std().item() - std) / std < 0.02
    assert abs(small.D(1, 2).std().item() - std / 2 ** 0.5) / std < 0.02
    assert small.lateral_map(1).shape == (1, 300, 300)


def test_distinct_options_are_checked_and_named():
    cases = [
        (dict(lc_width=0), "lc_width must be an integer >= 1"),
        (dict(lc_init="he"), "lc_init must be one of"),
        (dict(lateral="sparse"), "lateral must be one of"),
        (dict(adaptive=True), "adaptive=true needs forward_maps=true"),
        (dict(derivative="all"), "derivative='all' .* lateral='identity'"),
        (dict(forward_maps="yes"), "forward_maps must be true or false"),
        (dict(feedback="sign"), "does not accept the option"),
    ]
    for opts, needle in cases:
        with pytest.raises(ValueError, match=needle):
            build_channel("distinct-rbp", **opts)
    with pytest.raises(ValueError, match="lc_width: .* 3 widths, but the network .* has 2 hidden layers"):
        build_channel("distinct-rbp", lc_width=[4, 4, 4]).check(SIZES)
    with pytest.raises(ValueError, match="lc_width must be the forward widths"):
        build_channel("distinct-srbp", lateral="identity", lc_width=3).check(SIZES)
    with pytest.raises(ValueError, match="lc_width"):
        TrainConfig.from_dict(dict(algorithm="distinct-rbp", channel={"lc_width": [100, 10]}))


def test_distinct_channel_dropout_is_unbiased_and_a_dropped_neuron_passes_nothing_down():
    X, T = data64(B=4)
    net = net64(seeds=[0])
    plain = build_channel("distinct-srbp", lc_width=3).bind(net)
    drop = build_channel("distinct-srbp", lc_width=3, lc_dropout=0.5).bind(net64(seeds=[0]))
    _, _, ref = signals(net, plain, X, T)
    rec = net.forward(X)
    e = net.output_loss.error(T, rec.output)
    mean = sum(drop.signals(rec, e)[1] for _ in range(4000)) / 4000
    torch.testing.assert_close(mean, ref[1], rtol=0.1, atol=0.02 * ref[1].abs().max().item())
    # Chained, one neuron per layer: when layer 2's neuron is dropped, layer 1 gets nothing.
    ch = build_channel("distinct-rbp", lc_width=1, lc_dropout=0.5).bind(net64(seeds=[0]))
    seen = 0
    for _ in range(20):
        I = ch.signals(rec, e)
        dead = (I[2] == 0).all(-1)  # (E, B): examples whose layer-2 channel neuron was dropped
        assert torch.all(I[1][dead] == 0)
        seen += int(dead.sum())
    assert seen > 0


def test_adaptive_distinct_uses_the_forward_rule_object_and_is_arbp_with_identity_maps():
    """eq. 12 with A′ = C′ = I, linear neurons, derivatives travelling: ΔD^{h,h+1} is
    (ΔW^{h+1})ᵀ, so D − Wᵀ stays what it was (paper 2, Theorem 7), as for ARBP."""
    X, T = data64(B=16)
    net = net64()
    ch = build_channel("distinct-rbp", lateral="identity", forward_maps=True, adaptive=True,
                       derivative="all").bind(net)
    gap = [ch.D(h, h + 1) - net.W(h + 1).transpose(1, 2) for h in (1, 2)]
    D0 = ch.D(1, 2).clone()
    opt = SGD(lr=0.1, decay=0.0).bind(net)
    for _ in range(5):
        rec, e, I = signals(net, ch, X, T)
        terms = ch.plasticity_terms(rec, I)
        assert terms and all(rule is HEBBIAN is opt.rule for _, rule, _, _, _ in terms)
        opt.step(rec, I, terms)
    for h in (1, 2):
        torch.testing.assert_close(ch.D(h, h + 1) - net.W(h + 1).transpose(1, 2), gap[h - 1], rtol=0, atol=1e-12)
    assert (ch.D(1, 2) - D0).abs().max() > 1e-3  # the channel's weights did move


def test_adaptive_distinct_step_is_eq12_with_the_channel_neurons_derivative():
    X, T = data64()
    net = net64()
    ch = build_channel("distinct-srbp", lc_width=3, lc_activation="tanh", forward_maps=True, adaptive=True,
                       adapt_rate=0.5).bind(net)
    before = {h: ch.D(h, 3).clone() for h in (1, 2)}
    rec, e, I = signals(net, ch, X, T)
    SGD(lr=0.2, decay=0.0).bind(net).step(rec, I, ch.plasticity_terms(rec, I))
    for h in (1, 2):
        U = e @ before[h].transpose(1, 2)
        post = (1 - torch.tanh(U) ** 2) * (rec.O[h] @ ch.forward_map(h).transpose(1, 2))
        want = before[h] + 0.2 * 0.5 * post.transpose(1, 2) @ e / X.shape[0]
        torch.testing.assert_close(ch.D(h, 3), want)


def test_distinct_state_moves_saves_and_restores():
    net = Network(SIZES, seeds=[0, 1])
    ch = build_channel("distinct-rbp", lc_width=3, forward_maps=True, adaptive=True).bind(net)
    names = set(ch.state_dict())
    assert {"D_1_2", "D_2_3", "Cp_1", "Cp_2", "Ap_1", "Ap_2"} <= names
    assert not list(ch.parameters())
    saved = ch.checkpoint_state()
    ch.D(1, 2).add_(1.0)
    ch.load_checkpoint_state(saved)
    torch.testing.assert_close(ch.D(1, 2), saved["distinct"]["D_1_2"])
    net.to(torch.float64)  # moving the network moves its channel
    assert ch.D(1, 2).dtype == torch.float64 and ch.lateral_map(1).dtype == torch.float64
    X, T = data64()
    signals(net, ch, X, T)
    with pytest.raises(ValueError, match="does not fit"):
        ch.load_checkpoint_state({"rng": None, "distinct": {"D_1_2": torch.zeros(2, 1, 1)}})


def test_adaptive_distinct_population_member_equals_a_single_run_and_resumes(tmp_path):
    base = dict(dataset="synthetic", synthetic_k=0, n_train=300, n_test=100, architecture=[2, 16, 16, 1], lr=0.5,
                batch_size=10, algorithm="distinct-rbp",
                channel={"lc_width": [4, 2], "lc_activation": "tanh", "forward_maps": True, "adaptive": True,
                         "lc_dropout": 0.2}, dropout=0.1)
    pop = train_config(TrainConfig.from_dict({**base, "epochs": 2, "seeds": [3, 5]}), progress=False)
    one = train_config(TrainConfig.from_dict({**base, "epochs": 2, "seeds": [5]}), progress=False)
    assert [r[1] for r in pop.history.metrics["train_loss"]] == pytest.approx(
        [r[0] for r in one.history.metrics["train_loss"]], rel=1e-6)
    cfg = TrainConfig.from_dict({**base, "epochs": 3, "seeds": [0]})
    full = train_config(cfg, tmp_path / "full", progress=False).history
    train_config(cfg.replace(epochs=1), tmp_path / "part", progress=False)
    assert train_config(cfg, tmp_path / "part", progress=False).history.metrics == full.metrics


def test_alignment_angles_of_distinct_channels():
    X, T = data64()
    net = net64()
    ch = build_channel("distinct-rbp", lateral="identity", derivative="all").bind(net)
    _copy_transposed_forward(ch, net)
    angles = alignment_angles(net, ch, X, T)
    for h in (1, 2):
        assert angles[("signal", h)].max() < 1e-4 and angles[("update", h)].max() < 1e-4
    net = net64()
    ch = build_channel("distinct-srbp", lc_width=2, lc_activation="tanh").bind(net)
    angles = alignment_angles(net, ch, X, T)
    assert set(angles) == {(m, h) for m in ("signal", "update") for h in (1, 2)}
    assert all(torch.isfinite(v).all() and (v > 1).all() for v in angles.values())


def test_distinct_accounting_counts_channel_and_lateral_weights():
    from lchannel.report.accounting import channel_cost

    sizes = [784, 100, 100, 100, 100, 10]
    assert channel_cost(sizes, "distinct-srbp", {"lc_width": 10}).channel_mults == 4 * (10 * 10 + 100 * 10)
    chain = channel_cost(sizes, "distinct-rbp", {"lc_width": 1}).channel_mults
    assert chain == 1 * 10 + 3 * 1 * 1 + 4 * 100 * 1


# -- reachable from the CLI and the specs ------------------------------------------------------
def test_cli_reaches_every_new_option():
    parser = build_parser()
    args = parser.parse_args(["train", "--algorithm", "distinct-rbp", "--lc-width", "100,10,10,1",
                              "--lc-activation", "tanh", "--lc-init", "small", "--forward-maps",
                              "--channel-opt", "adaptive=true", "--adapt-rate", "0.5", "--lc-dropout", "0.1",
                              "--dropout", "0.2"])
    cfg = config_from_args(args, args.algorithm)
    assert cfg.channel == {"lc_width": [100, 10, 10, 1], "lc_activation": "tanh", "lc_init": "small",
                           "forward_maps": True, "adaptive": True, "adapt_rate": 0.5, "lc_dropout": 0.1}
    assert cfg.dropout == 0.2
    args = parser.parse_args(["train", "--algorithm", "distinct-srbp", "--lc-width", "10", "--lateral", "random"])
    assert config_from_args(args, args.algorithm).channel == {"lc_width": 10, "lateral": "random"}
    args = parser.parse_args(["train", "--algorithm", "srbp", "--lc-activation", "relu"])
    assert config_from_args(args, args.algorithm).channel == {"lc_activation": "relu"}
    assert canonicalize("distinct-rbp", {"lc_width": [10, 10, 10, 10]}) == canonicalize("distinct-rbp", {"lc_width": 10})


def test_p2_specs_follow_the_protocol_and_the_captions():
    f1 = {c.key for c in load_spec("figure1").cells()}
    f7 = {(c.labels["algorithm"], c.labels["channel"]): c for c in load_spec("p2-figure7").cells()}
    assert len(f7) == 6 and f7[("RBP", "lc-tanh")].config.channel == {"lc_activation": "tanh"}
    assert all(f7[(a, "linear")].key in f1 for a in ("BP", "RBP", "SRBP"))  # the same runs as paper 1's
    f8 = load_spec("p2-figure8").cells()
    assert {c.config.channel["lc_width"] for c in f8} == {100, 10, 1}
    assert {c.config.algorithm for c in f8} == {"distinct-rbp", "distinct-srbp"}
    f9 = load_spec("p2-figure9").cells()
    assert len(f9) == 25 and {c.config.dropout for c in f9} == {0.0, 0.2, 0.5}
    assert {c.config.channel.get("lc_dropout") for c in f9} == {None, 0.2, 0.5}
    assert all(c.config.channel["lc_activation"] == "tanh" and c.config.train_metrics == "full" for c in f9)
    for c in [*f7.values(), *f8, *f9]:
        cfg = c.config
        assert (cfg.sizes, cfg.hidden, cfg.output_pair, cfg.lr, cfg.batch_size, cfg.epochs, cfg.momentum) == (
            [784, 100, 100, 100, 100, 10], "tanh", "softmax", 0.1, 100, 100, 0.0)
