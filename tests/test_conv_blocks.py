"""Conv blocks against independent truth: autograd VJPs in float64 (bioflax style), the
grammar's shapes and messages, and the conv network's API (members, export, state)."""

import pytest
import torch
import torch.nn.functional as F

from lchannel.engine.activations import get_activation
from lchannel.engine.architecture import conv_layer_sizes, is_conv_architecture, parse_blocks
from lchannel.engine.blocks import Conv2d, Dense, MaxPool2d  # noqa: F401
from lchannel.engine.nets import Network
from lchannel.engine.quantize import LEGACY_READING, Quantizer, quantize, quantize_

pytestmark = pytest.mark.kernels  # also run under other kernels (.ci/run)

D = torch.float64
PAPER = "conv64k5-pool3s2-conv64k5-pool3s2-conv64k5-pool3s2-dense1024-dense10"
SMALL = "conv3k3-pool3s2-conv4k3s2p1-pool2-dense5-dense4"


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("K,stride,padding,H", [(3, 1, 1, 7), (3, 2, 0, 8), (5, 2, 2, 9), (2, 3, 1, 7), (1, 1, 0, 5)])
def test_conv_adjoint_and_weight_update_equal_autograd_vjps(K, stride, padding, H):
    E, B, C_in, C_out = 2, 3, 2, 3
    g = _gen()
    W = torch.randn(E, C_out, C_in, K, K, generator=g, dtype=D)
    block = Conv2d(W.clone(), (C_in, H, H), stride, padding, get_activation("tanh"))
    block.bias.copy_(torch.randn(E, C_out, generator=g, dtype=D))
    X = torch.randn(E, B, C_in, H, H, generator=g, dtype=D)
    S, O, _ = block.forward(X)
    assert S.shape == (E, B, *block.out_shape)
    G = torch.randn(S.shape, generator=g, dtype=D)
    dW, db = block.weight_update(G, X)
    J = block.adjoint(G)
    for e in range(E):
        x = X[e].clone().requires_grad_(True)
        w = W[e].clone().requires_grad_(True)
        b = block.bias[e].detach().clone().requires_grad_(True)
        s = F.conv2d(x, w, b, stride, padding)
        torch.testing.assert_close(S[e], s.detach())
        torch.testing.assert_close(O[e], torch.tanh(s.detach()))
        gx, gw, gb = torch.autograd.grad(s, (x, w, b), G[e])
        torch.testing.assert_close(J[e], gx)  # the adjoint is the VJP w.r.t. the input
        torch.testing.assert_close(dW[e], gw / B)  # eq. 13: the minibatch mean
        torch.testing.assert_close(db[e], gb / B)


def test_conv_shared_input_and_in_place_update():
    g = _gen(1)
    W = torch.randn(2, 3, 2, 3, 3, generator=g, dtype=D)
    block = Conv2d(W.clone(), (2, 6, 6), 1, 1, get_activation("relu"))
    X = torch.randn(4, 2, 6, 6, generator=g, dtype=D)
    S_shared = block.forward(X)[0]
    S_member = block.forward(X.unsqueeze(0).expand(2, *X.shape))[0]
    # one input for all members against one per member: other conv layouts (float64 rounding)
    torch.testing.assert_close(S_shared, S_member, rtol=1e-12, atol=1e-14)
    I = torch.randn(S_shared.shape, generator=g, dtype=D)
    Xe = X.unsqueeze(0).expand(2, *X.shape)
    dW, db = block.weight_update(I, Xe)
    W0, b0 = block.weight.detach().clone(), block.bias.detach().clone()
    block.apply_update_(I, Xe, lr=0.5)
    torch.testing.assert_close(block.weight.detach(), W0 + 0.5 * dW)
    torch.testing.assert_close(block.bias.detach(), b0 + 0.5 * db)


