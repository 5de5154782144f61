"""Independent truths for the engine: autograd gradients, invariants, the papers' Facts."""

import pytest
import torch

from lchannel.channels import RandomBackprop, SkippedRandomBackprop, algorithm_names, build_channel, resolve
from lchannel.engine.nets import Network

from helpers import batch, example_options, one_step_updates, small_net, updates_for

SIZES = (5, 7, 6, 4)


@pytest.mark.parametrize("hidden", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("output", ["softmax", "logistic", "identity"])
def test_bp_updates_equal_autograd_gradients(hidden, output):
    net = small_net(SIZES, hidden, output)
    X, T = batch(SIZES, output)
    dparams = one_step_updates(net, build_channel("bp"), X, T, lr=1.0)
    # Independent truth: autograd on the mean loss of each member, from the same weights.
    params = [p.clone().requires_grad_(True) for p in net.weights + net.biases]
    Ws, bs = params[: net.L], params[net.L:]
    O = X.unsqueeze(0).expand(net.E, *X.shape)
    for h in range(net.L):
        S = O @ Ws[h].transpose(1, 2) + bs[h].unsqueeze(1)
        O = net.activations[h + 1](S)
    loss = net.output_loss.loss(O, T).mean(1).sum()  # members are independent
    grads = torch.autograd.grad(loss, params)
    for d, g in zip(dparams, grads):
        torch.testing.assert_close(d, -g, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("output", ["softmax", "logistic", "identity"])
def test_forward_record_follows_eq2(output):
    # The engine computes tanh through σ and the softmax layer transposed; the record must
    # still hold S^h = W^h O^{h-1} + b^h and O^h = f(S^h) of eq. 2, in (E, B, N_h) shape.
    net = small_net(SIZES, "tanh", output)
    X, _ = batch(SIZES, output)
    rec = net.forward(X)
    O = X.unsqueeze(0).expand(net.E, *X.shape)
    for h in range(1, net.L + 1):
        S = O @ net.W(h).transpose(1, 2) + net.b(h).unsqueeze(1)
        O = torch.tanh(S) if h < net.L else {
            "softmax": lambda s: torch.softmax(s, -1), "logistic": torch.sigmoid,
            "identity": lambda s: s}[output](S)
        torch.testing.assert_close(rec.S[h], S, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(rec.O[h], O, rtol=1e-5, atol=1e-6)
    assert rec.output.shape == (net.E, X.shape[0], SIZES[-1])


def test_tanh_through_sigmoid_matches_torch_tanh():
    S = torch.linspace(-20, 20, 2001)
    from lchannel.engine.activations import Tanh
    torch.testing.assert_close(Tanh()(S), torch.tanh(S), rtol=0, atol=3e-7)


def test_rbp_with_feedback_equal_to_forward_transpose_is_bp():
    X, T = batch(SIZES)
    net_bp, net_rbp = small_net(SIZES), small_net(SIZES)
    bp, rbp = build_channel("bp").bind(net_bp), RandomBackprop().bind(net_rbp)
    from lchannel.engine.plasticity import SGD
    opt_bp, opt_rbp = SGD(lr=0.5).bind(net_bp), SGD(lr=0.5).bind(net_rbp)
    for step in range(5):  # several steps: C must track W^T as W changes
        for (h, k), C in rbp.C.items():
            C.copy_(net_rbp.W(k).transpose(1, 2))
        for net, ch, opt in ((net_bp, bp, opt_bp), (net_rbp, rbp, opt_rbp)):
            rec = net.forward(X)
            opt.step(rec, ch.signals(rec, net.output_loss.error(T, rec.output)))
    for a, b in zip(net_bp.weights + net_bp.biases, net_rbp.weights + net_rbp.biases):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_one_hidden_layer_rbp_equals_srbp_with_the_same_matrix():
    sizes = (5, 8, 3)
    X, T = batch(sizes)
    up_rbp = one_step_updates(small_net(sizes), RandomBackprop(), X, T)
    net = small_net(sizes)
    srbp = SkippedRandomBackprop().bind(net)
    rbp_net = small_net(sizes)
    rbp = RandomBackprop().bind(rbp_net)
    torch.testing.assert_close(srbp.C[(1, 2)], rbp.C[(1, 2)])  # same seed, same matrix
    up_srbp = one_step_updates(net, srbp, X, T)
    for a, b in zip(up_rbp, up_srbp):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


ALL = algorithm_names()
# Facts 2-3 hold where every signal is built from the output error (not DRTP's target)
ERROR_DRIVEN = [n for n in ALL if resolve(n)[0].error_driven]  # every registered algorithm and its no-f' form: the checks follow the registry


def test_fact1_top_layer_update_is_the_same_under_every_algorithm():
    X, T = batch(SIZES)
    ref = updates_for("bp", X, T)
    L = len(SIZES) - 1
    for name in ALL:
        up = updates_for(name, X, T)
        torch.testing.assert_close(up[L - 1], ref[L - 1], rtol=0, atol=0, msg=name)  # W^L
        torch.testing.assert_close(up[2 * L - 1], ref[2 * L - 1], rtol=0, atol=0, msg=name)  # b^L


@pytest.mark.parametrize("name", ERROR_DRIVEN)
def test_fact2_flipping_the_error_flips_every_update(name):
    X, T = batch(SIZES)
    net = small_net(SIZES)
    ch = build_channel(name, **example_options(name)).bind(net)
    e = net.output_loss.error(T, net.forward(X).output)
    up = one_step_updates(net, ch, X, T, e_override=e)
    down = one_step_updates(net, ch, X, T, e_override=-e)
    assert any(u.abs().sum() > 0 for u in up)
    for a, b in zip(up, down):
        torch.testing.assert_close(a, -b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ERROR_DRIVEN)
def test_fact3_no_error_no_update(name):
    X, T = batch(SIZES)
    net = small_net(SIZES)
    ch = build_channel(name, **example_options(name)).bind(net)
    e = torch.zeros(net.E, X.shape[0], SIZES[-1])
    for d in one_step_updates(net, ch, X, T, e_override=e):
        assert torch.count_nonzero(d) == 0


def test_drtp_is_not_error_driven_its_hidden_layers_learn_without_an_error():
    # Frenkel et al.: the hidden layers hear the target, so Fact 3 fails there by design,
    # while the top layer, trained on T − O, still has no update without an error
    X, T = batch(SIZES)
    net = small_net(SIZES)
    ch = build_channel("drtp").bind(net)
    O = net.forward(X).output
    e = torch.zeros_like(net.output_loss.error(T, O))
    up = one_step_updates(net, ch, X, T, e_override=e)
    L = len(SIZES) - 1
    assert torch.count_nonzero(up[L - 1]) == 0 and all(torch.count_nonzero(up[h]) > 0 for h in range(L - 1))


def test_top_layer_only_leaves_lower_layers_unchanged():
    X, T = batch(SIZES)
    up = updates_for("top", X, T)
    L = len(SIZES) - 1
    for h in range(L - 1):
        assert torch.count_nonzero(up[h]) == 0 and torch.count_nonzero(up[L + h]) == 0
    assert torch.count_nonzero(up[L - 1]) > 0


@pytest.mark.parametrize("name", ["bp", "sbp", "rbp", "srbp"])
def test_no_fprime_differs_from_default(name):
    X, T = batch(SIZES)
    a, b = updates_for(name, X, T), updates_for(name + "-nof", X, T)
    assert not torch.allclose(a[0], b[0])


def test_sbp_is_product_of_transposed_forward_matrices_times_local_derivative():
    X, T = batch(SIZES)
    net = small_net(SIZES)
    ch = build_channel("sbp").bind(net)
    rec = net.forward(X)
    e = net.output_loss.error(T, rec.output)
    I = ch.signals(rec, e)
    # h = 1: f'(S^1) ⊙ e W^3 W^2 (row form of (W^2)ᵀ (W^3)ᵀ (T − O)), no upper derivatives.
    expect = (e @ net.W(3) @ net.W(2)) * rec.fprime(1)
    torch.testing.assert_close(I[1], expect)


def test_srbp_signal_is_feedback_times_error_times_local_derivative():
    X, T = batch(SIZES)
    net = small_net(SIZES)
    ch = SkippedRandomBackprop().bind(net)
    rec = net.forward(X)
    e = net.output_loss.error(T, rec.output)
    I = ch.signals(rec, e)
    for h in (1, 2):  # paper 2 eq. 11: R^h = f'(S^h) ⊙ C^h (T − O)
        torch.testing.assert_close(I[h], (e @ ch.C[(h, 3)].transpose(1, 2)) * rec.fprime(h))


def test_feedback_is_drawn_from_the_scaled_normal_and_never_seen_by_the_optimizer():
    net = Network([100, 300, 300, 10], seeds=[0])
    ch = RandomBackprop().bind(net)
    C = ch.C[(1, 2)]
    assert C.shape == (1, 300, 300)
    std = (2.0 / 600) ** 0.5
    assert abs(C.std().item() - std) / std < 0.02
    assert abs(C.mean().item()) < 0.01 * std * 10
    before = C.clone()
    X, T = batch([100, 300, 300, 10], B=16)
    one_step_updates(net, ch, X, T)
    torch.testing.assert_close(C, before, rtol=0, atol=0)
    assert "C" in ch.checkpoint_state() and "C_1_2" in ch.state_dict()


def test_same_seed_same_forward_weights_across_algorithms():
    a, b = small_net(SIZES), small_net(SIZES)
    build_channel("bp").bind(a)
    build_channel("srbp").bind(b)
    for x, y in zip(a.weights, b.weights):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_glorot_init_statistics_and_zero_biases():
    net = Network([400, 600, 10], seeds=[3], init="glorot_normal")
    W = net.W(1)
    assert abs(W.std().item() - (2 / 1000) ** 0.5) < 0.002
    assert all(torch.count_nonzero(b) == 0 for b in net.biases)
    u = Network([400, 600, 10], seeds=[3], init="glorot_uniform").W(1)
    limit = (6 / 1000) ** 0.5
    assert u.abs().max() <= limit and u.abs().max() > 0.99 * limit


def test_bad_inputs_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="activation"):
        Network([2, 3, 1], hidden="swish")
    with pytest.raises(ValueError, match="output"):
        Network([2, 3, 1], output="hinge")
    with pytest.raises(ValueError, match="algorithm"):
        build_channel("rpb")
    with pytest.raises(ValueError, match="derivative"):
        build_channel("rbp", derivative="some")
    with pytest.raises(ValueError, match="architecture"):
        Network("784,x,10")
