"""lchannel.torch against independent truth: the explicit engine's updates (float64) and
plain autograd.

Sign and scale convention: the engine's update is ΔW^h = η/B · (I^h)ᵀ O^{h-1} built on
e = T − O (W += ΔW); autograd's gradient of the mean-reduced cross-entropy is the negative
of that over η: ∂loss/∂W^h = −(1/B) (I^h)ᵀ O^{h-1}.
"""

import copy

import pytest
import torch
from torch import nn

import lchannel.torch as lct
from lchannel import Network, build_channel

SIZES = [5, 7, 6, 4]
L = len(SIZES) - 1


def engine_feedback(channel, h, k):
    """The engine's feedback matrix C^{h,k}, shape (N_h, N_k), of member 0.  The only place
    these tests touch the engine's internals (adapt it here if they are renamed)."""
    return channel.C[(h, k)][0]


def batch(B=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(B, SIZES[0], generator=g, dtype=torch.float64)
    y = torch.randint(0, SIZES[-1], (B,), generator=g)
    return X, y, nn.functional.one_hot(y, SIZES[-1]).double()


def engine(name, X, T, **opts):
    """The engine's network, channel, signals I^h and updates ΔW^h/η, Δb^h/η (member 0)."""
    net = Network(SIZES, hidden="tanh", output="softmax", seeds=[0], dtype=torch.float64)
    ch = build_channel(name, **opts).bind(net)
    rec = net.forward(X)
    e = net.output_loss.error(T, rec.output)
    I = ch.signals(rec, e)
    B = X.shape[0]
    dW = {h: I[h][0].t() @ rec.presynaptic(h, 1)[0] / B for h in range(1, L + 1)}
    db = {h: I[h][0].sum(0) / B for h in range(1, L + 1)}
    return net, ch, rec, I, dW, db


def mirror(net):
    """nn.Sequential(Linear, Tanh, ..., Linear) with the engine's weights; layer h is [2h-2]."""
    layers = []
    for h in range(1, L + 1):
        lin = nn.Linear(SIZES[h - 1], SIZES[h]).double()
        with torch.no_grad():
            lin.weight.copy_(net.W(h)[0])
            lin.bias.copy_(net.b(h)[0])
        layers += [lin, nn.Tanh()] if h < L else [lin]
    return nn.Sequential(*layers)


def layer(model, h):
    return model[2 * h - 2]


def converted_grads(model, X, y):
    model.zero_grad()
    nn.functional.cross_entropy(model(X), y).backward()
    return {h: (layer(model, h).weight.grad, layer(model, h).bias.grad) for h in range(1, L + 1)}


def copy_engine_feedback(model, ch, name):
    """Put the engine's matrices into the converted layers: RBP's C^{h,h+1} is (W^{h+1})ᵀ's
    stand-in (B = Cᵀ on layer h+1); SRBP's C^{h,L} reaches layer h+1's input (layer h's
    output in the no-f' form)."""
    with torch.no_grad():
        for h in range(1, L):
            if "srbp" in name:
                target = layer(model, h if name.endswith("-nof") else h + 1)
                target.skip_feedback.copy_(engine_feedback(ch, h, L))
            elif name != "bp" and name != "bp-nof":
                layer(model, h + 1).feedback.copy_(engine_feedback(ch, h, h + 1).t())


CASES = [
    ("bp", {}, {}),
    ("bp-nof", {}, {}),
    ("rbp", {}, {}),
    ("rbp-nof", {}, {}),
    ("srbp", {}, {}),
    ("srbp-nof", {}, {}),
    ("rbp", {"quantize_bits": 3}, {"quantize_bits": 3}),
    ("srbp", {"quantize_bits": 2, "quantize_alpha": 0.5}, {"quantize_bits": 2, "quantize_alpha": 0.5}),
    ("rbp", {"feedback": {"distribution": "sparse", "n": 2}}, {"feedback": {"distribution": "sparse", "n": 2}}),
    ("arbp", {"adapt_rate": 0.1}, {"adapt_lr": 0.1}),
    ("arbp-nof", {"adapt_rate": 0.3}, {"adapt_lr": 0.3}),
    ("asrbp", {"adapt_rate": 0.2}, {"adapt_lr": 0.2}),
]


@pytest.mark.parametrize("name,engine_opts,opts", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_same_updates_as_the_engine(name, engine_opts, opts):
    X, y, T = batch()
    net, ch, rec, I, dW, db = engine(name, X, T, **engine_opts)
    model = mirror(net)
    kw = {"example_input": X} if "srbp" in name else {}
    lct.convert(model, name, scaling="distribution", **kw, **opts)  # the engine's draws
    copy_engine_feedback(model, ch, name)
    before = {h: engine_feedback(ch, h, h + 1 if "rbp" in name and "srbp" not in name else L).clone()
              for h in range(1, L)} if name.startswith("a") else None
    grads = converted_grads(model, X, y)
    for h in range(1, L + 1):
        torch.testing.assert_close(grads[h][0], -dW[h], rtol=0, atol=1e-13)
        torch.testing.assert_close(grads[h][1], -db[h], rtol=0, atol=1e-13)
    if before is not None:
        # ARBP/ASRBP: ΔC^{h,k} = η_c (O^h)ᵀ I^k / B from the engine's signals, adapted
        # during backward (paper 1 section 3, with the engine's adapt_rate as η_c at η = 1).
        B = X.shape[0]
        for h in range(1, L):
            k = L if "srbp" in name else h + 1
            expected = before[h] + engine_opts["adapt_rate"] * rec.presynaptic(h + 1, 1)[0].t() @ I[k][0] / B
            got = layer(model, h + 1).skip_feedback if "srbp" in name else layer(model, h + 1).feedback.t()
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-13)


def test_channel_dropout_follows_the_engine_stream():
    """Channel dropout (section 6.1) with the engine's "channel" stream: the same masks,
    drawn top layer first, give the same updates."""
    X, y, T = batch()
    net, ch, _, _, dW, _ = engine("rbp", X, T, lc_dropout=0.3)
    model = mirror(net)
    lct.convert(model, "rbp", lc_dropout=0.3, seed=0)
    copy_engine_feedback(model, ch, "rbp")
    grads = converted_grads(model, X, y)
    for h in range(1, L + 1):
        torch.testing.assert_close(grads[h][0], -dW[h], rtol=0, atol=1e-13)


def conv_model():
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2, bias=False), nn.BatchNorm2d(6), nn.Tanh(),
        nn.Conv2d(6, 6, 3, padding="same", padding_mode="reflect"), nn.ReLU(),
        nn.Flatten(1), nn.Unflatten(1, (6, 16)), nn.Conv1d(6, 4, 3, padding=1), nn.Flatten(1),
        nn.Linear(64, 5)).double()


