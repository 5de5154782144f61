"""Independent truths for the learning-channel variants of paper 1 (sections 3-6).

Hand-computed eq. 19 values, densities within binomial tolerances, signs, Monte-Carlo
expectations with stated tolerances, brute-force per-synapse updates, paper 2's
Theorem 7 on a linear network, and the accounting of eq. 14/15 per variant.
Training behaviour is in test_variants_training.py.
"""

import math

import pytest
import torch

from lchannel.report.accounting import channel_cost, eq14_W, eq15_W_prime
from lchannel.channels import (
    ChannelDropout,
    FeedbackInit,
    Quantize,
    SynapseSignal,
    build_channel,
    quantize,
)
from lchannel.run.config import TrainConfig
from lchannel.engine.nets import Network
from lchannel.engine.plasticity import SGD
from lchannel.engine.quantize import LEGACY_READING

from helpers import batch, one_step_updates, small_net


pytestmark = pytest.mark.usefixtures("one_thread")

SIZES = (5, 7, 6, 4)


def signals(net, ch, X, T):
    rec = net.forward(X)
    return rec, net.output_loss.error(T, rec.output), ch.signals(rec, net.output_loss.error(T, rec.output))


# -- eq. 19: Quantize_{α,bits}(x) = α sign(x) 2^{round(clip(log2|x/α|, −bits+1, 0))} ---------------


def test_quantize_matches_eq19_on_hand_computed_values():
    a = 2.0 ** -3  # the paper's α for error signals
    x = torch.tensor([0.1, 0.05, 0.02, 0.001, 1.0, -0.05, -3.0, 0.0, 0.125, 0.09])
    # 0.1/α = 0.8, log2 = −0.32 → 0 → α;  0.05/α = 0.4, log2 = −1.32 → −1 → α/2;
    # 0.02/α = 0.16, log2 = −2.64 → clip −2 → α/4;  0.001 → clip −2 → α/4 (never 0);
    # 1.0/α = 8, log2 = 3 → clip 0 → α (clipping);  −3 → −α;  0 → 0;  α → α;
    # 0.09/α = 0.72, log2 = −0.474 → 0 → α.
    want = torch.tensor([a, a / 2, a / 4, a / 4, a, -a / 2, -a, 0.0, a, a])
    assert torch.equal(quantize(x, a, 3), want)
    # 1 bit: every non-zero value becomes ±α (sign only), zero stays zero.
    assert torch.equal(quantize(x, a, 1), torch.sign(x) * a)
    # 10 bits, α = 2^-3: 0.001/α = 0.008, log2 = −6.97 → −7 → α·2^-7; 0.02 → −2.64 → −3 → α/8.
    assert quantize(torch.tensor([0.001]), a, 10).item() == a * 2.0 ** -7
    assert quantize(torch.tensor([0.02]), a, 10).item() == a / 8
    # α need not be a power of two: α = 0.3, x = 0.1: log2(1/3) = −1.585 → −2 → 0.075.
    assert quantize(torch.tensor([0.1]), 0.3, 4).item() == pytest.approx(0.075)


def test_quantize_values_are_alpha_times_powers_of_two_within_range():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10000, generator=g) * 0.2
    for bits in (1, 2, 3, 5, 8):
        q = quantize(x, 2.0 ** -3, bits)
        e = torch.log2(q.abs() / 2.0 ** -3)
        assert torch.equal(e, e.round()) and e.min() >= -bits + 1 and e.max() <= 0
        assert torch.equal(torch.sign(q), torch.sign(x))


def test_quantize_rejects_bad_parameters():
    for bad in (dict(bits=0), dict(bits=2.5), dict(alpha=0), dict(alpha=-1), dict(bits=True)):
        with pytest.raises(ValueError):
            Quantize(**{"alpha": 0.125, "bits": 3, **bad})
    with pytest.raises(ValueError, match="quantize_alpha needs quantize_bits"):
        build_channel("srbp", quantize_alpha=0.1)


