"""Adding a block kind is one file (issue 28): a module outside the package declares an
average-pooling kind (its grammar piece, forward, adjoint and export), and a block network
written with it trains under BP exactly as autograd differentiates its torch export."""

import importlib
import sys
import textwrap

import pytest
import torch

from lchannel.channels import build_channel
from lchannel.engine import blockspec
from lchannel.engine.architecture import grammar, parse_blocks
from lchannel.engine.nets import Network

from helpers import one_step_updates

KIND = '''
"""One file: K x K average pooling at stride K, a weightless block kind."""
import re

import torch
import torch.nn.functional as F
from torch import nn

from lchannel.engine.blockspec import BlockSpec, Piece, block_kind, window


def _piece(where, m, shape, specs):
    K = int(m[1])
    return [BlockSpec("avgpool", m[0], shape, window(where, shape, shape[0], K, K, 0), channels=shape[0],
                      kernel=K, stride=K)]


@block_kind
class AvgPool2d(nn.Module):
    grammar = Piece("avgpool", "avgpool<K>", re.compile(r"avgpool(\\d+)"), _piece, image_input=True, rank=1)

    @classmethod
    def from_spec(cls, spec):
        return cls(spec.kernel)

    def __init__(self, kernel):
        super().__init__()
        self.kernel = kernel

    def forward(self, O):  # (E, B, C, H, W) -> (E, B, C, H/K, W/K)
        E, B = O.shape[:2]
        P = F.avg_pool2d(O.reshape(E * B, *O.shape[2:]), self.kernel)
        return P.reshape(E, B, *P.shape[1:]), None

    def adjoint(self, G, O, aux=None):  # the transpose of averaging: spread G / K^2 over each window
        K = self.kernel
        return G.repeat_interleave(K, dim=-2).repeat_interleave(K, dim=-1) / (K * K)

    def to_torch(self, e=0):
        return [nn.AvgPool2d(self.kernel)]
'''


@pytest.fixture
def avgpool_kind(tmp_path, monkeypatch):
    (tmp_path / "avgpool_kind.py").write_text(textwrap.dedent(KIND))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("avgpool_kind")
    yield
    blockspec.KINDS.pop("avgpool", None)
    sys.modules.pop("avgpool_kind", None)


def test_a_block_kind_in_one_file_is_read_by_the_grammar_and_trains_like_autograd(avgpool_kind):
    assert "avgpool<K>" in grammar()
    specs = parse_blocks("conv3k3-avgpool2-dense4", (2, 8, 8))
    assert [s.kind for s in specs] == ["conv", "avgpool", "flatten", "dense"]
    assert specs[1].out_shape == (3, 4, 4) and not specs[1].weighted and specs[1].multiplications == 0
    D = torch.float64
    net = Network("conv3k3-avgpool2-dense4", input_shape=(2, 8, 8), hidden="tanh", output="softmax",
                  seeds=[0, 1], dtype=D)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(5, 128, generator=g, dtype=D)
    T = torch.nn.functional.one_hot(torch.randint(0, 4, (5,), generator=g), 4).to(D)
    d = one_step_updates(net, build_channel("bp"), X, T, lr=1.0)
    for e in range(net.E):
        model = net.to_torch(e)  # independent truth: autograd through nn.Conv2d/AvgPool2d/Linear
        loss = net.output_loss.loss(model(X.view(-1, 2, 8, 8)), T).mean()
        weighted = [m for m in model if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        grads = torch.autograd.grad(loss, [m.weight for m in weighted] + [m.bias for m in weighted])
        for i, grad in enumerate(grads):
            torch.testing.assert_close(d[i][e], -grad, rtol=1e-9, atol=1e-12)


def test_a_kind_must_declare_its_piece_and_cannot_take_a_taken_name():
    from lchannel.engine.blocks import Dense

    with pytest.raises(ValueError, match="needs a 'grammar' Piece"):
        blockspec.block_kind(type("NoGrammar", (), {}))
    imposter = type("Imposter", (), {"grammar": Dense.grammar})
    with pytest.raises(ValueError, match="kind 'dense' is already Dense"):
        blockspec.block_kind(imposter)