def test_rbp_with_feedback_equal_to_w_is_autograd():
    """Every conv configuration (stride, padding, dilation, groups, 'same', reflect, 1-d)."""
    ref = conv_model()
    model = lct.convert(copy.deepcopy(ref), "rbp", layers=(nn.Conv2d, nn.Conv1d, nn.Linear))
    with torch.no_grad():
        for _, m in lct.channel_of(model).layers:
            m.feedback.copy_(m.weight)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 4])
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    for net, xi in zip((ref, model), xs):
        nn.functional.cross_entropy(net(xi), y).backward()
    for p, q in zip(ref.parameters(), model.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(xs[1].grad, xs[0].grad, rtol=1e-12, atol=1e-12)


def test_conv3d_with_feedback_equal_to_w_is_autograd():
    torch.manual_seed(4)
    ref = nn.Sequential(nn.Conv3d(2, 4, 3, stride=(1, 2, 2), padding=1, groups=2), nn.Tanh(),
                        nn.Conv3d(4, 3, 2)).double()
    model = lct.convert(copy.deepcopy(ref), "rbp", layers=(nn.Conv3d,))
    with torch.no_grad():
        for _, m in lct.channel_of(model).layers:
            m.feedback.copy_(m.weight)
    x = torch.randn(2, 2, 5, 6, 6, dtype=torch.float64)
    for net in (ref, model):
        net(x).square().sum().backward()
    for p, q in zip(ref.parameters(), model.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-12, atol=1e-12)


def test_rbp_input_signal_goes_through_the_feedback_kernel():
    """∂x of a converted conv is the transposed convolution with B, not W (eq. 6-8)."""
    conv = nn.Conv2d(2, 4, 3, stride=2, padding=2, dilation=2, groups=2).double()
    ref = copy.deepcopy(conv)
    lct.convert(conv, "rbp", seed=5)
    with torch.no_grad():
        ref.weight.copy_(conv.feedback)  # plain autograd through B gives the channel's ∂x
    x = torch.randn(2, 2, 7, 7, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    (gx,) = torch.autograd.grad(conv(x), x, g)
    (gx_ref,) = torch.autograd.grad(ref(x), x, g)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-12, atol=1e-12)
    (gW,) = torch.autograd.grad(conv(x), conv.weight, g)
    (gW_ref,) = torch.autograd.grad(ref(x), ref.weight, g)
    torch.testing.assert_close(gW, gW_ref, rtol=1e-12, atol=1e-12)  # the local update: I ⊗ O
