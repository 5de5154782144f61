"""docs/extending.md runs: its Python blocks are executed in order, then checked."""

import re
from pathlib import Path

import torch

from lchannel.channels import REGISTRY, build_channel

from helpers import batch, small_net

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
SIZES = (5, 7, 6, 4)


def run_doc() -> dict:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 5
    ns: dict = {}
    try:
        for code in blocks:
            exec(compile(code, str(DOC), "exec"), ns)
    finally:
        for name in ("half-srbp", "half-srbp-file"):  # the doc registers names; keep the registry as it was
            REGISTRY.pop(name, None)
    return ns


def test_the_documented_route_algorithm_and_rule_work():
    ns = run_doc()
    h = ns["history"]
    assert h.epochs == [1, 2, 3] and all(torch.isfinite(torch.tensor(h.metrics["train_loss"])).flatten())
    assert ns["channel"].derivative == "none"
    # The scaled route sends exactly half of SRBP's signal (× 0.5 is exact in floating point).
    X, T = batch(SIZES)
    signals = []
    for ch in (ns["HalfSRBP"](), build_channel("srbp")):
        net = small_net(SIZES)
        rec = net.forward(X)
        signals.append(ch.bind(net).signals(rec, net.output_loss.error(T, rec.output)))
    for h in (1, 2):
        assert torch.equal(signals[0][h], 0.5 * signals[1][h])
    # The toy rule: ΔW = η sign(I) Oᵀ / B.
    from lchannel.engine.plasticity import SGD
    net = small_net(SIZES)
    ch = build_channel("bp").bind(net)
    rec = net.forward(X)
    I = ch.signals(rec, net.output_loss.error(T, rec.output))
    W0 = net.W(1).clone()
    SGD(lr=0.5, rule=ns["SignHebbian"]()).bind(net).step(rec, I)
    want = W0 + 0.5 * torch.sign(I[1]).transpose(1, 2) @ rec.presynaptic(1, net.E) / X.shape[0]
    torch.testing.assert_close(net.W(1), want)