def test_conv_quantized_per_example_update_equals_explicit_loop():
    g = _gen(2)
    block = Conv2d(torch.randn(1, 2, 2, 3, 3, generator=g, dtype=D), (2, 5, 5), 2, 1, get_activation("tanh"))
    X = torch.randn(1, 5, 2, 5, 5, generator=g, dtype=D)
    I = torch.randn(1, 5, *block.out_shape, generator=g, dtype=D)
    q = lambda u: quantize_(u, 2 ** -6, 3)  # noqa: E731  (eq. 19 on each example's update)
    lr = 0.1
    dW, db = block.weight_update(I, X, per_example=Quantizer(2 ** -6, 3, reading=LEGACY_READING), lr=lr)
    ref_W = sum(q(block.weight_update(I[:, b:b + 1], X[:, b:b + 1])[0] * lr) for b in range(5)) / (5 * lr)
    ref_b = sum(q(I[:, b].sum((2, 3)) * lr) for b in range(5)) / (5 * lr)
    torch.testing.assert_close(dW, ref_W)
    torch.testing.assert_close(db, ref_b)
    # the default reading: eq. 19 with a zero level on each example's I·O, η after
    dW, db = block.weight_update(I, X, per_example=Quantizer(2 ** -6, 3), lr=lr)
    z = lambda u: quantize(u, 2 ** -6, 3, zero=True)  # noqa: E731
    torch.testing.assert_close(dW, sum(z(block.weight_update(I[:, b:b + 1], X[:, b:b + 1])[0]) for b in range(5)) / 5)
    torch.testing.assert_close(db, sum(z(I[:, b].sum((2, 3))) for b in range(5)) / 5)


@pytest.mark.parametrize("K,stride,padding,H", [(3, 2, 1, 8), (3, 2, 0, 9), (2, 2, 0, 6), (3, 1, 1, 5)])
def test_maxpool_unpools_at_the_argmax_like_autograd(K, stride, padding, H):
    # Overlapping windows (K > stride) must add their contributions, as autograd does.
    E, B, C = 2, 3, 2
    g = _gen(3)
    pool = MaxPool2d((C, H, H), K, stride, padding)
    X = torch.randn(E, B, C, H, H, generator=g, dtype=D)
    P, idx = pool.forward(X)
    assert P.shape == (E, B, *pool.out_shape)
    G = torch.randn(P.shape, generator=g, dtype=D)
    J = pool.adjoint(G, X, idx)
    x = X.clone().requires_grad_(True)
    p = F.max_pool2d(x.reshape(E * B, C, H, H), K, stride, padding)
    torch.testing.assert_close(P.reshape(p.shape), p.detach())
    (gx,) = torch.autograd.grad(p, x, G.reshape(p.shape))
    torch.testing.assert_close(J, gx)


def test_paper_architecture_shapes():
    specs = parse_blocks(PAPER, (3, 32, 32))
    assert [s.kind for s in specs] == ["conv", "pool"] * 3 + ["flatten", "dense", "dense"]
    assert [s.out_shape for s in specs[:6]] == [(64, 32, 32), (64, 16, 16), (64, 16, 16), (64, 8, 8),
                                              (64, 8, 8), (64, 4, 4)]
    assert specs[6].out_shape == (1024,)
    assert conv_layer_sizes(PAPER, (3, 32, 32)) == [3072, 64 * 32 * 32, 64 * 16 * 16, 64 * 8 * 8, 1024, 10]
    explicit = parse_blocks("conv64k5s1p2-pool3s2p1-dense10", (3, 32, 32))
    implicit = parse_blocks("conv64k5-pool3s2-dense10", (3, 32, 32))
    geometry = lambda s: (s.kind, s.in_shape, s.out_shape, s.kernel, s.stride, s.padding)  # noqa: E731
    assert [geometry(s) for s in explicit] == [geometry(s) for s in implicit]  # the defaults: same, ceil(H/s)


def test_is_conv_architecture():
    assert is_conv_architecture(PAPER) and is_conv_architecture("dense100-dense10")
    for dense in ("784,100,10", "A[784,100,10]", [784, 100, 10], None, ""):
        assert not is_conv_architecture(dense)


@pytest.mark.parametrize("arch,shape,words", [
    ("conv64k5-pool3s2-dens10", (3, 32, 32), ["dens10", "piece 3"]),
    ("conv8k9p0-dense10", (3, 5, 5), ["conv8k9p0", "(3, 5, 5)"]),
    ("dense10-conv4k3-dense2", (3, 8, 8), ["conv4k3", "(10,)"]),
    ("pool2-conv4k3-dense2", (3, 8, 8), ["pool2", "weighted"]),
    ("conv4k3-pool3p2-dense2", (3, 8, 8), ["pool3p2", "padding"]),
    ("conv4k3-pool2", (3, 8, 8), ["must end with a dense piece", "pool2"]),
    ("conv4k3-dense2", (3, 8), ["input_shape"]),
])
def test_bad_architecture_is_refused_by_name(arch, shape, words):
    with pytest.raises(ValueError) as err:
        parse_blocks(arch, shape)
    for w in words:
        assert w in str(err.value)
    with pytest.raises(ValueError):
        Network(arch, input_shape=shape)


