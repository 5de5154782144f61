"""Rules as objects: one Hebbian rule for the forward weights and the adaptive feedback,
one optimizer for both, and the same defaults as the CLI and TrainConfig."""

import torch

from lchannel.channels import build_channel
from lchannel.run.config import TrainConfig
from lchannel.engine.plasticity import HEBBIAN, SGD, Hebbian

from helpers import batch, small_net

SIZES = (5, 7, 6, 4)


def test_adaptive_feedback_uses_the_forward_rule_object():
    assert build_channel("arbp").rule is SGD().rule is HEBBIAN


def test_hebbian_on_a_matrix_is_post_transposed_times_pre_over_the_batch():
    g = torch.Generator().manual_seed(0)
    P = torch.randn(2, 3, 4, generator=g)
    post, pre = torch.randn(2, 5, 3, generator=g), torch.randn(2, 5, 4, generator=g)
    want = P + 0.3 * torch.einsum("ebi,ebj->eij", post, pre) / 5
    Hebbian().apply_(P, post, pre, 0.3)
    torch.testing.assert_close(P, want)


def test_the_optimizer_applies_the_channels_terms_with_the_schedule():
    X, T = batch(SIZES)
    net = small_net(SIZES)
    ch = build_channel("asrbp", adapt_rate=0.5).bind(net)
    opt = SGD(lr=0.2, decay=1.0).bind(net)
    opt.t = 3  # η_t = 0.2 / 4
    rec = net.forward(X)
    I = ch.signals(rec, net.output_loss.error(T, rec.output))
    C0 = {key: C.clone() for key, C in ch.C.items()}
    opt.step(rec, I, ch.plasticity_terms(rec, I))
    for (h, k), C in ch.C.items():
        O = rec.O[h]
        want = C0[(h, k)] + 0.05 * 0.5 * O.transpose(1, 2) @ I[k] / X.shape[0]
        torch.testing.assert_close(C, want)
    assert opt.t == 4


def test_sgd_defaults_agree_with_the_config():
    assert SGD().decay == TrainConfig().decay == 1e-6
