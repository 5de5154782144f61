"""Forward-channel dropout against autograd: with the masks the forward pass drew, BP's
updates are the gradient of the loss of the dropped-out network.  The derivative of a
dropped-out unit is f'(S)·mask (0 for a dropped unit, f'(S)/(1−p) for a survivor), taken
from the activity *before* dropout: tanh's f' = 1 − O² read from the rescaled O would be
wrong for every unit."""

import pytest
import torch

from lchannel import Network, build_channel



@pytest.mark.parametrize("hidden", ["tanh", "logistic", "relu", "identity"])
def test_bp_with_forward_dropout_is_the_gradient_of_the_dropped_out_network(hidden):
    torch.manual_seed(0)
    net = Network([6, 9, 7, 4], hidden=hidden, seeds=[0, 1], dropout=0.4, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(8, 6, generator=g, dtype=torch.float64)
    T = torch.nn.functional.one_hot(torch.randint(0, 4, (8,), generator=g), 4).double()
    rec = net.forward(X, train=True)
    masks = rec.masks
    assert set(masks) == {1, 2} and all(((m == 0) | (m == 1 / 0.6)).all() for m in masks.values())
    I = build_channel("bp").bind(net).signals(rec, net.output_loss.error(T, rec.output))
    d = [I[h].transpose(1, 2) @ rec.presynaptic(h, 2) / 8 for h in (1, 2, 3)] + [I[h].mean(1) for h in (1, 2, 3)]
    f = {"tanh": torch.tanh, "logistic": torch.sigmoid, "relu": torch.relu, "identity": lambda s: s}[hidden]
    Ws = [w.clone().requires_grad_() for w in net.weights]
    bs = [b.clone().requires_grad_() for b in net.biases]
    O = X.expand(2, *X.shape)
    for h in range(3):
        S = torch.baddbmm(bs[h].unsqueeze(1), O, Ws[h].transpose(1, 2))
        O = f(S) * masks[h + 1] if h < 2 else S
    loss = -(T * torch.log_softmax(O, -1)).sum(-1).mean(-1).sum()  # summed over members
    grads = torch.autograd.grad(loss, Ws + bs)
    for got, want in zip(d, grads):
        torch.testing.assert_close(got, -want, rtol=1e-10, atol=1e-12)
