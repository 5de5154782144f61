"""Each block's custom backward against autograd (the bioflax style), and the network as
an ``nn.Module``: parameters, state dicts, dtype moves, export to plain PyTorch."""

import pytest
import torch
from torch import nn

from lchannel.engine.activations import get_activation
from lchannel.engine.blocks import Dense
from lchannel.channels import FeedbackInit
from lchannel.engine.nets import Network
from lchannel.engine.outputs import get_output

pytestmark = pytest.mark.kernels  # also run under other kernels (.ci/run)

E, B, N_IN, N_OUT = 3, 5, 4, 6


def _dense(hidden="tanh", output=None):
    g = torch.Generator().manual_seed(0)
    W = torch.randn(E, N_OUT, N_IN, generator=g, dtype=torch.float64)
    block = Dense(W, get_activation(hidden)) if output is None else Dense(W, output=get_output(output))
    block.bias.data.copy_(torch.randn(E, N_OUT, generator=g, dtype=torch.float64))
    return block, g


@pytest.mark.parametrize("hidden,output", [("tanh", None), ("relu", None), (None, "softmax"), (None, "logistic")])
def test_dense_forward_and_adjoint_equal_autograd_vjp(hidden, output):
    block, g = _dense(hidden, output)
    O_prev = torch.randn(E, B, N_IN, generator=g, dtype=torch.float64, requires_grad=True)
    G = torch.randn(E, B, N_OUT, generator=g, dtype=torch.float64)
    S = O_prev @ block.weight.transpose(1, 2) + block.bias.unsqueeze(1)  # eq. 2
    Z, O, aux = block.forward(O_prev.detach())
    assert aux is None
    torch.testing.assert_close(block.pre_activation(Z), S.detach(), rtol=1e-12, atol=1e-12)
    f = (get_output(output).activate if output else get_activation(hidden))
    torch.testing.assert_close(O, f(S.detach()), rtol=1e-12, atol=1e-12)
    (vjp,) = torch.autograd.grad(S, O_prev, G)  # ∂S/∂O_prev applied to G: G W
    torch.testing.assert_close(block.adjoint(G), vjp, rtol=1e-12, atol=1e-12)


def test_dense_weight_update_equals_autograd_vjp():
    block, g = _dense()
    W = block.weight.detach().clone().requires_grad_(True)
    b = block.bias.detach().clone().requires_grad_(True)
    O_prev = torch.randn(E, B, N_IN, generator=g, dtype=torch.float64)
    I = torch.randn(E, B, N_OUT, generator=g, dtype=torch.float64)
    S = O_prev @ W.transpose(1, 2) + b.unsqueeze(1)
    gW, gb = torch.autograd.grad(S, (W, b), I / B)  # eq. 13: (1/B) Σ_b I_b O_bᵀ, (1/B) Σ_b I_b
    dW, db = Dense.weight_update(I, O_prev)
    torch.testing.assert_close(dW, gW, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(db, gb, rtol=1e-12, atol=1e-12)
    W0, b0 = block.weight.clone(), block.bias.clone()
    block.apply_update_(I, O_prev, 0.5)  # the fused in-place form is the same update
    torch.testing.assert_close(block.weight - W0, 0.5 * gW, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(block.bias - b0, 0.5 * gb, rtol=1e-10, atol=1e-12)


def test_dense_random_adjoint_has_the_transposed_shape_and_the_feedback_scale():
    block, _ = _dense()
    gens = [torch.Generator().manual_seed(s) for s in range(E)]
    C = block.random_adjoint(FeedbackInit(), gens, chained=True)
    assert C.shape == (E, N_IN, N_OUT) and C.dtype == torch.float64
    big = Dense(torch.zeros(1, 300, 500), get_activation("tanh"))
    C = big.random_adjoint(FeedbackInit(), [torch.Generator().manual_seed(0)], chained=True)
    assert abs(C.std().item() - (2 / 800) ** 0.5) < 0.002  # Glorot with the block's fan-in/out


def test_network_is_a_module_with_frozen_parameters_and_standard_state_dict():
    net = Network([5, 7, 3], seeds=[0, 1])
    params = dict(net.named_parameters())
    assert set(params) == {"blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias"}
    assert all(not p.requires_grad for p in params.values())
    assert net.W(1).shape == (2, 7, 5) and net.b(2).shape == (2, 3)
    other = Network([5, 7, 3], seeds=[8, 9])
    other.load_state_dict(net.state_dict())
    X = torch.randn(4, 5)
    assert torch.equal(other.predict(X), net.predict(X))
    with pytest.raises(ValueError, match="does not fit"):
        Network([5, 6, 3]).load_state_dict(net.state_dict())


def test_network_moves_to_float64_and_keeps_training():
    from lchannel.channels import build_channel
    from lchannel.engine.plasticity import SGD

    net = Network([5, 7, 3], seeds=[0]).to(torch.float64)
    assert net.dtype == torch.float64 and all(w.dtype == torch.float64 for w in net.weights + net.biases)
    X = torch.randn(4, 5, dtype=torch.float64)
    T = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0]), 3).double()
    rec = net.forward(X)
    ch = build_channel("rbp").bind(net)
    before = net.W(1).clone()
    SGD(lr=0.1).bind(net).step(rec, ch.signals(rec, net.output_loss.error(T, rec.output)))
    assert not torch.equal(before, net.W(1))  # the cached views followed the move


@pytest.mark.parametrize("hidden,output", [("tanh", "softmax"), ("relu", "logistic"), ("logistic", "identity")])
def test_member_exports_to_a_plain_sequential_with_the_same_outputs(hidden, output):
    net = Network([6, 8, 5, 3], hidden=hidden, output=output, seeds=[0, 1, 2])
    X = torch.randn(9, 6)
    seq = net.to_torch(1)
    assert isinstance(seq, nn.Sequential) and isinstance(seq[0], nn.Linear)
    assert not any(p.requires_grad is False for p in seq.parameters())  # an ordinary model
    with torch.no_grad():
        # float32, different kernels (tanh vs 2σ(2S)−1, softmax down rows vs columns): 1e-6
        torch.testing.assert_close(seq(X), net.predict(X)[1], rtol=1e-5, atol=1e-6)
    single = net.member(1)
    # E = 1 against E = 3: other batched kernels, so float32 rounding (docs/experiments.md)
    assert single.E == 1
    torch.testing.assert_close(single.predict(X)[0], net.predict(X)[1], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["identity", "logistic", "tanh", "relu"])
def test_one_activation_object_holds_every_form_of_its_transfer_function(name):
    # issue 28: the fused kernels, the torch module and the derivative come from one object
    from lchannel.engine.activations import get_activation
    from lchannel.engine.blocks.standins import TORCH_ACTIVATIONS

    f = get_activation(name)
    g = torch.Generator().manual_seed(0)
    S, J = torch.randn(4, 7, generator=g, dtype=torch.float64), torch.randn(4, 7, generator=g, dtype=torch.float64)
    O = f(S)
    torch.testing.assert_close(f.fused(S), O)
    torch.testing.assert_close(f.fused_(S.clone()), O)
    torch.testing.assert_close(f.torch_module()(S), O)
    assert TORCH_ACTIVATIONS[name] is f.torch_module
    torch.testing.assert_close(f.fused_times_derivative(J, O), f.times_derivative(J, S, O))
