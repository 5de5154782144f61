"""Alignment angles: 0 for BP, hand-computed values on small linear nets, no side effects."""

import math

import pytest
import torch

from lchannel.report.alignment import AlignmentProbe, alignment_angles, angle
from lchannel.channels import build_channel
from lchannel.run.config import TrainConfig
from lchannel.engine.nets import Network
from lchannel.engine.plasticity import SGD
from lchannel.engine.quantize import LEGACY_READING
from lchannel.run.single import build_trainer, load_data


pytestmark = pytest.mark.usefixtures("one_thread")


ARCCOS_1_OVER_SQRT5 = math.degrees(math.acos(1 / math.sqrt(5)))  # 63.43...


def linear_net(sizes, weights):
    net = Network(sizes, hidden="identity", output="identity", seeds=[0])
    with torch.no_grad():
        for W, w in zip(net.weights, weights):
            W.copy_(torch.tensor([w], dtype=W.dtype))
    return net


def test_angle_basics():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 2.0], [3.0, 3.0], [1.0, 0.0]])
    got = angle(a, b)
    assert got[0].item() == pytest.approx(90.0)
    assert got[1].item() == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(got[2].item())  # a zero vector has no direction
    assert angle(torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]])).item() == pytest.approx(180.0)


@pytest.mark.parametrize("hidden", ["tanh", "relu"])
def test_backprop_is_aligned_with_itself(hidden):
    net = Network([6, 9, 8, 7, 3], hidden=hidden, output="softmax", seeds=[0, 1, 2])
    ch = build_channel("bp").bind(net)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(50, 6, generator=g)
    T = torch.nn.functional.one_hot(torch.randint(0, 3, (50,), generator=g), 3).float()
    out = alignment_angles(net, ch, X, T, SGD(lr=0.1).bind(net))
    assert sorted(out) == [(m, h) for m in ("signal", "update") for h in (1, 2, 3)]
    for v in out.values():
        assert torch.allclose(v, torch.zeros(3, dtype=v.dtype), atol=1e-3)


def test_rbp_angles_match_a_hand_computed_case():
    # A[1,2,1], linear: O1 = W1 x, O = W2 O1, e = T - O.
    # B1 = W2^T e = e·(1, 2) and I1 = C e = e·(1, 0) for every example, so the signal, the
    # update (mean of e_b x_b times those vectors) and C against W2^T all make the angle
    # arccos(1/sqrt(5)).
    net = linear_net([1, 2, 1], [[[0.5], [-0.3]], [[1.0, 2.0]]])
    ch = build_channel("rbp").bind(net)
    ch.C[(1, 2)].copy_(torch.tensor([[[1.0], [0.0]]]))
    X = torch.tensor([[1.0], [2.0], [-1.5]])
    T = torch.tensor([[0.3], [-1.0], [2.0]])
    out = alignment_angles(net, ch, X, T)
    for key in (("signal", 1), ("update", 1), ("feedback", 1)):
        assert out[key].item() == pytest.approx(ARCCOS_1_OVER_SQRT5, abs=1e-4), key


def test_srbp_feedback_angle_is_against_the_product_of_transposed_forward_matrices():
    # A[1,2,2,1], linear, W2 = I, W3 = (1, 2): (W3 W2)^T = (1, 2)^T.
    # C^{1,3} = (2, 1)^T: cos = 4/5;  C^{2,3} = (1, 0)^T against W3^T: cos = 1/sqrt(5).
    net = linear_net([1, 2, 2, 1], [[[1.0], [1.0]], [[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0]]])
    ch = build_channel("srbp").bind(net)
    ch.C[(1, 3)].copy_(torch.tensor([[[2.0], [1.0]]]))
    ch.C[(2, 3)].copy_(torch.tensor([[[1.0], [0.0]]]))
    X = torch.tensor([[1.0], [-2.0]])
    T = torch.tensor([[0.0], [1.0]])
    out = alignment_angles(net, ch, X, T)
    assert out[("feedback", 1)].item() == pytest.approx(math.degrees(math.acos(0.8)), abs=1e-4)
    assert out[("feedback", 2)].item() == pytest.approx(ARCCOS_1_OVER_SQRT5, abs=1e-4)
    # Linear SRBP (derivative 'local' = 1): I^1 = C^{1,3} e, B^1 = W2^T W3^T e = (1, 2) e.
    assert out[("signal", 1)].item() == pytest.approx(math.degrees(math.acos(0.8)), abs=1e-4)


