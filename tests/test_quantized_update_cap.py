"""benchmarks/quantized_update_cap.py: the spy sees every dense layer's per-example factors
once a step and restores the engine; the probe's per-layer figures, input layer first,
equal a direct computation from eq. 19."""

import pytest
import torch

from lchannel import cli
from lchannel.engine.quantize import Quantizer
from lchannel.engine.quantize_levels import quantize

from helpers import load_benchmark

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cap():
    return load_benchmark("quantized_update_cap")


def test_the_spy_keeps_each_layers_factors_and_restores_the_engine(cap, tmp_path):
    original = Quantizer.outer_direction
    with cap.Spy(keep=3 * cap.KEPT_STEPS) as spy:
        assert cli.main(["train", "--dataset", "synthetic", "--n-train", "200", "--n-test", "20", "--arch", "2,6,5,1",
                         "--epochs", "1", "--batch-size", "10", "--seeds", "0", "--update-bits", "3",
                         "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert Quantizer.outer_direction is original
    shapes = {(I.shape, O.shape) for I, O in spy.calls}
    assert shapes == {(torch.Size([10, 6]), torch.Size([10, 2])), (torch.Size([10, 5]), torch.Size([10, 6])),
                      (torch.Size([10, 1]), torch.Size([10, 5]))}
    # the same layer every third call: the ring buffer holds whole steps
    assert all(spy.calls[i][1].shape == spy.calls[i % 3][1].shape for i in range(len(spy.calls)))


def test_the_probe_equals_a_direct_computation_input_layer_first(cap):
    g = torch.Generator().manual_seed(0)
    widths = [(1, 4), (4, 4), (4, 30)]  # (N_h, N_{h-1}) in a top-down engine's order
    calls = [(0.1 * torch.randn(8, n, generator=g, dtype=torch.float64),
              torch.randn(8, m, generator=g, dtype=torch.float64))
             for _ in range(cap.KEPT_STEPS) for n, m in widths]
    got = cap.probe(calls)
    first = [c for c in calls if c[1].shape[1] == 30]  # the input layer: the widest O
    cos = ratio = above = 0.0
    for I, O in first:
        u = I[:, :, None] * O[:, None, :]
        exact, q = u.mean(0), quantize(u, 2.0 ** -6, 10, zero=True).mean(0)
        cos += float(exact.flatten() @ q.flatten() / (exact.norm() * q.norm())) / len(first)
        ratio += float(q.norm() / exact.norm()) / len(first)
        above += (u.abs() > 2.0 ** -6).sum().item() / (u != 0).sum().item() / len(first)
    assert got["cosine"]["10 bits, alpha 2^-6"][0] == pytest.approx(cos, rel=1e-12)
    assert got["norm_ratio"]["10 bits, alpha 2^-6"][0] == pytest.approx(ratio, rel=1e-12)
    assert got["above_alpha"][0] == pytest.approx(above, rel=1e-12)
    assert len(got["above_alpha"]) == 3 and 0 < cos < 1 and 0 < above < 1
