"""The literature's relatives of RBP in the converter (issue 27), each against its published
definition on a small MLP in float64: the gradients autograd leaves in ``.grad`` equal
a hand-written backward pass through the matrices each paper defines, and the feedback
learns as each paper says.

- uSF, frSF, brSF (Liao, Leibo & Poggio 2016; biotorch's forms): B = s·sign(W),
  |R|·sign(W) with R fixed, |R_t|·sign(W) with R_t redrawn every pass;
- KP (Akrout et al. 2019, eq. 16-17): B ← (1 − λ)B − η ∂W, so with W decayed alike
  B − W shrinks by exactly (1 − λ) per step;
- WM (Akrout et al. 2019, eq. 7): B ← (1 − λ)B + η ξᵀ(ξWᵀ)/n, whose fixed point is
  (η/λ)·W;
- DRTP (Frenkel, Lefebvre & Bol 2021): hidden layers receive y*·Cᵀ (their code's
  ``labels.mm(B)``), the output layer the true error;
- the aliases fa, dfa are rbp, srbp.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import lchannel.torch as lct
from lchannel.channels import REGISTRY, build_channel, converter_names
from lchannel.engine.rng import generator
from lchannel.torch.modes import draw_like
from lchannel.channels.feedback import FeedbackInit

torch.set_default_dtype(torch.float64)  # restored below: every tensor of this module is float64
N = 8
g0 = torch.Generator().manual_seed(0)
X = torch.randn(N, 5, generator=g0)
Y = torch.arange(N) % 3
torch.set_default_dtype(torch.float32)


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def linears(model):
    return [m for m in model if isinstance(m, nn.Linear)]


def autograd_grads(model, x=X, y=Y):
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    return [(m.weight.grad.clone(), m.bias.grad.clone()) for m in linears(model)]


def by_hand(model, B, x=X, y=Y, direct=None):
    """The gradients of a tanh MLP with cross-entropy when the signal to layer l's input
    travels through ``B[l]`` (chained), or, with ``direct``, arrives at layer l's input as
    ``direct(l)`` (a (N, fan_in) gradient, before the tanh derivative)."""
    Ws = [m.weight.detach() for m in linears(model)]
    bs = [m.bias.detach() for m in linears(model)]
    acts, pre = [x], []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        z = acts[-1] @ W.t() + b
        pre.append(z)
        acts.append(torch.tanh(z) if i < len(Ws) - 1 else z)
    g = (torch.softmax(acts[-1], 1) - nn.functional.one_hot(y, 3).double()) / x.shape[0]  # ∂loss/∂logits
    out = [None] * len(Ws)
    for i in reversed(range(len(Ws))):
        out[i] = (g.t() @ acts[i], g.sum(0))
        if i == 0:
            break
        sent = direct(i) if direct is not None else g @ B[i]
        g = sent * (1 - torch.tanh(pre[i - 1]) ** 2)
    return out


def close(got, want, tol=1e-12):
    for (gw, gb), (ww, wb) in zip(got, want):
        torch.testing.assert_close(gw, ww, rtol=tol, atol=tol)
        torch.testing.assert_close(gb, wb, rtol=tol, atol=tol)


def sign(W):
    return torch.where(W >= 0, 1.0, -1.0).double()


def test_every_registry_algorithm_with_a_converter_mode_is_accepted_by_its_names():
    accepted = set(lct.ALGORITHMS)
    for name, entry in REGISTRY.items():
        assert (name in accepted) == (entry.converter is not None), name
        assert all(a in accepted for a in entry.aliases if entry.converter)
        if entry.converter is None:
            assert entry.converter_refusal and lct.REFUSED[name] == entry.converter_refusal
    assert {"fa", "dfa", "usf", "brsf", "frsf", "kp", "wm", "drtp"} <= set(converter_names())


@pytest.mark.parametrize("alias,name,kw", [("fa", "rbp", {}), ("dfa", "srbp", {"example_input": X[:2]}),
                                           ("fa-nof", "rbp-nof", {})])
def test_aliases_are_the_same_algorithm(alias, name, kw):
    a, b = lct.convert(mlp(), alias, seed=2, **kw), lct.convert(mlp(), name, seed=2, **kw)
    assert lct.channel_of(a).name == name
    close(autograd_grads(a), autograd_grads(b), 0)


def test_usf_sends_the_signal_through_glorot_scaled_signs_of_w():
    model = lct.convert(mlp(), "usf", feedback={"scale": 2.0}, scaling="distribution")  # biotorch's s
    Ls = linears(model)
    s = [2.0 * math.sqrt(2.0 / (m.in_features + m.out_features)) for m in Ls]
    close(autograd_grads(model), by_hand(model, [s[i] * sign(m.weight.detach()) for i, m in enumerate(Ls)]))


def test_frsf_keeps_random_magnitudes_and_follows_the_current_signs():
    model = lct.convert(mlp(), "frsf", seed=3)  # magnitudes from a uniform R by default
    rbp = lct.convert(mlp(), "rbp", seed=3, feedback="uniform")  # both at the default scaling, "match"
    Ls = linears(model)
    for m, r in zip(Ls, linears(rbp)):
        assert torch.equal(m.feedback, r.feedback.abs())  # the same draw, its magnitudes
    with torch.no_grad():
        Ls[2].weight.neg_()  # the signs move: the feedback follows at the next pass
    close(autograd_grads(model), by_hand(model, [m.feedback * sign(m.weight.detach()) for m in Ls]))


def test_brsf_redraws_the_magnitudes_every_pass_from_the_resample_stream():
    model = lct.convert(mlp(), "brsf", seed=4, scaling="distribution")
    Ls = linears(model)
    got = autograd_grads(model)
    g = generator(4, "resample")
    fb = FeedbackInit("uniform")  # brSF's default magnitudes, biotorch's
    # layers run in forward order; the first layer's input is data and sends nothing
    mags = {i: draw_like(fb, Ls[i].weight.detach(), g).abs() for i in (1, 2)}
    for i in (1, 2):
        assert torch.equal(Ls[i].feedback, mags[i])
    close(got, by_hand(model, {i: mags[i] * sign(Ls[i].weight.detach()) for i in (1, 2)}))
    before = Ls[2].feedback.clone()
    autograd_grads(model)
    assert not torch.equal(before, Ls[2].feedback)


@pytest.mark.parametrize("name", ["frsf", "brsf"])
def test_sign_symmetry_magnitudes_default_to_uniform_and_a_given_distribution_wins(name):
    assert lct.channel_of(lct.convert(mlp(), name)).feedback == FeedbackInit("uniform")
    assert lct.channel_of(lct.convert(mlp(), name, feedback="normal")).feedback == FeedbackInit("normal")
    assert lct.channel_of(lct.convert(mlp(), "rbp")).feedback == FeedbackInit("normal")


def test_kolen_pollack_feedback_gets_w_s_update_and_the_difference_decays_geometrically():
    eta, lam = 0.05, 0.01
    model = lct.convert(mlp(), "kp", adapt_lr=eta, feedback_decay=lam, seed=1)
    Ls = linears(model)
    B0 = [m.feedback.clone() for m in Ls]
    grads = autograd_grads(model)
    close(grads, by_hand(model, B0))  # the signal went through B before its update
    for i in (1, 2):
        torch.testing.assert_close(Ls[i].feedback, (1 - lam) * B0[i] - eta * grads[i][0], rtol=1e-13, atol=1e-15)
    # Akrout et al.: with the same decay on W (weight_decay = λ/η in SGD), B − W → 0 as (1 − λ)^t
    model = lct.convert(mlp(), "kp", adapt_lr=eta, feedback_decay=lam, seed=1)
    Ls = linears(model)
    opt = torch.optim.SGD([m.weight for m in Ls], lr=eta, weight_decay=lam / eta)
    gap0 = [(m.feedback - m.weight.detach()).norm() for m in Ls]
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), Y).backward()
        opt.step()
    for i in (1, 2):
        gap = (Ls[i].feedback - Ls[i].weight.detach()).norm()
        assert gap.item() == pytest.approx(gap0[i].item() * (1 - lam) ** 5, rel=1e-10)


def test_weight_mirror_steps_toward_w_from_noise_and_its_fixed_point_is_w():
    eta, lam = 0.2, 0.1
    model = lct.convert(mlp(), "wm", adapt_lr=eta, feedback_decay=lam, seed=5)
    Ls = linears(model)
    B0 = [m.feedback.clone() for m in Ls]
    got = autograd_grads(model)
    g = generator(5, "mirror")
    want_B = {}
    for i in (1, 2):  # forward order; the first layer (data input) sends nothing and does not mirror
        W = Ls[i].weight.detach()
        xi = torch.randn((N, W.shape[1]), generator=g, dtype=W.dtype)
        want_B[i] = (1 - lam) * B0[i] + eta * (xi @ W.t()).t() @ xi / N
        torch.testing.assert_close(Ls[i].feedback, want_B[i], rtol=1e-13, atol=1e-15)
    close(got, by_hand(model, want_B))  # the pass used the mirrored B
    # with W fixed, B → (η/λ) W: E[ξᵀ ξ Wᵀ]/n = Wᵀ...; here η/λ = 2
    big = torch.randn(256, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    for _ in range(150):
        model(big)  # learning passes (gradients on), without backward: W stays fixed
    for i in (1, 2):
        W, B = Ls[i].weight.detach(), Ls[i].feedback
        cos = (W * B).sum() / (W.norm() * B.norm())
        assert math.degrees(math.acos(min(1.0, cos.item()))) < 6
        assert B.norm() / W.norm() == pytest.approx(eta / lam, rel=0.1)


def test_weight_mirror_on_a_convolution_tracks_the_kernel():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Tanh(), nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    model = lct.convert(model.double(), "wm", adapt_lr=0.2, feedback_decay=0.2, seed=0)
    x = torch.randn(64, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    for _ in range(100):
        model(x)
    W, B = model[2].weight.detach(), model[2].feedback
    cos = (W * B).sum() / (W.norm() * B.norm())
    assert math.degrees(math.acos(min(1.0, cos.item()))) < 6 and B.norm() / W.norm() == pytest.approx(1.0, rel=0.1)


def test_drtp_projects_the_target_and_the_output_layer_learns_from_the_error():
    model = lct.convert(mlp(), "drtp", example_input=X[:2], seed=6)
    Ls = linears(model)
    model.zero_grad()
    loss = nn.functional.cross_entropy(model(X), Y)
    lct.set_targets(model, Y)
    loss.backward()
    got = [(m.weight.grad.clone(), m.bias.grad.clone()) for m in Ls]
    T = nn.functional.one_hot(Y, 3).double()
    # Frenkel et al.'s hook: grad_output_est = labels.mm(B), in the loss's scale (mean: / N)
    want = by_hand(model, None, direct=lambda i: (T / N) @ Ls[i].skip_feedback.t())
    close(got, want)
    with pytest.raises(ValueError, match="set_targets"):  # targets are used once
        nn.functional.cross_entropy(model(X), Y).backward()
    with pytest.raises(ValueError, match="targets of shape"):
        lct.set_targets(model, torch.zeros(N, 4))
        nn.functional.cross_entropy(model(X), Y).backward()
    with pytest.raises(ValueError, match="takes no targets"):
        lct.set_targets(lct.convert(mlp(), "rbp"), Y)


def test_srbp_without_example_input_finds_its_maps_at_the_first_pass_that_learns():
    lazy = lct.convert(mlp(), "srbp", seed=7)
    eager = lct.convert(mlp(), "srbp", seed=7, example_input=X[:2])
    assert "skip_feedback" not in linears(lazy)[1]._buffers
    with torch.no_grad():
        lazy(X)  # an evaluation pass draws nothing
    assert "skip_feedback" not in linears(lazy)[1]._buffers
    close(autograd_grads(lazy), autograd_grads(eager), 0)
    for a, b in zip(linears(lazy), linears(eager)):
        assert a._buffers.keys() == b._buffers.keys()
    close(autograd_grads(lazy), autograd_grads(eager), 0)


def test_one_calling_convention_ignores_what_an_algorithm_does_not_use():
    common = dict(feedback="uniform", example_input=X[:2], adapt_lr=0.01, feedback_decay=0.001, seed=0)
    for name in ("bp", "rbp", "srbp", "arbp", "asrbp", "usf", "frsf", "brsf", "kp", "wm", "drtp", "fa", "dfa"):
        model = lct.convert(mlp(), name, **common)
        if name == "drtp":
            lct.set_targets(model, Y)
        grads = autograd_grads(model)
        assert all(torch.isfinite(w).all() for w, _ in grads), name


def test_transformer_encoders_convert_their_feed_forward_layers_and_say_what_stays_on_bp():
    def encoder(batch_first):
        torch.manual_seed(0)
        layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=batch_first, dropout=0.0)
        return nn.TransformerEncoder(layer, 1, enable_nested_tensor=False).double()

    # a sequence-first encoder under a direct form: refused before training, naming the modules
    with pytest.raises(ValueError, match=r"\['layers.0.self_attn'\] are sequence-first.*batch_first=True"):
        lct.convert(encoder(False), "srbp", warn=False)
    x = torch.randn(4, 5, 8, dtype=torch.float64)
    for name, batch_first in (("rbp", False), ("srbp", True), ("drtp", True)):
        with pytest.warns(UserWarning, match=r"self_attn \(MultiheadAttention\).*self_attn.out_proj"):
            model = lct.convert(encoder(batch_first), name)
        ch = lct.channel_of(model)
        assert [n for n, _ in ch.layers] == ["layers.0.linear1", "layers.0.linear2"]
        out = model(x)
        if name == "drtp":
            lct.set_targets(model, torch.zeros_like(out).reshape(4, -1))
        out.pow(2).mean().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name,fixed", [("usf", None), ("frsf", "signs"), ("brsf", "sign_concordant")])
def test_the_engine_runs_sign_symmetry(name, fixed):
    from lchannel import Network
    net = Network([5, 7, 6, 3], hidden="tanh", output="softmax", seeds=[0])
    ch = build_channel(name).bind(net)
    C0 = ch.C[(1, 2)].clone()
    with torch.no_grad():
        net.W(2).neg_()
    ch.on_batch_start()
    ref = net.W(2).transpose(1, 2)
    assert torch.equal(torch.where(ref >= 0, 1.0, -1.0), torch.sign(ch.C[(1, 2)]))
    if name == "usf":
        assert set(ch.C[(1, 2)].abs().unique().tolist()) == {1.0}
    elif name == "frsf":
        assert torch.equal(ch.C[(1, 2)].abs(), C0.abs())  # the magnitudes stay
    else:
        assert not torch.equal(ch.C[(1, 2)].abs(), C0.abs())  # new magnitudes every minibatch


def test_the_engine_runs_drtp():
    from lchannel import Network
    net = Network([5, 7, 6, 3], hidden="tanh", output="softmax", seeds=[0])
    ch = build_channel("drtp").bind(net)
    x = X.float()
    T = nn.functional.one_hot(Y, 3).float()
    rec = net.forward(x)
    e = net.output_loss.error(T, rec.output)
    I = ch.signals(rec, e)
    torch.testing.assert_close(I[3], e)
    for h in (1, 2):
        # the descent signal of Frenkel et al.'s estimate T·B: I^h = f' ⊙ C^{h,L}(−T)
        want = rec.fprime(h) * (-T.unsqueeze(0) @ ch.C[(h, 3)].transpose(1, 2))
        torch.testing.assert_close(I[h], want)
