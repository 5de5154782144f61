"""Paper 2, sections 3.4, 3.6 and 4.1.3: the STDP-like rule (eq. 13-19, 32) and the
derivative-modulated Hebbian adaptation of the learning channel."""

import math

import numpy as np
import pytest
import torch

from lchannel.report.alignment import alignment_angles
from lchannel.channels import build_channel, canonicalize, label, named_form
from lchannel.cli import build_parser, config_from_args
from lchannel.run.config import TrainConfig
from lchannel.engine.nets import Network
from lchannel.engine.plasticity import HEBBIAN, SGD, STDP_RULE, Phases, get_rule
from lchannel.run.single import train_config
from lchannel.theory.discrete import STDPNetwork

from helpers import batch

SIZES = [5, 7, 6, 4]  # hidden layers 1 and 2, L = 3


def net64(sizes=SIZES, hidden="tanh", output="softmax", seeds=(0, 1)):
    return Network(list(sizes), hidden=hidden, output=output, seeds=list(seeds), dtype=torch.float64)


def signals(name, X, T, hidden="tanh", sizes=SIZES, **opts):
    """(channel, record, e, [I^h]) of a float64 network under channel ``name``."""
    net = net64(sizes, hidden)
    ch = build_channel(name, **opts).bind(net)
    rec = net.forward(X.double())
    e = net.output_loss.error(T.double(), rec.output)
    return ch, rec, e, ch.signals(rec, e)


def test_stdp_change_tends_to_the_srbp_signal_with_a_first_order_error():
    """Skipped channel, feedback εC during the phases (eq. 16-17):

        ΔO^h = f(S + εCT) − f(S + εCO)
             = f'(S)·εC(T − O) + (ε²/2) f''(S)·((CT)² − (CO)²) + O(ε³)   (Taylor at S)

    so I^h = ΔO^h/ε = R^h + ε K^h + O(ε²) with R^h = f'(S)·C(T − O), SRBP's signal
    (eq. 11, 18) and K^h = ½ f''(S)·((CT)² − (CO)²): the relative error of I^h is
    first order (|I − R| halves with ε), that of ΔO against εR second order, and
    I − R − εK is O(ε²) (quarters with ε).  For tanh f'' = −2 f (1 − f²)."""
    X, T = batch(SIZES)
    _, rec, e, R = signals("srbp", X, T)
    errors, residuals = [], []
    for eps in (0.04, 0.02, 0.01):
        ch, _, _, I = signals("asrbp", X, T, rule="stdp", stdp_scale=eps)
        for h in (1, 2):
            C = ch.C[(h, 3)]
            torch.testing.assert_close(C, build_channel("srbp").bind(net64()).C[(h, 3)])  # the same draw
            f = torch.tanh(rec.S[h])
            K = 0.5 * (-2 * f * (1 - f * f)) * ((T.double() @ C.transpose(1, 2)) ** 2 - (rec.output @ C.transpose(1, 2)) ** 2)
            errors.append(float((I[h] - R[h]).norm() / R[h].norm()))
            residuals.append(float((I[h] - R[h] - eps * K).norm() / R[h].norm()))
    err, res = np.array(errors).reshape(3, 2), np.array(residuals).reshape(3, 2)
    assert np.all(err[0] < 0.05)
    np.testing.assert_allclose(err[:-1] / err[1:], 2.0, rtol=0.05)  # O(ε)
    np.testing.assert_allclose(res[:-1] / res[1:], 4.0, rtol=0.1)  # the leading term is εK: O(ε²) after it


def test_chained_stdp_change_tends_to_the_rbp_signal():
    """Chained channel: layer h feeds back its own phase activity, ΔO^h ≈ ε f'(S^h) C^h ΔO^{h+1},
    so I^h = ΔO^h/ε^{L−h} → RBP's signal with every derivative (eq. 7), error O(ε)."""
    X, T = batch(SIZES)
    _, _, _, R = signals("rbp", X, T)
    err = []
    for eps in (0.02, 0.01):
        _, _, _, I = signals("arbp", X, T, rule="stdp", stdp_scale=eps)
        err.append([float((I[h] - R[h]).norm() / R[h].norm()) for h in (1, 2)])
    err = np.array(err)
    assert np.all(err < 0.05)
    np.testing.assert_allclose(err[0] / err[1], 2.0, rtol=0.1)