def test_network_needs_input_shape_and_keeps_dense_api():
    with pytest.raises(ValueError, match="input_shape"):
        Network(SMALL)
    dense = Network([5, 4, 3], input_shape=(5,))
    assert type(dense) is Network and dense.sizes == [5, 4, 3]
    with pytest.raises(ValueError, match="input_shape"):
        Network([5, 4, 3], input_shape=(1, 2, 3))


def _small(seeds=(0, 1), hidden="tanh", output="softmax"):
    return Network(SMALL, input_shape=(2, 8, 8), hidden=hidden, output=output, seeds=list(seeds), dtype=D)


def test_paper_network_init_is_glorot_scaled_normal():
    net = Network(PAPER, input_shape=(3, 32, 32), seeds=[0])
    W = net.W(2)  # 64 x 64 x 5 x 5: fan-in 1600, fan-out 1600
    assert W.shape == (1, 64, 64, 5, 5)
    assert abs(W.std().item() - (2 / 3200) ** 0.5) < 0.02 * (2 / 3200) ** 0.5
    assert net.L == 5 and net.sizes[0] == 3072 and net.sizes[-1] == 10


def test_inputs_flat_or_images_shared_or_per_member_agree():
    net = _small()
    X = torch.randn(5, 2 * 8 * 8, generator=_gen(4), dtype=D)
    ref = net.forward(X).output
    imgs = X.view(5, 2, 8, 8)
    # The same numbers through other layouts (shared or per-member input) and chunks: other
    # kernels, so equal to float64 rounding (a MKL branch or CPU changes the last bits).
    for x in (imgs, X.unsqueeze(0).expand(2, 5, 128), imgs.unsqueeze(0).expand(2, 5, 2, 8, 8)):
        torch.testing.assert_close(net.forward(x).output, ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(net.predict(X, chunk=2), ref, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="does not fit"):
        net.forward(torch.zeros(5, 100, dtype=D))


def test_distinct_inputs_per_member_reach_each_member_alone():
    # Per-member minibatches (batch_order="per_member"): the input itself goes through
    # the members-as-groups layout; each member must see only its own images.
    net = _small(seeds=(3, 4))
    X = torch.randn(2, 5, 2, 8, 8, generator=_gen(6), dtype=D)
    out = net.forward(X).output
    for e in range(2):
        alone = net.member(e).forward(X[e]).output[0]
        torch.testing.assert_close(out[e], alone, rtol=1e-13, atol=1e-15)
    swapped = net.forward(X.flip(0)).output
    assert not torch.allclose(swapped[0], out[0])  # the inputs are not shared


def test_members_exports_and_state():
    net = _small(seeds=(3, 4))
    X = torch.randn(6, 128, generator=_gen(5), dtype=D)
    out = net.predict(X)
    for e in range(2):
        single = Network(SMALL, input_shape=(2, 8, 8), seeds=[net.seeds[e]], dtype=D)
        # Same seed, same network: within float rounding (member e is group e of one
        # grouped convolution, which may block its sums unlike a lone convolution).
        torch.testing.assert_close(single.predict(X)[0], out[e], rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(net.member(e).predict(X)[0], out[e], rtol=1e-13, atol=1e-15)
        model = net.to_torch(e)
        assert any(isinstance(m, torch.nn.Conv2d) for m in model)
        assert any(isinstance(m, torch.nn.MaxPool2d) for m in model)
        torch.testing.assert_close(model(X.view(6, 2, 8, 8)), out[e])
    other = _small(seeds=(7, 8))
    other.load_state_dict(net.state_dict())
    assert torch.equal(other.predict(X), out)
    moved = _small().to(torch.float32)
    assert moved.dtype == torch.float32 and moved.predict(X.float()).dtype == torch.float32