def test_cascade_names_each_source_and_top_layer_only_has_no_signal():
    net = Network([4, 5, 5, 3], hidden="tanh", output="softmax", seeds=[0])
    X, T = torch.randn(10, 4), torch.eye(3)[torch.arange(10) % 3]
    out = alignment_angles(net, build_channel("cascade").bind(net), X, T)
    assert {k for k in out if k[0].startswith("feedback")} == {("feedback_from_2", 1), ("feedback_from_3", 1),
                                                                ("feedback", 2)}
    top = alignment_angles(net, build_channel("top").bind(net), X, T)
    assert all(math.isnan(v.item()) for (m, h), v in top.items())


def test_frozen_layer_has_no_update_angle_and_quantized_updates_are_measured():
    net = Network([4, 6, 5, 3], hidden="tanh", output="softmax", seeds=[0, 1])
    ch = build_channel("rbp").bind(net)
    X, T = torch.randn(30, 4), torch.eye(3)[torch.arange(30) % 3]
    out = alignment_angles(net, ch, X, T, SGD(frozen=[1]).bind(net))
    assert torch.isnan(out[("update", 1)]).all() and not torch.isnan(out[("update", 2)]).any()
    plain = alignment_angles(net, ch, X, T, SGD().bind(net))[("update", 2)]
    opt = SGD(update_bits=3, update_reading=LEGACY_READING).bind(net)
    # (per-example updates are chunked inside SGD.direction; tests/test_variants.py checks
    # the chunks against the plain per-example loop)
    whole = alignment_angles(net, ch, X, T, opt)[("update", 2)]
    # the quantized update of eq. 19, done by hand for member 0, layer 2
    from lchannel.channels.transforms import quantize
    rec = net.forward(X)
    I = ch.signals(rec, net.output_loss.error(T, rec.output))[2][0]
    B = build_channel("bp").bind(net).signals(rec, net.output_loss.error(T, rec.output))[2][0]
    O = rec.O[1][0]
    lr = opt.lr_now()
    dW = quantize(I[:, :, None] * O[:, None, :] * lr, opt.update_alpha, 3).mean(0)
    assert whole[0].item() == pytest.approx(angle(dW[None], (B.T @ O)[None]).item(), abs=1e-3)
    assert not torch.allclose(whole, plain, atol=0.1)


@pytest.mark.parametrize("algorithm,channel", [("rbp", {"lc_dropout": 0.3}), ("arbp", {})])
def test_measuring_does_not_change_training(algorithm, channel):
    cfg = TrainConfig.from_dict(dict(dataset="synthetic", synthetic_k=0, n_train=400, n_test=200,
                                     architecture=[2, 16, 16, 1], lr=0.5, batch_size=10, epochs=3, seeds=[0, 1],
                                     algorithm=algorithm, channel=channel))
    train, test = load_data(cfg)
    plain = build_trainer(cfg, progress=False)
    plain.fit(train, test, epochs=3)
    probed = build_trainer(cfg, progress=False)
    probe = AlignmentProbe(test, 100)
    seen = []
    probed.fit(train, test, epochs=3, on_epoch=lambda t: seen.append(probe(t)))
    assert probed.history.metrics == plain.history.metrics
    assert len(seen) == 3 and all(len(v) == 2 for _, _, v in seen[0])


def test_per_synapse_feedback_has_an_update_angle_but_no_neuron_signal():
    cfg = TrainConfig(dataset="synthetic", synthetic_k=0, architecture=[2, 8, 8, 1], algorithm="srbp",
                      channel={"per_synapse": True}, epochs=1)
    t = build_trainer(cfg, progress=False)
    _, test = load_data(cfg)
    from lchannel.report.alignment import alignment_angles
    out = alignment_angles(t.net, t.channel, test.X[:100], test.T[:100])
    assert torch.isnan(out[("signal", 1)]).all()
    upd = out[("update", 1)]
    assert torch.isfinite(upd).all() and ((upd >= 0) & (upd <= 180)).all()