@pytest.mark.parametrize("name,ref", [("asrbp", "srbp"), ("arbp", "rbp")])
def test_linear_neurons_make_the_stdp_change_exactly_the_random_channel_signal(name, ref):
    # f linear: ΔO^h = εC(T − O) (skipped) and ε C ΔO^{h+1} (chained), for any ε.
    X, T = batch(SIZES)
    _, _, _, R = signals(ref, X, T, hidden="identity")
    for eps in (1.0, 0.3):
        _, _, _, I = signals(name, X, T, hidden="identity", rule="stdp", stdp_scale=eps)
        for h in (1, 2, 3):
            torch.testing.assert_close(I[h], R[h], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("form,rule", [("target", "stdp-t"), ("output", "stdp")])
def test_one_step_matches_the_three_phase_learner_of_the_theory(form, rule):
    """A[3, 4, 2], linear hidden layer, identity output, ε = 1: the engine's ΔW^1 and ΔC^1
    equal :class:`lchannel.theory.discrete.STDPNetwork`'s ΔA_1 and ΔC_1 (eq. 15-19 with the
    T-form, eq. 32 with the O-form).  The top layer differs on purpose: the engine uses the
    forward activity O^1 (eq. 14), eq. 32 the phase-1 activity O^1 + C_1O, so
    ΔA_2 − ΔW^2 = η (T − O)(C_1 O)ᵀ / B."""
    sizes, eta = [3, 4, 2], 0.05
    g = torch.Generator().manual_seed(1)
    X, T = torch.randn(9, 3, generator=g, dtype=torch.float64), torch.randn(9, 2, generator=g, dtype=torch.float64)
    net = Network(sizes, hidden="identity", output="identity", seeds=[4], dtype=torch.float64)
    ch = build_channel("asrbp", rule="stdp", stdp_form=form, stdp_scale=1.0).bind(net)
    A = [net.W(1)[0].numpy().copy(), net.W(2)[0].numpy().copy()]
    C = ch.C[(1, 2)][0].numpy().copy()
    theory = STDPNetwork(A, [C], rule)
    theory.step(X.numpy(), T.numpy(), eta)
    opt = SGD(lr=eta, decay=0.0).bind(net)
    rec = net.forward(X)
    e = net.output_loss.error(T, rec.output)
    I = ch.signals(rec, e)
    opt.step(rec, I, ch.plasticity_terms(rec, I))
    np.testing.assert_allclose(net.W(1)[0].numpy(), theory.As[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ch.C[(1, 2)][0].numpy(), theory.Cs[0], rtol=1e-12, atol=1e-14)
    O = (X.numpy() @ A[0].T) @ A[1].T
    shift = eta * (T.numpy() - O).T @ (O @ C.T) / X.shape[0]
    np.testing.assert_allclose(theory.As[1] - net.W(2)[0].numpy(), shift, rtol=1e-10, atol=1e-14)


def test_the_stdp_rule_object_is_the_hebbian_product_of_the_change():
    g = torch.Generator().manual_seed(0)
    O1, O2, pre = (torch.randn(2, 6, n, generator=g, dtype=torch.float64) for n in (4, 4, 3))
    net = net64([3, 4, 2])
    dW, db = STDP_RULE.direction(Phases(O1, O2, 0.5), pre, net.block(1))
    hW, hb = HEBBIAN.direction((O2 - O1) / 0.5, pre, net.block(1))
    torch.testing.assert_close(dW, hW) and torch.testing.assert_close(db, hb)
    P, Q = torch.zeros(2, 4, 3, dtype=torch.float64), torch.zeros(2, 4, 3, dtype=torch.float64)
    STDP_RULE.apply_(P, Phases(O1, O2), pre, 0.1)
    HEBBIAN.apply_(Q, O2 - O1, pre, 0.1)
    torch.testing.assert_close(P, Q)
    assert get_rule("stdp") is STDP_RULE and get_rule("hebbian") is HEBBIAN
    with pytest.raises(ValueError, match="rule must be one of"):
        get_rule("oja")


@pytest.mark.parametrize("form", ["target", "output"])
def test_the_channel_learns_from_the_change_times_the_sending_phase_activity(form):
    # eq. 19: ΔC^h_ik = η T_k ΔO^h_i (target);  eq. 32: η O_k ΔO^h_i (output); rate 0.5.
    X, T = batch(SIZES)
    ch, rec, e, I = signals("asrbp", X, T, rule="stdp", stdp_form=form, adapt_rate=0.5, stdp_scale=0.3)
    terms = ch.plasticity_terms(rec, I)
    assert len(terms) == 2
    pre_k = T.double().expand(2, *T.shape) if form == "target" else rec.output
    for (P, rule, post, pre, rate), h in zip(terms, (1, 2)):
        assert rule is STDP_RULE and rate == 0.5 and P is ch.C[(h, 3)]
        torch.testing.assert_close(STDP_RULE.change(post), I[h])
        torch.testing.assert_close(pre, pre_k)
    before = {k: v.clone() for k, v in ch.C.items()}
    ch.adapt(rec, I, lr=0.2)
    for h in (1, 2):
        want = before[(h, 3)] + 0.2 * 0.5 * I[h].transpose(1, 2) @ pre_k / X.shape[0]
        torch.testing.assert_close(ch.C[(h, 3)], want)


def test_alignment_angles_of_an_stdp_channel_approach_srbp_s():
    X, T = batch(SIZES, B=32)
    angles = []
    for name, opts in (("srbp", {}), ("asrbp", {"rule": "stdp", "stdp_scale": 1e-3})):
        net = net64()
        angles.append(alignment_angles(net, build_channel(name, **opts).bind(net), X.double(), T.double()))
    srbp, stdp = angles
    assert set(stdp) == set(srbp) and all(torch.isfinite(v).all() for v in stdp.values())
    for key in srbp:
        torch.testing.assert_close(stdp[key], srbp[key], rtol=0, atol=0.5)  # degrees


# -- adaptation modulated by the channel neuron's derivative (section 4.1.3) ---------------------
@pytest.mark.parametrize("name", ["asrbp", "arbp"])
def test_derivative_modulated_adaptation_by_hand(name):
    """ΔC^{h,k} = η·rate·(g'(J^h) ⊙ O^h)ᵀ I^k / B with g = tanh in the channel, J^h the
    signal layer h receives: J^h = e (C^{h,L})ᵀ (skipped) or I^{h+1} (C^{h,h+1})ᵀ (chained,
    I^L = e, I^h = f'(S^h) ⊙ tanh(J^h))."""
    X, T = batch(SIZES)
    net = net64()
    ch = build_channel(name, lc_activation="tanh", adapt_derivative=True, adapt_rate=0.5).bind(net)
    C0 = {k: v.clone() for k, v in ch.C.items()}
    rec = net.forward(X.double())
    e = net.output_loss.error(T.double(), rec.output)
    I = ch.signals(rec, e)
    ch.adapt(rec, I, lr=0.3)
    L, B = 3, X.shape[0]
    sent = {L: e}
    for h in (2, 1):
        k = L if name == "asrbp" else h + 1
        J = sent[k] @ C0[(h, k)].transpose(1, 2)
        fprime = 1 - rec.O[h] ** 2
        sent[h] = fprime * torch.tanh(J)
        torch.testing.assert_close(I[h], sent[h])
        post = (1 - torch.tanh(J) ** 2) * rec.O[h]
        torch.testing.assert_close(ch.C[(h, k)], C0[(h, k)] + 0.3 * 0.5 * post.transpose(1, 2) @ sent[k] / B)
    plain = build_channel(name, lc_activation="tanh", adapt_rate=0.5).bind(net64())
    plain.adapt(rec, plain.signals(rec, e), lr=0.3)
    assert not torch.allclose(plain.C[(1, L if name == "asrbp" else 2)], ch.C[(1, L if name == "asrbp" else 2)])


# -- bad input, names, keys, CLI ------------------------------------------------------------------
@pytest.mark.parametrize("opts,match", [
    ({"rule": "oja"}, "rule must be one of"),
    ({"rule": "stdp", "stdp_form": "T"}, "stdp_form must be one of"),
    ({"rule": "stdp", "stdp_scale": 0}, "stdp_scale must be a number > 0"),
    ({"rule": "stdp", "stdp_scale": math.inf}, "stdp_scale must be a number > 0"),
    ({"stdp_form": "target"}, "apply only with rule='stdp'"),
    ({"rule": "stdp", "derivative": "none"}, "takes its derivatives from the phases"),
    ({"rule": "stdp", "lc_dropout": 0.1}, "cannot be combined with signal transforms"),
    ({"rule": "stdp", "adapt_derivative": True}, "adapt_derivative applies to the Hebbian rule"),
    ({"adapt_derivative": True}, "this channel is linear"),
    ({"adapt_derivative": 1}, "adapt_derivative must be true or false"),
])
def test_bad_options_are_refused_by_name(opts, match):
    with pytest.raises(ValueError, match=match):
        build_channel("asrbp", **opts)


def test_rule_needs_an_adaptive_chain_or_skip_channel():
    with pytest.raises(ValueError, match="apply only to adaptive channels"):
        build_channel("srbp", rule="stdp")
    with pytest.raises(ValueError, match="chained \\(arbp\\) and skipped \\(asrbp\\)"):
        build_channel("mixed", skip_layers=[1], adaptive=True, rule="stdp")
    with pytest.raises(ValueError, match="chained \\(arbp\\) and skipped \\(asrbp\\)"):
        build_channel("cascade", adaptive=True, rule="stdp")
    with pytest.raises(ValueError, match="rule applies only to adaptive channels"):
        TrainConfig(dataset="synthetic", algorithm="srbp", channel={"rule": "hebbian"}).validate()
    with pytest.raises(ValueError, match="stdp_scale applies only with rule='stdp'"):
        TrainConfig(dataset="synthetic", algorithm="asrbp", channel={"stdp_scale": 1.0}).validate()
    with pytest.raises(ValueError, match="dropout: rule='stdp'"):
        TrainConfig(dataset="synthetic", algorithm="asrbp", channel={"rule": "stdp"}, dropout=0.1).validate()


def test_one_run_has_one_named_form_and_the_default_rule_changes_no_key():
    assert canonicalize("arbp", {"rule": "hebbian", "stdp_scale": 0.1}) == canonicalize("arbp", {})
    assert named_form("rbp", {"adaptive": True, "adapt_rate": 0.1, "rule": "stdp"}) == ("arbp", {"rule": "stdp"})
    assert named_form("asrbp", {"rule": "stdp", "stdp_form": "output"}) == ("asrbp", {"rule": "stdp"})
    assert canonicalize("asrbp", {"rule": "stdp"}) != canonicalize("asrbp", {"rule": "stdp", "stdp_form": "target"})
    base = dict(dataset="synthetic", algorithm="asrbp")
    assert TrainConfig(**base, channel={"rule": "hebbian"}).key() == TrainConfig(**base).key()
    assert TrainConfig(**base, channel={"rule": "stdp"}).label == "ASRBP (STDP)" and label("arbp") == "ARBP"


def test_cli_reaches_the_rule_options():
    parser = build_parser()
    args = parser.parse_args(["train", "--algorithm", "arbp", "--rule", "stdp", "--stdp-form", "output",
                              "--stdp-scale", "0.1", "--adapt-rate", "1"])
    assert config_from_args(args, args.algorithm).channel == {"rule": "stdp", "stdp_form": "output",
                                                              "stdp_scale": 0.1, "adapt_rate": 1.0}
    args = parser.parse_args(["train", "--algorithm", "asrbp", "--lc-activation", "tanh", "--adapt-derivative"])
    assert config_from_args(args, args.algorithm).channel == {"lc_activation": "tanh", "adapt_derivative": True}


# -- training -----------------------------------------------------------------------------------
QUICK = dict(dataset="synthetic", synthetic_k=0, n_train=600, n_test=200, architecture=[2, 24, 24, 1],
             lr=0.5, decay=1e-4, batch_size=10, epochs=4)


@pytest.mark.parametrize("algorithm", ["arbp", "asrbp"])
def test_stdp_training_learns_and_a_population_member_equals_its_single_run(algorithm):
    # The O-form (eq. 32, the default): on this one-logistic-unit task (T in {0, 1}) the
    # T-form's channel update η T ΔO grows the feedback (theory: unless T ∝ I) and the
    # loss rises again after two epochs.
    channel = {"rule": "stdp", "adapt_rate": 1.0}
    pop = train_config(TrainConfig.from_dict({**QUICK, "algorithm": algorithm, "channel": channel, "seeds": [0, 1]}),
                       progress=False)
    one = train_config(TrainConfig.from_dict({**QUICK, "algorithm": algorithm, "channel": channel, "seeds": [1]}),
                       progress=False)
    h = pop.history
    assert all(h.metrics["train_loss"][-1][e] < h.initial["train_loss"][e] for e in range(2))
    assert min(h.final("train_acc")) > 0.8
    for m in ("train_loss", "test_acc"):
        assert [row[1] for row in h.metrics[m]] == pytest.approx([row[0] for row in one.history.metrics[m]],
                                                                 rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("name", ["tanh", "logistic", "relu", "identity"])
def test_the_activity_change_is_computed_without_cancellation(name):
    # f(x + y) − f(x) in float32 against float64, for y ~ 1e-4: the identities keep ~1e-6
    # relative error where the plain float32 difference loses about three digits.
    from lchannel.engine.activations import get_activation

    f = get_activation(name)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, generator=g, dtype=torch.float64) * 2
    y = torch.randn(1000, generator=g, dtype=torch.float64) * 1e-4
    want = f(x + y) - f(x)
    x32, y32 = x.float(), y.float()
    got = f.change(x32, f(x32), y32).double()  # Activation.change, read by the STDP phases
    rel = float((got - want).norm() / want.norm())
    assert rel < (1e-5 if name != "relu" else 1e-2)
    if name in ("tanh", "logistic"):
        assert rel < 0.1 * float(((f(x32 + y32) - f(x32)).double() - want).norm() / want.norm())


def test_p2_figure10_and_11_specs_follow_the_captions():
    from lchannel.experiments import load_spec

    f10 = {c.labels["algorithm"]: c.config for c in load_spec("p2-figure10").cells()}
    assert set(f10) == {"BP", "ARBP", "ASRBP"} and {c.hidden for c in f10.values()} == {"identity"}
    # issue 29: the settings the paper leaves open, chosen so that the runs stay finite
    assert f10["ARBP"].named() == ("arbp", {"adapt_rate": 1.0, "feedback": {"scale": 0.1}})
    assert f10["ASRBP"].named() == ("asrbp", {"adapt_rate": 0.1, "feedback": {"scale": 0.1}})
    f11 = {c.labels["algorithm"]: c.config for c in load_spec("p2-figure11").cells()}
    assert {c.hidden for c in f11.values()} == {"tanh"} and len(f11) == 5
    assert f11["ARBP (Hebbian, rate 3)"].channel == {"adapt_rate": 3.0}  # the saturating rate, not the paper's
    for algo in ("ARBP", "ASRBP"):
        hebb, stdp = f11[f"{algo} (Hebbian)"], f11[f"{algo} (STDP)"]
        assert stdp.channel == {**hebb.channel, "rule": "stdp"} and stdp.label == f"{algo} (STDP)"
    for c in [*f10.values(), *f11.values()]:
        assert (c.lr, c.batch_size, c.momentum, c.epochs, c.output_pair) == (0.1, 100, 0.0, 100, "softmax")


# -- p2-figure11's two ASRBP cells, one step by hand (issue 25) ------------------------------
# A[3, 2, 2, 2], tanh hidden units, softmax output, two examples; C^{h,3} maps the output
# (N_3 = 2) to hidden layer h.  Plain floats, eq. by eq., nothing from the engine.
HAND_W = ([[0.5, -0.3, 0.8], [-0.6, 0.2, 0.4]], [[0.7, -0.5], [0.3, 0.9]], [[1.1, -0.4], [-0.2, 0.6]])
HAND_B = ([0.1, -0.2], [0.05, 0.0], [0.0, 0.1])
HAND_C = {1: [[0.9, -0.4], [0.2, 0.6]], 2: [[-0.7, 0.5], [0.8, 0.3]]}
HAND_X = [[1.0, -0.5, 0.25], [0.3, 0.8, -1.2]]
HAND_T = [[1.0, 0.0], [0.0, 1.0]]


def _mv(M, v):
    return [sum(m * x for m, x in zip(row, v)) for row in M]


def _hand_asrbp_step(rule, form="output", eps=0.1, eta=0.1, rate=1.0):
    """``(ΔW, Δb, ΔC)`` of one ASRBP step, the minibatch mean of the per-example updates.

    Hebbian (paper 1 sec. 3; paper 2 eq. 12 with a linear channel): R^h = f'(S^h) ⊙ C^h (T − O),
    ΔW^h = η R^h (O^{h-1})ᵀ, ΔC^h_ik = η·rate·O^h_i (T − O)_k.
    STDP (paper 2 eq. 13-19, 32): the physical feedback weights are εC; phase 1 feeds back
    the output, O^h(1) = tanh(S^h + ε C^h O) (eq. 16), phase 2 the target,
    O^h(2) = tanh(S^h + ε C^h T) (eq. 17); ΔO^h = O^h(2) − O^h(1) (eq. 18);
    ΔW^h = η ΔO^h (O^{h-1})ᵀ / ε (eq. 14, rescaled by the feedback strength ε); the channel,
    Δ(εC^h)_ik = η·rate·ΔO^h_i O_k (eq. 32, ``output``) or η·rate·ΔO^h_i T_k (eq. 19,
    ``target``), i.e. ΔC^h_ik = η·rate·(ΔO^h_i / ε)·O_k (or T_k).  The top layer is the
    same for both rules: ΔW^3 = η (T − O)(O^2)ᵀ."""
    B = len(HAND_X)
    dW = [[[0.0] * len(W[0]) for _ in W] for W in HAND_W]
    db = [[0.0] * len(b) for b in HAND_B]
    dC = {h: [[0.0] * 2 for _ in range(2)] for h in HAND_C}
    for x, t in zip(HAND_X, HAND_T):
        O, S = [x], [None]
        for h in (1, 2, 3):
            S.append([s + bi for s, bi in zip(_mv(HAND_W[h - 1], O[-1]), HAND_B[h - 1])])
            O.append([math.tanh(s) for s in S[h]] if h < 3 else None)
        z = [math.exp(s - max(S[3])) for s in S[3]]
        out = [v / sum(z) for v in z]
        e = [ti - oi for ti, oi in zip(t, out)]
        post = {3: e}
        for h in (1, 2):
            if rule == "hebbian":
                post[h] = [(1 - o * o) * j for o, j in zip(O[h], _mv(HAND_C[h], e))]
                chan_post, chan_pre = O[h], e
            else:
                first = [math.tanh(s + eps * j) for s, j in zip(S[h], _mv(HAND_C[h], out))]
                second = [math.tanh(s + eps * j) for s, j in zip(S[h], _mv(HAND_C[h], t))]
                post[h] = [(o2 - o1) / eps for o1, o2 in zip(first, second)]
                chan_post, chan_pre = post[h], (out if form == "output" else t)
            for i in range(2):
                for k in range(2):
                    dC[h][i][k] += eta * rate * chan_post[i] * chan_pre[k] / B
        for h in (1, 2, 3):
            for i, p in enumerate(post[h]):
                db[h - 1][i] += eta * p / B
                for j, o in enumerate(O[h - 1]):
                    dW[h - 1][i][j] += eta * p * o / B
    return dW, db, dC


@pytest.mark.parametrize("form", ["output", "target"])
def test_p2_figure11_asrbp_cells_make_the_hand_computed_hebbian_and_stdp_updates(form):
    """Issue 25: the two ASRBP cells of p2-figure11, built as the runner builds them (spec ->
    config -> registry -> channel), make eq. 13-19's STDP update and the Hebbian one,
    each equal to the hand computation above; the two differ (the channel's update by
    more than its own size, the hidden layers' by O(ε))."""
    import dataclasses

    from lchannel.experiments import load_spec
    from lchannel.run.single import build_trainer

    cells = {c.labels["algorithm"]: c.config for c in load_spec("p2-figure11").cells()}
    hebb, stdp = cells["ASRBP (Hebbian)"], cells["ASRBP (STDP)"]
    assert hebb.key() != stdp.key()
    if form == "target":
        stdp = dataclasses.replace(stdp, channel={**stdp.channel, "stdp_form": "target"})
    got = {}
    for rule, cfg in (("hebbian", hebb), ("stdp", stdp)):
        tr = build_trainer(dataclasses.replace(cfg, architecture=[3, 2, 2, 2], seeds=[0]), progress=False,
                           validate=False, dtype=torch.float64)
        net, ch, opt = tr.net, tr.channel, tr.opt
        for h in (1, 2, 3):
            net.W(h)[0].copy_(torch.tensor(HAND_W[h - 1], dtype=torch.float64))
            net.b(h)[0].copy_(torch.tensor(HAND_B[h - 1], dtype=torch.float64))
        for h in (1, 2):
            ch.C[(h, 3)][0].copy_(torch.tensor(HAND_C[h], dtype=torch.float64))
        before = [w.clone() for w in net.weights], [b.clone() for b in net.biases], \
            {h: ch.C[(h, 3)].clone() for h in (1, 2)}
        X, T = torch.tensor(HAND_X, dtype=torch.float64), torch.tensor(HAND_T, dtype=torch.float64)
        rec = net.forward(X, train=True)
        I = ch.signals(rec, net.output_loss.error(T, rec.output))
        opt.step(rec, I, ch.plasticity_terms(rec, I))  # what Trainer does for every minibatch
        got[rule] = ([(w - w0)[0] for w, w0 in zip(net.weights, before[0])],
                     [(b - b0)[0] for b, b0 in zip(net.biases, before[1])],
                     {h: (ch.C[(h, 3)] - before[2][h])[0] for h in (1, 2)})
    want = {"hebbian": _hand_asrbp_step("hebbian"), "stdp": _hand_asrbp_step("stdp", form)}
    for rule in ("hebbian", "stdp"):
        (gW, gb, gC), (wW, wb, wC) = got[rule], want[rule]
        for h in (1, 2, 3):
            np.testing.assert_allclose(gW[h - 1].numpy(), wW[h - 1], rtol=1e-10, atol=1e-14, err_msg=f"{rule} W{h}")
            np.testing.assert_allclose(gb[h - 1].numpy(), wb[h - 1], rtol=1e-10, atol=1e-14, err_msg=f"{rule} b{h}")
        for h in (1, 2):
            np.testing.assert_allclose(gC[h].numpy(), wC[h], rtol=1e-10, atol=1e-14, err_msg=f"{rule} C{h}")
    # The hand truths themselves differ where the rules differ, by far more than the tolerance.
    (hW, _, hC), (sW, _, sC) = want["hebbian"], want["stdp"]
    np.testing.assert_allclose(sW[2], hW[2], rtol=1e-15)  # top layer: the same rule
    for h in (1, 2):
        h_, s_ = np.array(hC[h]), np.array(sC[h])
        assert np.abs(h_ - s_).max() > 0.5 * np.abs(h_).max()
        h_, s_ = np.array(hW[h - 1]), np.array(sW[h - 1])
        assert 1e-4 < np.abs(h_ - s_).max() / np.abs(h_).max() < 0.2  # ΔO/ε = R + O(ε)