def test_quantized_error_is_applied_before_propagation_so_errors_accumulate():
    # RBP: J^2 = e C^{2,3}ᵀ, I^2 = Q(J^2) f'_2;  J^1 = I^2 C^{1,2}ᵀ, I^1 = Q(J^1) f'_1 (eq. 16-18).
    X, T = batch(SIZES)
    net = small_net(SIZES)
    ch = build_channel("rbp", quantize_bits=3).bind(net)
    rec, e, I = signals(net, ch, X, T)
    a = 2.0 ** -3
    I2 = quantize(e @ ch.C[(2, 3)].transpose(1, 2), a, 3) * rec.fprime(2)
    I1 = quantize(I2 @ ch.C[(1, 2)].transpose(1, 2), a, 3) * rec.fprime(1)
    torch.testing.assert_close(I[2], I2)
    torch.testing.assert_close(I[1], I1)
    assert torch.equal(I[3], e)  # the top error is not a hidden neuron's signal: not quantized
    # SRBP: each layer quantizes its own copy of C^h (T − O).
    ch = build_channel("srbp", quantize_bits=2, quantize_alpha=0.5).bind(net)
    rec, e, I = signals(net, ch, X, T)
    for h in (1, 2):
        torch.testing.assert_close(I[h], quantize(e @ ch.C[(h, 3)].transpose(1, 2), 0.5, 2) * rec.fprime(h))


def _eq19(v, alpha, bits):
    if v == 0:
        return 0.0
    e = min(max(math.log2(abs(v) / alpha), -bits + 1), 0)
    return math.copysign(alpha * 2.0 ** round(e), v)


def test_quantized_weight_updates_quantize_each_example_before_the_minibatch_mean():
    # Section 5.2: Δw = mean_b Quantize_{α,bits}(η I_b O_b), α = 2^-6; a scalar reference.
    sizes = (3, 4, 2)
    X, T = batch(sizes, B=5)
    net = small_net(sizes, seeds=[0])
    ch = build_channel("srbp").bind(net)
    rec, e, I = signals(net, ch, X, T)
    lr, alpha, bits = 0.3, 2.0 ** -6, 3
    before = [w.clone() for w in net.weights] + [b.clone() for b in net.biases]
    SGD(lr=lr, update_bits=bits, update_alpha=alpha, update_reading=LEGACY_READING).bind(net).step(rec, I)
    for h in (1, 2):
        O = rec.presynaptic(h, 1)[0]
        Ih = I[h][0]
        dW = net.W(h)[0] - before[h - 1][0]
        db = net.b(h)[0] - before[2 + h - 1][0]
        for i in range(Ih.shape[1]):
            want_b = sum(_eq19(lr * Ih[b, i].item(), alpha, bits) for b in range(5)) / 5
            assert db[i].item() == pytest.approx(want_b, abs=1e-7)
            for j in range(O.shape[1]):
                want = sum(_eq19(lr * Ih[b, i].item() * O[b, j].item(), alpha, bits) for b in range(5)) / 5
                assert dW[i, j].item() == pytest.approx(want, abs=1e-7)


# -- feedback distributions ---------------------------------------------------------------


def test_sparse_n_density_scaling_and_extremes():
    n, sizes = 5, [20, 400, 400, 10]
    net = Network(sizes, seeds=[0, 1])
    rbp = build_channel("rbp", feedback={"distribution": "sparse", "n": n}).bind(net)
    C = rbp.C[(1, 2)]  # chained: entries 1/sqrt(n) with probability n / N_1
    p, m = n / 400, C.numel()
    ones = torch.count_nonzero(C).item()
    assert abs(ones - m * p) < 4 * math.sqrt(m * p * (1 - p))  # 4 binomial std
    assert torch.unique(C).tolist() == [0.0, pytest.approx(1 / math.sqrt(n))]
    # Each source neuron reaches n receiving neurons on average ("Sparse-n", Figure 3).
    per_source = (C != 0).sum(1).float()  # (E, N_2)
    assert abs(per_source.mean().item() - n) < 4 * math.sqrt(n * (1 - p) / per_source.numel())
    srbp = build_channel("srbp", feedback={"distribution": "sparse", "n": n}).bind(net)
    assert set(torch.unique(srbp.C[(1, 3)]).tolist()) <= {0.0, 1.0}  # skip: weight 1, no scaling
    full = build_channel("srbp", feedback={"distribution": "sparse", "n": 400}).bind(net)
    assert torch.all(full.C[(1, 3)] == 1)  # n = fan-in: every neuron gets the same signal
    assert torch.all(build_channel("rbp", feedback={"distribution": "sparse", "n": 400}).bind(net).C[(1, 2)]
                     == 1 / math.sqrt(400))


