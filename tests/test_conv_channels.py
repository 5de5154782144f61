"""Learning channels on conv nets against independent truth: autograd gradients, the
invariant "RBP with feedback kernels equal to W is BP", the papers' Facts 1-3 over every
registered algorithm, populations against single runs, adaptation (Theorem 7's analogue),
accounting and alignment."""

import pytest
import torch

from lchannel.report.alignment import alignment_angles
from lchannel.channels import algorithm_names, build_channel, resolve
from lchannel.data.base import Dataset
from lchannel.engine.nets import Network
from lchannel.engine.plasticity import SGD
from lchannel.engine.train import Trainer

from helpers import example_options, one_step_updates

pytestmark = pytest.mark.kernels  # also run under other kernels (.ci/run)

D = torch.float64
ARCH = "conv3k3-pool3s2-conv4k3s2p1-pool2-dense5-dense4"  # stride-2 conv, overlapping pool, dense head
SHAPE = (2, 8, 8)
ALL = algorithm_names()
# Facts 2-3 hold where every signal is built from the output error (not DRTP's target)
ERROR_DRIVEN = [n for n in ALL if resolve(n)[0].error_driven]
# Refused on conv nets with a message naming conv nets: cascade (skip edges between hidden
# conv layers) and the Distinct channels (dense lateral maps, fully connected nets only).
REFUSED_ON_CONV = ("cascade", "distinct")


def conv_net(seeds=(0, 1), hidden="tanh", output="softmax"):
    return Network(ARCH, input_shape=SHAPE, hidden=hidden, output=output, seeds=list(seeds), dtype=D)


