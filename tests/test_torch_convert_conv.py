"""lchannel.torch on a conv net against the explicit engine's conv blocks (issue 15: "the
same for a small conv net once conv blocks exist").

The engine's conv net (``Network(arch, input_shape=...)``) and the same net exported as
``nn.Sequential`` (``net.to_torch``) and converted, with the engine's feedback copied into
the converted layers, give the same weight updates (float64).  Sign and scale: the
engine's ΔW^h/η = (1/B) Σ_b I^h_b ⊗ O^{h-1}_b on e = T − O; autograd's gradient of the
mean-reduced cross-entropy is its negative.

SRBP is compared on a net without pooling: the engine delivers C^h e to every unit of a
conv layer's output (pre-pool, docs/channels.md), the converter at the next layer's input
(after the pool, so only the argmax units would hear it); without a pool between them the
two points are the same units.
"""

import pytest
import torch
from torch import nn

import lchannel.torch as lct
from lchannel import Network, build_channel

from helpers import one_step_updates

D = torch.float64
SHAPE = (2, 8, 8)
POOLED = "conv3k3-pool3s2-conv4k3s2p1-pool2-dense5-dense4"  # BP/RBP: un-pooling at the argmax
PLAIN = "conv3k3-conv4k3s2-dense5-dense4"  # SRBP: no pool between a layer and its receiving point


def batch(B=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(B, 2 * 8 * 8, generator=g, dtype=D)
    y = torch.randint(0, 4, (B,), generator=g)
    return X, y, nn.functional.one_hot(y, 4).to(D)


def weighted(model):
    return [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]


def copy_feedback(net, ch, model, name):
    """The engine's feedback into the converted layers: RBP's C^{h,h+1} stands in for
    W^{h+1} (a kernel of W's shape for conv, (W^{h+1})ᵀ's shape for dense); SRBP's C^{h,L}
    reaches layer h+1's input (layer h's output in the no-f' form)."""
    layers = weighted(model)
    with torch.no_grad():
        for h in range(1, net.L):
            if "srbp" in name:
                target = layers[h - 1 if name.endswith("-nof") else h]
                target.skip_feedback.copy_(ch.C[(h, net.L)][0])
            elif not name.startswith("bp"):
                C = ch.C[(h, h + 1)][0]
                layers[h].feedback.copy_(C if C.shape == layers[h].weight.shape else C.t())


CASES = [
    ("bp", POOLED, {}),
    ("bp-nof", POOLED, {}),
    ("rbp", POOLED, {}),
    ("rbp-nof", POOLED, {}),
    ("rbp", POOLED, {"feedback": {"distribution": "sparse", "n": 2}}),
    # Signal transforms act where the signal leaves the layer above: the converter before
    # the pool's backward, the engine after un-pooling; with overlapping windows a unit
    # can be the argmax of two windows and Q(a) + Q(b) != Q(a + b), so compare without pools.
    ("rbp", PLAIN, {"quantize_bits": 3}),
    ("srbp", PLAIN, {}),
    ("srbp-nof", PLAIN, {}),
]


@pytest.mark.parametrize("name,arch,opts", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_converted_conv_net_has_the_engines_updates(name, arch, opts):
    X, y, T = batch()
    net = Network(arch, input_shape=SHAPE, hidden="tanh", output="softmax", seeds=[0], dtype=D)
    ch = build_channel(name, **opts).bind(net)
    model = net.to_torch(0)[:-1]  # without the softmax: cross_entropy takes logits
    d = one_step_updates(net, ch, X, T, lr=1.0)  # ΔW^1..ΔW^L, then Δb^1..Δb^L
    images = X.view(-1, *SHAPE)
    kw = {"example_input": images[:2], "direct_maps": "dense"} if "srbp" in name else {}
    lct.convert(model, name, scaling="distribution", **kw, **opts)  # the engine's draws and maps
    copy_feedback(net, ch, model, name)
    model.zero_grad()
    nn.functional.cross_entropy(model(images), y).backward()
    L = net.L
    for h, layer in enumerate(weighted(model)):
        torch.testing.assert_close(layer.weight.grad, -d[h][0], rtol=0, atol=1e-12)
        torch.testing.assert_close(layer.bias.grad, -d[L + h][0], rtol=0, atol=1e-12)


def _conv_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.Tanh(), nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 5)).double()


def _signal_at_conv2_input(model, x):
    """The gradient the channel delivers at the second conv's input (its receiving point)."""
    seen = {}

    def keep(module, inputs, output):
        inputs[0].retain_grad()
        seen["x"] = inputs[0]

    model[2].register_forward_hook(keep)
    model(x).sum().backward()
    return seen["x"].grad