def test_sparse_zero_sends_no_signal_and_too_large_n_is_refused():
    X, T = batch(SIZES)
    for name in ("rbp", "srbp"):
        net = small_net(SIZES)
        ch = build_channel(name, feedback={"distribution": "sparse", "n": 0}).bind(net)
        assert all(torch.count_nonzero(C) == 0 for C in ch.C.values())
        _, _, I = signals(net, ch, X, T)
        assert torch.count_nonzero(I[1]) == 0 and torch.count_nonzero(I[2]) == 0
        up = one_step_updates(net, ch, X, T)
        assert all(torch.count_nonzero(u) == 0 for u in up[:2] + up[3:5])
    with pytest.raises(ValueError, match="exceeds the receiving layer's size 6"):
        build_channel("srbp", feedback={"distribution": "sparse", "n": 7}).bind(small_net(SIZES))
    with pytest.raises(ValueError, match="exceeds"):
        TrainConfig.from_dict({"dataset": "synthetic", "architecture": [2, 8, 1], "algorithm": "srbp",
                               "channel": {"feedback": {"distribution": "sparse", "n": 9}}})
    with pytest.raises(ValueError, match="needs n"):
        FeedbackInit("sparse")


def test_distributions_statistics_and_nonzero_mean():
    sizes = [10, 300, 200, 10]
    net = Network(sizes, seeds=[0])
    std = math.sqrt(2 / 500)
    u = build_channel("rbp", feedback="uniform").bind(net).C[(1, 2)]
    lim = math.sqrt(6 / 500)
    assert u.abs().max() <= lim and u.abs().max() > 0.99 * lim and abs(u.std().item() - std) < 0.02 * std
    s = build_channel("rbp", feedback={"distribution": "sign"}).bind(net).C[(1, 2)]
    assert set(torch.unique(s).tolist()) == {-1.0, 1.0} and abs(s.mean().item()) < 4 / math.sqrt(s.numel())
    for dist in ("normal", "uniform"):  # section 4.2 item 3: mean shifts every entry
        C = build_channel("srbp", feedback={"distribution": dist, "mean": 0.5}).bind(net).C[(1, 3)]
        assert abs(C.mean().item() - 0.5) < 5 * math.sqrt(2 / 310) / math.sqrt(C.numel())
    with pytest.raises(ValueError, match="mean applies only"):
        FeedbackInit("sign", mean=0.1)
    with pytest.raises(ValueError, match="unknown feedback option"):
        build_channel("rbp", feedback={"distrib": "normal"})


# -- congruence and resampling -------------------------------------------------------------


def test_congruent_feedback_has_the_forward_signs_and_the_same_magnitudes():
    sizes = (5, 7, 6, 8, 4)
    net = small_net(sizes)
    plain = build_channel("cascade").bind(net)
    cong = build_channel("cascade", feedback={"congruent": True}).bind(net)
    for (h, k), C in cong.C.items():
        # Reference: (W^{h+1})ᵀ for k = h+1, else (W^{h+1})ᵀ⋯(W^k)ᵀ (documented choice).
        M = net.W(h + 1).transpose(1, 2)
        for m in range(h + 2, k + 1):
            M = M @ net.W(m).transpose(1, 2)
        assert torch.equal(torch.sign(C), torch.sign(M)), (h, k)
        torch.testing.assert_close(C.abs(), plain.C[(h, k)].abs(), rtol=0, atol=0)
    sparse = build_channel("rbp", feedback={"distribution": "sparse", "n": 3, "congruent": True}).bind(net)
    C, M = sparse.C[(1, 2)], net.W(2).transpose(1, 2)
    nz = C != 0
    assert nz.any() and torch.equal(torch.sign(C[nz]), torch.sign(M[nz]))


def _step(net, ch, opt, X, T):
    ch.on_batch_start()
    rec = net.forward(X)
    I = ch.signals(rec, net.output_loss.error(T, rec.output))
    opt.step(rec, I)


def test_sign_concordant_resampling_keeps_forward_signs_after_every_minibatch():
    sizes = (5, 7, 6, 8, 4)
    X, T = batch(sizes)
    for name in ("rbp", "srbp"):
        net = small_net(sizes)
        ch = build_channel(name, resample="sign_concordant").bind(net)
        opt = SGD(lr=2.0).bind(net)
        last = {key: C.clone() for key, C in ch.C.items()}
        flipped = 0
        for _ in range(6):
            before = [torch.sign(W) for W in net.weights]
            ch.on_batch_start()
            flipped += sum(int((torch.sign(W) != s).sum()) for W, s in zip(net.weights, before))
            for (h, k), C in ch.C.items():
                M = ch.congruence_reference(h, k)
                assert torch.equal(torch.sign(C), torch.where(M >= 0, 1.0, -1.0)), (name, h, k)
                assert not torch.equal(C.abs(), last[(h, k)].abs())  # new magnitudes every minibatch
                last[(h, k)] = C.clone()
            rec = net.forward(X)
            opt.step(rec, ch.signals(rec, net.output_loss.error(T, rec.output)))
        assert ch.feedback.congruent