def conv_batch(output="softmax", B=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(B, 2 * 8 * 8, generator=g, dtype=D)
    if output == "softmax":
        T = torch.nn.functional.one_hot(torch.randint(0, 4, (B,), generator=g), 4).to(D)
    elif output == "logistic":
        T = (torch.rand(B, 4, generator=g) > 0.5).to(D)
    else:
        T = torch.randn(B, 4, generator=g, dtype=D)
    return X, T


def build(name, net, **opts):
    return build_channel(name, **{**example_options(name), **opts}).bind(net)


@pytest.mark.parametrize("hidden", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("output", ["softmax", "logistic", "identity"])
def test_bp_on_a_conv_net_equals_autograd(hidden, output):
    net = conv_net(hidden=hidden, output=output)
    X, T = conv_batch(output)
    d = one_step_updates(net, build_channel("bp"), X, T, lr=1.0)
    L = net.L
    for e in range(net.E):
        model = net.to_torch(e)  # independent truth: autograd through nn.Conv2d/MaxPool2d/Linear
        loss = net.output_loss.loss(model(X.view(-1, *SHAPE)), T).mean()
        weighted = [m for m in model if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        grads = torch.autograd.grad(loss, [m.weight for m in weighted] + [m.bias for m in weighted])
        for h in range(L):
            torch.testing.assert_close(d[h][e], -grads[h], rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(d[L + h][e], -grads[L + h], rtol=1e-9, atol=1e-12)


def _set_feedback_to_forward(channel, net):
    for (h, k), C in channel.C.items():
        C.copy_(net.adjoint_reference(k))


def test_rbp_with_feedback_kernels_equal_to_w_is_bp():
    X, T = conv_batch()
    nets = conv_net(), conv_net()
    bp, rbp = build_channel("bp").bind(nets[0]), build_channel("rbp").bind(nets[1])
    assert rbp.C[(1, 2)].shape == nets[1].W(2).shape  # a random kernel of W's shape
    opts = SGD(lr=0.3, momentum=0.9).bind(nets[0]), SGD(lr=0.3, momentum=0.9).bind(nets[1])
    for _ in range(3):  # C must track W as W changes
        _set_feedback_to_forward(rbp, nets[1])
        for net, ch, opt in zip(nets, (bp, rbp), opts):
            rec = net.forward(X)
            opt.step(rec, ch.signals(rec, net.output_loss.error(T, rec.output)))
    for a, b in zip(nets[0].weights + nets[0].biases, nets[1].weights + nets[1].biases):
        assert torch.equal(a, b)


def test_fact1_top_layer_update_is_the_same_under_every_algorithm():
    X, T = conv_batch()
    ref = one_step_updates(conv_net(), build_channel("bp"), X, T)
    L = conv_net().L
    for name in ALL:
        net = conv_net()
        try:
            ch = build(name, net)
        except ValueError as err:  # refused on conv nets, with the reason
            assert name.startswith(REFUSED_ON_CONV) and "conv" in str(err)
            continue
        up = one_step_updates(net, ch, X, T)
        assert torch.equal(up[L - 1], ref[L - 1]) and torch.equal(up[2 * L - 1], ref[2 * L - 1]), name


@pytest.mark.parametrize("name", [n for n in ERROR_DRIVEN if not n.startswith(REFUSED_ON_CONV)])
def test_fact2_and_fact3_on_conv_nets(name):
    X, T = conv_batch()
    net = conv_net()
    ch = build(name, net)
    e = net.output_loss.error(T, net.forward(X).output)
    up = one_step_updates(net, ch, X, T, e_override=e)
    down = one_step_updates(net, ch, X, T, e_override=-e)
    assert all(u.abs().sum() > 0 for u in up[:1] + up[net.L - 1:net.L]) or name == "top"
    for a, b in zip(up, down):  # Fact 2: flipping the error flips every update
        torch.testing.assert_close(a, -b, rtol=1e-12, atol=1e-15)
    for u in one_step_updates(net, ch, X, T, e_override=torch.zeros_like(e)):  # Fact 3
        assert torch.count_nonzero(u) == 0


def test_cascade_and_per_synapse_are_refused_on_conv_nets():
    with pytest.raises(ValueError, match="conv"):
        build_channel("cascade").bind(conv_net())
    with pytest.raises(ValueError, match="per_synapse"):
        build_channel("rbp", per_synapse=True).bind(conv_net())
    for name in ("distinct-rbp", "distinct-srbp"):
        with pytest.raises(ValueError, match="fully connected networks only"):
            build_channel(name).bind(conv_net())
    with pytest.raises(ValueError, match="congruent"):
        build_channel("srbp", feedback={"congruent": True}).bind(conv_net())
    ch = build_channel("rbp", feedback={"congruent": True}).bind(conv_net())
    net = ch.net
    assert torch.equal(torch.sign(ch.C[(1, 2)]), torch.sign(net.W(2)))  # kernel signs of W


def _train(name, seeds, steps=3, **opts):
    net = conv_net(seeds)
    ch = build(name, net, **opts)
    opt = SGD(lr=0.2, momentum=0.9).bind(net)
    for s in range(steps):
        X, T = conv_batch(seed=s)
        ch.on_batch_start()
        rec = net.forward(X)
        I = ch.signals(rec, net.output_loss.error(T, rec.output))
        opt.step(rec, I, ch.plasticity_terms(rec, I))
    return net


@pytest.mark.parametrize("name,opts", [
    ("bp", {}), ("rbp", {}), ("srbp", {}), ("sbp", {}), ("arbp", {}), ("asrbp", {}), ("mixed", {}),
    ("rbp", {"feedback": {"distribution": "sparse", "n": 2}}),
    ("srbp", {"lc_dropout": 0.3, "quantize_bits": 4}),
    ("rbp", {"resample": "sign_concordant"}),
])
def test_population_member_equals_single_run(name, opts):
    # Member e is group e of one grouped convolution (and of one transposed convolution
    # and weight gradient), whose kernel may block its sums unlike a lone convolution, and
    # the element-wise transfer functions run over all members at once, where a
    # vectorised exp and its scalar tail may differ in the last bit: the stated tolerance
    # is float rounding (float64 here: rtol 1e-10 after 3 momentum steps).
    pop = _train(name, (5, 6), **opts)
    for e, seed in enumerate((5, 6)):
        single = _train(name, (seed,), **opts)
        for a, b in zip(pop.weights + pop.biases, single.weights + single.biases):
            torch.testing.assert_close(a[e], b[0], rtol=1e-10, atol=1e-13, msg=f"{name} {opts}")


def test_adaptive_kernels_keep_a_constant_distance_to_w():
    # ARBP at adapt_rate 1 (paper 2, Theorem 7): ΔC = ΔW^k on every chained route, the
    # kernel in W's layout (conv) and the matrix in Wᵀ's layout (dense).
    net = conv_net()
    ch = build_channel("rbp", adaptive=True, adapt_rate=1.0).bind(net)
    before = {key: (C - net.adjoint_reference(key[1])).clone() for key, C in ch.C.items()}
    opt = SGD(lr=0.5).bind(net)
    X, T = conv_batch()
    rec = net.forward(X)
    I = ch.signals(rec, net.output_loss.error(T, rec.output))
    opt.step(rec, I, ch.plasticity_terms(rec, I))
    for (h, k), C in ch.C.items():
        assert not torch.equal(net.W(k), conv_net().W(k))  # W^k (and so C) did move
        torch.testing.assert_close(C - net.adjoint_reference(k), before[(h, k)], rtol=0, atol=1e-12)


def test_quantized_signals_and_lc_dropout_on_conv_routes():
    net = conv_net()
    X, T = conv_batch()
    rec = net.forward(X)
    e = net.output_loss.error(T, rec.output)
    ch = build_channel("rbp-nof", quantize_bits=2).bind(net)  # no f': I^h is the quantized signal
    I = ch.signals(rec, e)
    levels = torch.unique(I[1].abs())
    assert I[1].shape == rec.A[1].shape and set(levels.tolist()) <= {0.0, 2 ** -3, 2 ** -4}
    # SRBP's dense map reaches every unit of S^1 (4x8x8): dropout leaves about half of them.
    drop = build_channel("srbp-nof", lc_dropout=0.5).bind(conv_net())
    J = drop.signals(rec, e)[1]
    zero = (J == 0).double().mean().item()
    assert J.shape == rec.A[1].shape and 0.45 < zero < 0.55


def test_sparse_feedback_density_is_on_the_route_fan_in():
    net = Network("conv16k3-conv32k3-dense10", input_shape=(8, 6, 6), seeds=[0])
    ch = build_channel("rbp", feedback={"distribution": "sparse", "n": 8}).bind(net)
    C = ch.C[(1, 2)]  # stands in for W^2: (32, 16, 3, 3), fan-in 16·9 = 144
    assert C.shape == (1, 32, 16, 3, 3)
    assert abs((C != 0).double().mean().item() - 8 / 144) < 0.015
    with pytest.raises(ValueError, match="sparse n=200"):
        build_channel("rbp", feedback={"distribution": "sparse", "n": 200}).bind(net)
    sizes = net.sizes
    bp = build_channel("bp").feedback_multiplications(sizes)
    assert bp == 32 * 6 * 6 * 16 * 9 + 32 * 6 * 6 * 10  # conv MACs of block 2 + dense block 3
    srbp = build_channel("srbp").feedback_multiplications(sizes)
    assert srbp == 10 * (16 * 36 + 32 * 36)  # eq. 15: N_L Σ N_h
    sparse = build_channel("rbp", feedback={"distribution": "sparse", "n": 8}).feedback_multiplications(sizes)
    assert sparse == pytest.approx(8 / 144 * 32 * 6 * 6 * 16 * 9 + 8 / (32 * 36) * 32 * 36 * 10)


def test_alignment_metrics_on_conv_blocks():
    net = conv_net()
    X, T = conv_batch()
    bp = alignment_angles(net, build_channel("bp").bind(net), X, T)
    for h in range(1, net.L):
        assert bp[("signal", h)].abs().max() < 1e-5 and bp[("update", h)].abs().max() < 1e-5
    net2 = conv_net()
    rbp = build_channel("rbp").bind(net2)
    _set_feedback_to_forward(rbp, net2)
    angles = alignment_angles(net2, rbp, X, T)
    for h in range(1, net2.L):
        assert angles[("feedback", h)].abs().max() < 1e-5 and angles[("signal", h)].abs().max() < 1e-5
    srbp = alignment_angles(net, build_channel("srbp").bind(conv_net()), X, T)
    assert 0 < srbp[("signal", 1)].min() < 180


def test_trainer_lifts_bp_rbp_srbp_above_chance_on_a_toy_image_task():
    # Which half of an 8x8 image holds a bright 3x3 patch: a task a conv net learns fast.
    g = torch.Generator().manual_seed(0)
    n = 240
    X = torch.rand(n, 1, 8, 8, generator=g) * 0.2
    y = torch.randint(0, 2, (n,), generator=g)
    r = torch.randint(0, 6, (n,), generator=g)
    c = torch.randint(0, 2, (n,), generator=g) + 4 * y
    for i in range(n):
        X[i, 0, r[i]:r[i] + 3, c[i]:c[i] + 3] += 1.0
    data = Dataset(X.reshape(n, 64), torch.nn.functional.one_hot(y, 2).float(), y, "toy")
    for name in ("bp", "rbp", "srbp"):
        net = Network("conv4k3-pool2-dense8-dense2", input_shape=(1, 8, 8), seeds=[0, 1])
        tr = Trainer(net, build_channel(name), SGD(lr=0.1, momentum=0.9), batch_size=16, progress=False)
        hist = tr.fit(data, data, epochs=4)
        assert min(hist.metrics["test_acc"][-1]) > 0.8, name  # chance: 0.5


def test_channel_cost_stop_member_and_state_on_conv_nets():
    from lchannel.report.accounting import channel_cost
    sizes = Network("conv16k3-conv32k3-dense10", input_shape=(8, 6, 6)).sizes
    cost = channel_cost(sizes, "srbp")
    assert cost.channel_mults == 10 * (16 * 36 + 32 * 36) == cost.W_prime
    assert cost.W == 16 * 36 * 8 * 9 + 32 * 36 * 16 * 9 + 32 * 36 * 10  # forward multiplications
    # A stopped member keeps its conv kernels while the other one trains (momentum path).
    net = conv_net()
    ch = build_channel("rbp").bind(net)
    opt = SGD(lr=0.3, momentum=0.5).bind(net)
    opt.stop_member(1)
    W0 = net.W(1).clone()
    X, T = conv_batch()
    rec = net.forward(X)
    opt.step(rec, ch.signals(rec, net.output_loss.error(T, rec.output)))
    assert torch.equal(net.W(1)[1], W0[1]) and not torch.equal(net.W(1)[0], W0[0])
    # The channel's kernels are its state: saved, loaded, moved with the network.
    other = build_channel("rbp").bind(conv_net(seeds=(7, 8)))
    other.load_checkpoint_state(ch.checkpoint_state())
    assert all(torch.equal(other.C[key], C) for key, C in ch.C.items())
    net.to(torch.float32)
    assert ch.C[(1, 2)].dtype == torch.float32 and ch.signals(net.forward(X.float()),
                                                            torch.zeros(2, 6, 4))[1].dtype == torch.float32


@pytest.mark.parametrize("hidden", ["tanh", "relu"])
def test_training_pass_without_kept_s_gives_the_same_signals(hidden):
    # The training pass computes f(S) in place and drops S (recomputed when asked for).
    net = conv_net(hidden=hidden)
    X, T = conv_batch()
    kept, dropped = net.forward(X), net.forward(X, train=True)
    assert dropped.Z[1] is None
    for name in ("bp", "rbp", "srbp"):
        ch = build_channel(name).bind(net)
        I1 = ch.signals(kept, net.output_loss.error(T, kept.output))
        I2 = ch.signals(dropped, net.output_loss.error(T, dropped.output))
        assert all(torch.equal(a, b) for a, b in zip(I1[1:], I2[1:])), name
    assert torch.equal(dropped.S[1], kept.S[1]) and torch.equal(dropped.fprime(1), kept.fprime(1))