def test_direct_maps_channel_shares_a_row_per_channel_and_dense_does_not():
    """convert(direct_maps=...): "channel" repeats one random row of C_p over a conv feature
    map's positions, so the signal e·C_pᵀ is constant over each channel's positions;
    "dense" draws one per value.  Dense layers' points are dense either way."""
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    shared = lct.convert(_conv_net(), "srbp", example_input=x, scaling="distribution", direct_maps="channel")
    dense = lct.convert(_conv_net(), "srbp", example_input=x, scaling="distribution", direct_maps="dense")
    C = shared[2].skip_feedback.reshape(3, 36, 5)  # channels × positions × outputs
    assert torch.equal(C, C[:, :1].expand_as(C))
    sig = _signal_at_conv2_input(shared, x)  # (2, 3, 6, 6): one value per example and channel
    torch.testing.assert_close(sig, sig[:, :, :1, :1].expand_as(sig), rtol=0, atol=0)
    D = dense[2].skip_feedback.reshape(3, 36, 5)
    assert not torch.equal(D, D[:, :1].expand_as(D))
    assert shared[5].skip_feedback.shape == dense[5].skip_feedback.shape == (64, 5)
    F = shared[5].skip_feedback  # the Linear's input: 64 values, each its own row
    assert len({tuple(r.tolist()) for r in F}) == 64
    with pytest.raises(ValueError, match="direct_maps must be one of"):
        lct.convert(_conv_net(), "srbp", direct_maps="shared")


def _pooled_net():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, stride=2, padding=1),
                         nn.Tanh(), nn.Flatten(), nn.Linear(4 * 3 * 3, 5)).double()


def test_direct_maps_kernel_is_biotorchs_dfa_for_convolutions():
    """direct_maps="kernel": the weight gradients are those of biotorch's DFA hooks, written
    out here independently in float64 (biotorch 0.0.16, layers/dfa: a conv layer's input
    gradient is ``conv2d_input`` of its kernel-shaped feedback K with the output error
    repeated over the layer's output positions; a Linear's is e·B), on a net with max-pooling,
    stride and padding between them."""
    x = torch.randn(6, 1, 12, 12, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    ours = lct.convert(_pooled_net(), "dfa", example_input=x, scaling="distribution", direct_maps="kernel")
    K = ours[3].skip_kernel
    assert K.shape == (5, 3, 3, 3)
    B_lin = ours[6].skip_feedback.t()  # (outputs, inputs): biotorch's weight_backward
    ref = _pooled_net()
    out = ref(x)
    (e,) = torch.autograd.grad(nn.functional.cross_entropy(out, y), out)

    def conv_hook(module, grad_input, grad_output):
        g = e[:, :, None, None].expand(-1, -1, *grad_output[0].shape[2:])
        return (torch.nn.grad.conv2d_input(grad_input[0].shape, K, g, stride=module.stride, padding=module.padding,
                                           dilation=module.dilation),)

    ref[3].register_full_backward_hook(conv_hook)
    ref[6].register_full_backward_hook(lambda m, gi, go: (e.mm(B_lin),))
    nn.functional.cross_entropy(ref(x), y).backward()
    nn.functional.cross_entropy(ours(x), y).backward()
    for (name, p), q in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-14, msg=name)
    with pytest.raises(ValueError, match="direct_maps 'kernel'"):
        lct.convert(_pooled_net(), "srbp-nof", direct_maps="kernel")


@pytest.mark.parametrize("name,kw", [("srbp", {}), ("dfa", {}), ("asrbp", {"adapt_lr": 0.1}), ("drtp", {}),
                                     ("srbp-nof", {})])
def test_default_direct_maps_are_kernel_where_the_form_allows_and_dense_for_no_fprime(name, kw):
    """direct_maps="auto" (default): a conv point gets biotorch's kernel map (the same maps,
    from the same seed, as asking for "kernel"); the no-f' forms, whose points are the
    layers' outputs, get dense maps, as asking for "dense"."""
    x = torch.randn(2, 1, 12, 12, dtype=torch.float64)
    auto = lct.convert(_pooled_net(), name, example_input=x, scaling="distribution", **kw)
    nof = name.endswith("-nof")
    chosen = lct.convert(_pooled_net(), name, example_input=x, scaling="distribution",
                         direct_maps="dense" if nof else "kernel", **kw)
    assert f"direct_maps={'dense' if nof else 'kernel'!r}" in repr(lct.channel_of(auto))
    point = auto[0 if nof else 3]
    assert ("skip_kernel" in point._buffers) is not nof
    for a, c in zip(auto.buffers(), chosen.buffers()):
        assert torch.equal(a, c)