def test_sign_concordance_follows_forward_sign_changes():
    net = small_net(SIZES, seeds=[0])
    ch = build_channel("rbp", resample="sign_concordant").bind(net)
    with torch.no_grad():
        net.W(2).neg_()  # every forward sign flips
    ch.on_batch_start()
    assert torch.equal(torch.sign(ch.C[(1, 2)]), torch.sign(net.W(2).transpose(1, 2)))


def test_zero_mean_resampling_draws_new_zero_mean_matrices():
    net = Network([10, 200, 150, 10], seeds=[0])
    ch = build_channel("rbp", resample="zero_mean").bind(net)
    seen = []
    for _ in range(20):
        ch.on_batch_start()
        seen.append(ch.C[(1, 2)].clone())
    assert all(not torch.equal(a, b) for a, b in zip(seen, seen[1:]))
    S = torch.stack(seen)
    std = math.sqrt(2 / 350)
    assert abs(S.mean().item()) < 5 * std / math.sqrt(S.numel())
    assert abs(S.std().item() - std) < 0.02 * std
    for bad, msg in [(dict(feedback={"distribution": "sparse", "n": 2}), "zero-mean"),
                     (dict(feedback={"congruent": True}), "sign_concordant"),
                     (dict(feedback={"mean": 0.1}), "zero-mean")]:
        with pytest.raises(ValueError, match=msg):
            build_channel("rbp", resample="zero_mean", **bad)
    with pytest.raises(ValueError, match="resample must be one of"):
        build_channel("rbp", resample="always")
    with pytest.raises(ValueError, match="adaptive"):
        build_channel("arbp", resample="zero_mean")


# -- several feedback samples (section 6.1) ----------------------------------------------------


def test_feedback_samples_average_complete_propagations():
    X, T = batch(SIZES)
    net = small_net(SIZES)
    one = build_channel("rbp").bind(net)
    K = 3
    ch = build_channel("rbp", feedback_samples=K).bind(net)
    assert len(ch.samples) == K and ch.C is ch.samples[0]
    for key in one.C:  # sample 0 is the single channel drawn from the same seed
        torch.testing.assert_close(ch.samples[0][key], one.C[key], rtol=0, atol=0)
        assert not torch.equal(ch.samples[1][key], ch.samples[0][key])
    rec, e, I = signals(net, ch, X, T)
    # By hand: each sample's own chain, I^2_s = f'_2 ⊙ e C_sᵀ, I^1_s = f'_1 ⊙ I^2_s C_sᵀ; then the mean.
    I2 = [(e @ C[(2, 3)].transpose(1, 2)) * rec.fprime(2) for C in ch.samples]
    I1 = [(i2 @ C[(1, 2)].transpose(1, 2)) * rec.fprime(1) for i2, C in zip(I2, ch.samples)]
    torch.testing.assert_close(I[2], sum(I2) / K)
    torch.testing.assert_close(I[1], sum(I1) / K)
    assert torch.equal(I[3], e)
    # Not the same as propagating with the averaged matrices (products of means).
    Cm = {key: sum(C[key] for C in ch.samples) / K for key in ch.C}
    I1m = (((e @ Cm[(2, 3)].transpose(1, 2)) * rec.fprime(2)) @ Cm[(1, 2)].transpose(1, 2)) * rec.fprime(1)
    assert not torch.allclose(I[1], I1m)
    assert ch.C is ch.samples[0]  # the propagation leaves sample 0 in place
    with pytest.raises(ValueError, match="feedback_samples"):
        build_channel("rbp", feedback_samples=0)


# -- per-synapse feedback (section 4.2 item 7) ---------------------------------------------------


