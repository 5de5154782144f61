"""A ResNet (batch norm, residual additions, in-place ReLU, a strided 1x1 shortcut) learns
CIFAR-10 through RBP and SRBP with Adam; its feedback survives a state_dict round trip."""

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import lchannel.torch as lct
from lchannel.data import as_images, load_cifar10

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from deep_feedback import BasicBlock as Block  # noqa: E402  (torchvision's block, one definition)

pytestmark = pytest.mark.usefixtures("one_thread")


def resnet(width=8):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.AvgPool2d(2),  # 16x16 inputs keep the test short
        nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        Block(width, width, 1), Block(width, 2 * width, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 10))


@pytest.fixture(scope="module")
def cifar():
    from pathlib import Path
    import os
    d = Path(os.environ.get("LCHANNEL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    if not (d / "cifar10" / "test_batch.bin").is_file():
        pytest.skip(f"CIFAR-10 files not found under {d}")
    train, test = load_cifar10(d, download_missing=False, batches=(1,))
    X, Xt = as_images(train.X[:500]), as_images(test.X[:500])
    mean, std = X.mean((0, 2, 3), keepdim=True), X.std((0, 2, 3), keepdim=True)
    return (X - mean) / std, train.labels[:500], (Xt - mean) / std, test.labels[:500]


@pytest.mark.parametrize("name,lr", [("rbp", 2e-2), ("srbp", 1e-2)])
def test_resnet_learns_cifar10_subset(cifar, name, lr):
    X, y, Xt, yt = cifar
    model = lct.convert(resnet(), name, seed=0, **({"example_input": X[:2]} if name == "srbp" else {}))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        perm = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), 50):
            idx = perm[i:i + 50]
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(Xt).argmax(1) == yt).double().mean().item()
    assert acc > 0.14, f"{name}: held-out accuracy {acc:.3f} (chance 0.10, ±0.013 per std on 500 images)"

    # state_dict round trip: a fresh model converted with another seed gets the feedback back.
    kind = "feedback" if name == "rbp" else "skip_feedback"
    state = model.state_dict()
    assert any(k.endswith(kind) for k in state)
    assert not any(n.endswith(kind) for n, _ in model.named_parameters())
    other = lct.convert(resnet(), name, seed=1, **({"example_input": X[:2]} if name == "srbp" else {}))
    keys = [k for k in state if k.endswith(kind)]
    assert not all(torch.equal(other.state_dict()[k], state[k]) for k in keys)
    other.load_state_dict(state)
    model.train()
    other.train()
    grads = []
    for m in (model, other):
        m.zero_grad()
        nn.functional.cross_entropy(m(X[:20]), y[:20]).backward()
        grads.append([p.grad.clone() for p in m.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
