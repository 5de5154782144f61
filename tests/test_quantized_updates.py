"""The factored sum of quantized per-example updates (paper 1, section 5.2, eq. 19)
against the per-example reference: each example's update formed and quantized one by one."""

import pytest
import torch

from lchannel import SGD, Network, build_channel
import lchannel.engine.plasticity as plasticity
from lchannel.engine.quantize import Quantizer, level_thresholds, outer_sum_factored, quantize

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.kernels]


def brute(I, O, lr, alpha, bits, zero=False):
    """Σ_b Quantize(lr·I_b O_bᵀ), example by example, in float64 (exact for these sums)."""
    E, B, _ = I.shape
    out = torch.zeros(E, I.shape[2], O.shape[2], dtype=torch.float64)
    for e in range(E):
        for b in range(B):
            u = (I[e, b].unsqueeze(1) * O[e, b].unsqueeze(0)) * lr  # fl(fl(I·O)·lr) in I's dtype
            out[e] += quantize(u, alpha, bits, zero).double()
    return out


def signals(E, B, n, m, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    I = torch.randn(E, B, n, generator=g, dtype=dtype) * 10 ** torch.empty(E, B, 1, dtype=dtype).uniform_(-3, 0, generator=g)
    O = torch.tanh(2 * torch.randn(E, B, m, generator=g, dtype=dtype))
    I[0, 0, :3] = 0  # zero signals: quantized to 0, not to the floor
    O[0, 1, :4] = 0  # zero inputs (MNIST's blank pixels)
    I[-1, 2, 1], O[-1, 2, 2] = 1e-30, 1e-20  # a product that underflows to 0
    return I, O


@pytest.mark.parametrize("zero", [False, True], ids=["floor", "zero-level"])
@pytest.mark.parametrize("bits", range(1, 9))
def test_factored_sum_equals_the_per_example_updates_for_every_bit_width(bits, zero):
    for E, B, n, m, seed in [(3, 40, 12, 30, bits), (1, 7, 30, 5, 100 + bits)]:
        I, O = signals(E, B, n, m, seed)
        for lr in (0.1, 0.37):
            for alpha in (2.0 ** -6, 2.0 ** -3):
                want = brute(I, O, lr, alpha, bits, zero)
                got = outer_sum_factored(I, O, lr, alpha, bits, zero)
                assert torch.equal(got.double(), want), (bits, lr, alpha)  # power-of-two α: exact


def test_ties_on_the_level_boundaries_are_decided_as_the_quantizer_decides():
    # Values u exactly at, and one ulp either side of, each threshold T_m: the levels the
    # factored sum assigns must be those of quantize() on the same u.
    alpha, bits = 2.0 ** -6, 4
    T = level_thresholds(alpha, bits, torch.float32)
    v = torch.cat([torch.nextafter(T[1:], torch.zeros(1)), T[1:], torch.nextafter(T[1:], torch.ones(1))])
    # I = v, O = 1, lr = 1: u = v exactly; signs mixed
    I = (v * torch.tensor([1.0, -1.0]).repeat(len(v))[:len(v)]).view(1, -1, 1)
    O = torch.ones(1, I.shape[1], 1)
    got = outer_sum_factored(I, O, 1.0, alpha, bits)
    want = quantize(I.view(-1), alpha, bits).sum()
    assert got.item() == want.item()
    # the thresholds are where the quantizer switches level
    unit = alpha * 2.0 ** (1 - bits)
    for m in range(1, bits):
        assert quantize(T[m:m + 1], alpha, bits).item() == unit * 2 ** m
        assert quantize(torch.nextafter(T[m:m + 1], torch.zeros(1)), alpha, bits).item() == unit * 2 ** (m - 1)


def test_float64_and_another_alpha_within_one_rounding_of_the_sum():
    I, O = signals(2, 30, 10, 20, 7, torch.float64)
    assert torch.equal(outer_sum_factored(I, O, 0.1, 2.0 ** -6, 5), brute(I, O, 0.1, 2.0 ** -6, 5))
    # α = 0.3 (not a power of two): the factored sum is the exact sum rounded once, the
    # loop rounds at each of B additions: they agree to B half-ulps of the largest sum.
    I, O = signals(2, 30, 10, 20, 8)
    q = Quantizer(0.3, 5, method="loop")
    loop = q.outer_sum(I, O, 0.1)
    fact = Quantizer(0.3, 5).outer_sum(I, O, 0.1)
    tol = 30 * torch.finfo(torch.float32).eps * 0.3 * 30
    assert (loop - fact).abs().max().item() <= tol
    assert not torch.equal(loop, torch.zeros_like(loop))


def test_training_with_quantized_updates_is_bit_identical_to_the_reference_loop():
    # E > 1, biases, zero inputs (MNIST-like blank pixels), several steps: the factored
    # method and the per-example loop give the same weights bit for bit.
    g = torch.Generator().manual_seed(3)
    X = torch.rand(40, 30, generator=g) * (torch.rand(40, 30, generator=g) > 0.6)
    T = torch.nn.functional.one_hot(torch.randint(0, 5, (40,), generator=g), 5).float()
    nets = []
    for method in ("factored", "loop"):
        plasticity.QUANTIZED_UPDATE_METHOD = method
        try:
            net = Network([30, 16, 12, 5], seeds=[0, 1, 2])
            ch = build_channel("rbp").bind(net)
            opt = SGD(lr=0.5, decay=0.0, update_bits=3).bind(net)
            for s in range(0, 40, 10):
                rec = net.forward(X[s:s + 10])
                opt.step(rec, ch.signals(rec, net.output_loss.error(T[s:s + 10], rec.output)))
        finally:
            plasticity.QUANTIZED_UPDATE_METHOD = "factored"
        nets.append(net)
    for a, b in zip(nets[0].weights + nets[0].biases, nets[1].weights + nets[1].biases):
        assert torch.equal(a, b)
    assert not torch.equal(nets[0].weights[0], Network([30, 16, 12, 5], seeds=[0, 1, 2]).weights[0])


def test_quantizer_rejects_bad_parameters():
    with pytest.raises(ValueError, match="bits must be an integer >= 1"):
        Quantizer(2.0 ** -6, 0)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        Quantizer(0.0, 3)
    with pytest.raises(ValueError, match="method must be one of factored, loop"):
        Quantizer(2.0 ** -6, 3, method="fast")