def _brute_force_per_synapse(ch, rec, I, h, lr=1.0, bits=None, alpha=2.0 ** -6):
    """Σ_b over explicit per-example, per-synapse updates f'_i Σ_k Σ_m c_imj G^k_m O_j."""
    E, B = rec.output.shape[:2]
    O = rec.presynaptic(h, E)
    per_W = torch.zeros(E, B, ch.net.sizes[h], ch.net.sizes[h - 1])
    per_b = torch.zeros(E, B, ch.net.sizes[h])
    for k in ch.sources(h):
        Cw, Cb = ch.synapse_C[(h, k)]
        G = I[k]
        for i in range(per_W.shape[2]):
            for j in range(per_W.shape[3]):
                per_W[:, :, i, j] += (G * Cw[:, i, :, j].unsqueeze(1)).sum(-1) * O[:, :, j]
            per_b[:, :, i] += (G * Cb[:, i, :].unsqueeze(1)).sum(-1)
    if ch.derivative != "none":
        f = rec.fprime(h)
        per_W, per_b = per_W * f.unsqueeze(3), per_b * f
    if bits is not None:
        return quantize(per_W * lr, alpha, bits).mean(1) / lr, quantize(per_b * lr, alpha, bits).mean(1) / lr
    return per_W.mean(1), per_b.mean(1)


@pytest.mark.parametrize("name,opts", [("srbp", {}), ("rbp", {}), ("cascade", {}), ("rbp-nof", {}),
                                       ("srbp", {"feedback": {"congruent": True}})])
def test_per_synapse_direction_equals_brute_force(name, opts):
    X, T = batch(SIZES)
    net = small_net(SIZES)
    ch = build_channel(name, per_synapse=True, **opts).bind(net)
    rec = net.forward(X)
    e = net.output_loss.error(T, rec.output)
    I = ch.signals(rec, e)
    base = build_channel(name, **opts).bind(net).signals(rec, e)  # per-neuron signals the chain relays
    assert isinstance(I[1], SynapseSignal) and isinstance(I[2], SynapseSignal) and torch.equal(I[3], e)
    G = [None, *[base[k] for k in range(1, 4)]]
    for h in (1, 2):
        O = rec.presynaptic(h, net.E)
        dW, db = SGD(lr=1.0).bind(net).direction(I[h], O, 1.0)
        wW, wb = _brute_force_per_synapse(ch, rec, G, h)
        torch.testing.assert_close(dW, wW, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(db, wb, rtol=1e-5, atol=1e-6)
        qW, qb = I[h].direction(O, 0.5, 3, 2.0 ** -4, LEGACY_READING)  # eq. 19 on η·I·Oᵀ, as brute-forced
        wW, wb = _brute_force_per_synapse(ch, rec, G, h, lr=0.5, bits=3, alpha=2.0 ** -4)
        torch.testing.assert_close(qW, wW, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(qb, wb, rtol=1e-5, atol=1e-6)


def test_per_synapse_with_one_weight_per_neuron_is_srbp():
    # If every synapse of neuron i used c_ik (the neuron's weight), per-synapse = SRBP.
    X, T = batch(SIZES)
    ref = one_step_updates(small_net(SIZES), build_channel("srbp"), X, T)
    net = small_net(SIZES)
    ch = build_channel("srbp", per_synapse=True).bind(net)
    for (h, k), (Cw, Cb) in ch.synapse_C.items():
        Cw.copy_(ch.C[(h, k)].unsqueeze(-1).expand_as(Cw))
        Cb.copy_(ch.C[(h, k)])
    for a, b in zip(one_step_updates(net, ch, X, T), ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_per_synapse_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="signal transforms"):
        build_channel("srbp", per_synapse=True, lc_dropout=0.1)
    with pytest.raises(ValueError, match="derivative='local'"):
        build_channel("mixed", per_synapse=True, skip_layers=[2], derivative="local").bind(small_net(SIZES))
    with pytest.raises(ValueError, match="adaptive"):
        build_channel("asrbp", per_synapse=True)


# -- dropout in the learning channel (section 6.1, Figure 9) ---------------------------------------


def test_channel_dropout_p0_is_identity():
    X, T = batch(SIZES)
    for name in ("bp", "rbp", "srbp"):
        net = small_net(SIZES)
        _, _, ref = signals(net, build_channel(name).bind(net), X, T)
        ch = build_channel(name, transforms=[ChannelDropout(0.0)]).bind(net)
        _, _, got = signals(net, ch, X, T)
        for a, b in zip(ref[1:], got[1:]):
            assert torch.equal(a, b)
    J = torch.randn(2, 3, 4)
    assert ChannelDropout(0.0)(J, 1, None) is J
    with pytest.raises(ValueError, match="channel dropout p"):
        ChannelDropout(1.0)


@pytest.mark.parametrize("name", ["srbp", "rbp", "bp"])
def test_channel_dropout_expectation_is_the_undropped_signal(name):
    # Monte Carlo: n independent masks; |mean − truth| < 5 standard errors (empirical std / sqrt(n)).
    p, n = 0.3, 3000
    X, T = batch(SIZES)
    net = small_net(SIZES)
    _, _, ref = signals(net, build_channel(name).bind(net), X, T)
    ch = build_channel(name, lc_dropout=p).bind(net)
    rec = net.forward(X)
    e = net.output_loss.error(T, rec.output)
    draws = {h: [] for h in (1, 2)}
    for _ in range(n):
        I = ch.signals(rec, e)
        for h in (1, 2):
            draws[h].append(I[h])
    for h in (1, 2):
        D = torch.stack(draws[h]).double()
        se = D.std(0) / math.sqrt(n)
        assert torch.all((D.mean(0) - ref[h].double()).abs() <= 5 * se + 1e-9), (name, h)
    # Layer 2 receives e directly (SRBP, or the first step of the chain): zeros with
    # probability p, survivors exactly J/(1 − p) (Figure 9 caption).
    D2 = torch.stack(draws[2])
    zero = (D2 == 0).double().mean().item()
    assert abs(zero - p) < 5 * math.sqrt(p * (1 - p) / D2.numel())
    kept = D2 != 0
    torch.testing.assert_close(D2[kept], (ref[2].expand_as(D2) / (1 - p))[kept])


def test_forward_and_channel_dropout_use_separate_streams():
    X, T = batch(SIZES)
    a, b = Network(list(SIZES), seeds=[0, 1], dropout=0.2), Network(list(SIZES), seeds=[0, 1], dropout=0.2)
    ch_b = build_channel("srbp", lc_dropout=0.5).bind(b)
    for _ in range(3):
        ra, rb = a.forward(X, train=True), b.forward(X, train=True)
        ch_b.signals(rb, b.output_loss.error(T, rb.output))  # channel noise does not shift forward masks
        assert torch.equal(ra.O[1], rb.O[1]) and torch.equal(ra.O[2], rb.O[2])
    assert (ra.O[1] == 0).any()  # forward dropout is on


# -- ARBP/ASRBP and paper 2, Theorem 7 ------------------------------------------------------------


@pytest.mark.parametrize("hidden", ["identity", "tanh"])
def test_theorem7_adaptive_feedback_update_equals_transposed_forward_update(hidden):
    # Linear network (identity activations, identity output, squared error), equal rates:
    # ΔC^{h,h+1} = (ΔW^{h+1})ᵀ at every step, so C − Wᵀ stays the constant K (Theorem 7).
    # The rule gives the same identity with tanh (both use I^{h+1} and O^h).
    sizes = [4, 6, 5, 7, 3]
    net = Network(sizes, hidden=hidden, output="identity", seeds=[0, 1], dtype=torch.float64)
    ch = build_channel("arbp", adapt_rate=1.0).bind(net)
    opt = SGD(lr=0.05).bind(net)
    g = torch.Generator().manual_seed(0)
    K0 = {(h, k): C - net.W(k).transpose(1, 2) for (h, k), C in ch.C.items()}
    for _ in range(5):
        X = torch.randn(8, sizes[0], generator=g, dtype=torch.float64)
        T = torch.randn(8, sizes[-1], generator=g, dtype=torch.float64)
        W0 = [W.clone() for W in net.weights]
        C0 = {key: C.clone() for key, C in ch.C.items()}
        rec = net.forward(X)
        I = ch.signals(rec, net.output_loss.error(T, rec.output))
        lr = opt.lr_now()
        opt.step(rec, I)
        ch.adapt(rec, I, lr)
        for (h, k), C in ch.C.items():
            dW = net.W(k) - W0[k - 1]
            torch.testing.assert_close(C - C0[(h, k)], dW.transpose(1, 2), rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(C - net.W(k).transpose(1, 2), K0[(h, k)], rtol=1e-9, atol=1e-12)


def test_asrbp_adapts_each_skip_matrix_with_its_layer_activity_and_the_output_error():
    sizes = [4, 6, 5, 3]
    net = Network(sizes, hidden="tanh", output="identity", seeds=[0], dtype=torch.float64)
    ch = build_channel("asrbp").bind(net)
    assert ch.adapt_rate == 1.0 and build_channel("arbp").adapt_rate == 0.1  # Figure 2's 0.1 for ARBP
    X, T = batch(sizes, output="identity")
    X, T = X.double(), T.double()
    rec = net.forward(X)
    e = net.output_loss.error(T, rec.output)
    I = ch.signals(rec, e)
    C0 = {key: C.clone() for key, C in ch.C.items()}
    ch.adapt(rec, I, 0.2)
    for h in (1, 2):  # ΔC^{h,L} = η (O^h)ᵀ (T − O) / B
        want = 0.2 * rec.O[h].transpose(1, 2) @ e / X.shape[0]
        torch.testing.assert_close(ch.C[(h, 3)] - C0[(h, 3)], want)


# -- topology, frozen layers, sign/magnitude -----------------------------------------------------


def test_mixed_and_cascade_signals():
    sizes = (5, 7, 6, 8, 4)
    X, T = batch(sizes)
    net = small_net(sizes)
    ch = build_channel("mixed", skip_layers=[2]).bind(net)
    assert ch._sources == {1: [2], 2: [4], 3: [4]}
    rec, e, I = signals(net, ch, X, T)
    I2 = (e @ ch.C[(2, 4)].transpose(1, 2)) * rec.fprime(2)  # skip: SRBP to layer 2
    torch.testing.assert_close(I[2], I2)
    torch.testing.assert_close(I[1], (I2 @ ch.C[(1, 2)].transpose(1, 2)) * rec.fprime(1))  # chain below
    cas = build_channel("cascade").bind(net)
    rec, e, I = signals(net, cas, X, T)
    J1 = sum(I[k] @ cas.C[(1, k)].transpose(1, 2) for k in (2, 3)) + e @ cas.C[(1, 4)].transpose(1, 2)
    torch.testing.assert_close(I[1], J1 * rec.fprime(1))
    custom = build_channel("cascade", topology="cascade")
    assert custom.topology == "cascade"
    with pytest.raises(ValueError, match="skip_layers"):
        build_channel("mixed")
    with pytest.raises(ValueError, match="hidden layers 1..3"):
        build_channel("mixed", skip_layers=[4]).bind(net)
    with pytest.raises(ValueError, match="means topology"):
        build_channel("cascade", topology="chain")
    mapped = build_channel("mixed", topology={"1": [3, 4], "2": [4]}).bind(net)  # JSON-style keys
    assert mapped._sources == {1: [3, 4], 2: [4], 3: []}
    assert build_channel("mixed", topology="skip").bind(net)._sources == {1: [4], 2: [4], 3: [4]}
    with pytest.raises(ValueError, match="layer 2 can receive only from layers 3..4"):
        build_channel("mixed", topology={2: [1]}).bind(net)


def test_frozen_layers_stay_fixed_while_the_channel_passes_through_them():
    X, T = batch(SIZES)
    net = small_net(SIZES)
    ch = build_channel("rbp").bind(net)
    opt = SGD(lr=0.5, frozen=[2]).bind(net)
    W2, W1 = net.W(2).clone(), net.W(1).clone()
    for _ in range(3):
        rec = net.forward(X)
        opt.step(rec, ch.signals(rec, net.output_loss.error(T, rec.output)))
    assert torch.equal(net.W(2), W2) and not torch.equal(net.W(1), W1)


def test_sign_only_and_magnitude_only_signals():
    X, T = batch(SIZES)
    net = small_net(SIZES)
    ref = build_channel("srbp").bind(net)
    rec, e, _ = signals(net, ref, X, T)
    for opt, f in (("sign_only", torch.sign), ("magnitude_only", torch.abs)):
        ch = build_channel("srbp", **{opt: True}).bind(net)
        _, _, I = signals(net, ch, X, T)
        for h in (1, 2):
            torch.testing.assert_close(I[h], f(e @ ch.C[(h, 3)].transpose(1, 2)) * rec.fprime(h))
    with pytest.raises(ValueError, match="exclude each other"):
        build_channel("srbp", sign_only=True, magnitude_only=True)


# -- accounting: eq. 14 and 15 ---------------------------------------------------------------------


def test_channel_cost_for_every_variant():
    s = [784, 100, 100, 100, 100, 10]
    chain = 3 * 100 * 100 + 100 * 10
    assert channel_cost(s, "bp").channel_mults == chain and channel_cost(s, "sbp").channel_mults == chain
    assert channel_cost(s, "rbp").channel_mults == chain
    assert channel_cost(s, "srbp").channel_mults == eq15_W_prime(s) == 4000
    assert channel_cost(s, "top").channel_mults == 0
    assert channel_cost(s, "cascade").channel_mults == 3 * 10000 + 2 * 10000 + 10000 + 4 * 1000
    assert channel_cost(s, "mixed", {"skip_layers": [1, 3]}).channel_mults == 2 * 1000 + 10000 + 1000
    assert channel_cost(s, "rbp", {"feedback_samples": 3}).channel_mults == 3 * chain
    assert channel_cost(s, "srbp", {"feedback": {"distribution": "sparse", "n": 2}}).channel_mults == 4 * 2 * 10
    # Per synapse: N_h N_k weights for each of the N_{h-1} synapses of a neuron of layer h.
    assert channel_cost(s, "srbp", {"per_synapse": True}).channel_mults == 10 * 100 * (784 + 3 * 100)
    assert (channel_cost(s, "rbp", {"per_synapse": True}).channel_mults
            == 100 * 100 * (784 + 100 + 100) + 100 * 10 * 100 + 2 * 100 * 100 + 100 * 10)
    c = channel_cost(s, "arbp")
    assert c.adapt_mults == chain and "adapting" in c.describe()
    assert c.W == eq14_W(s) == 784 * 100 + 3 * 100 * 100 + 100 * 10


def test_cli_flags_reach_the_channel_options(tmp_path, capsys):
    from lchannel.cli import build_parser, config_from_args, main

    p = build_parser()
    args = p.parse_args(["train", "--algorithm", "mixed", "--skip-layers", "1", "--congruent", "--feedback", "uniform",
                         "--feedback-samples", "2", "--sign-only", "--lc-dropout", "0.1",
                         "--channel-opt", 'feedback={"scale": 0.5}', "--dataset", "synthetic", "--arch", "2,8,8,8,1"])
    cfg = config_from_args(args, args.algorithm)
    assert cfg.channel == {"feedback": {"distribution": "uniform", "congruent": True, "scale": 0.5},
                           "feedback_samples": 2, "skip_layers": [1], "sign_only": True, "lc_dropout": 0.1}
    args = p.parse_args(["train", "--algorithm", "rbp", "--resample", "sign_concordant", "--dataset", "synthetic"])
    assert config_from_args(args, "rbp").channel == {"resample": "sign_concordant"}
    args = p.parse_args(["train", "--algorithm", "srbp", "--magnitude-only", "--quantize-bits", "3",
                         "--dataset", "synthetic"])
    assert config_from_args(args, "srbp").channel == {"magnitude_only": True, "quantize_bits": 3}
    args = p.parse_args(["train", "--algorithm", "mixed", "--topology", '{"1": [3]}', "--per-synapse",
                         "--dataset", "synthetic"])
    assert config_from_args(args, "mixed").channel == {"topology": {"1": [3]}, "per_synapse": True}
    out = tmp_path / "run"
    main(["train", "--algorithm", "srbp", "--per-synapse", "--dataset", "synthetic", "--k", "0", "--n-train", "200",
          "--arch", "2,8,8,1", "--epochs", "1", "--out", str(out), "--quiet"])
    text = capsys.readouterr().out
    assert f"{1 * 8 * (2 + 8):,} multiplications/example" in text
    with pytest.raises(SystemExit):
        main(["train", "--algorithm", "rbp", "--resample", "sometimes"])


def test_quantized_update_is_the_mean_of_quantized_per_example_updates():
    # Section 5.2: eq. 19 on each example's η I_b O_bᵀ, then the minibatch mean; the engine
    # computes it in chunks of examples, checked here against the plain loop.
    from lchannel.channels.transforms import quantize
    g = torch.Generator().manual_seed(0)
    I, O = torch.randn(2, 37, 100, generator=g) * 0.1, torch.randn(2, 37, 784, generator=g)  # 3 chunks
    opt = SGD(lr=0.1, update_bits=3, update_alpha=2 ** -6, update_reading=LEGACY_READING)
    dW, db = opt.direction(I, O, 0.1)
    want = sum(quantize(0.1 * I[:, b, :, None] * O[:, b, None, :], 2 ** -6, 3) for b in range(37)) / 37 / 0.1
    torch.testing.assert_close(dW, want, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(db, quantize(0.1 * I, 2 ** -6, 3).mean(1) / 0.1)
